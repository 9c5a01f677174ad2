"""The shipped tiny SVD: where it lives, how it is saved (a diffusers folder, fp16) and loaded.

``checkpoints/svdmini/`` has the hub layout (``model_index.json``, ``unet/``, ``vae/``, ``image_encoder/``, ...),
so :func:`svd_lab.svd.loading.load_checkpoint` and ``load_pipeline(profile="mini")`` load it like any downloaded
SVD; ``training.json`` (the whole training record) and ``loss.png`` sit beside it.
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import torch

from svd_lab.svd.components import SVDComponents
from svd_lab.svd.versions import DEFAULT_VERSION

FOLDER_NAME = "svdmini"
#: what the mini profile samples at by default: what it was trained at
HEIGHT = WIDTH = 64
NUM_FRAMES = 8


def shipped_folder() -> Path:
    """``<checkpoints>/svdmini`` (``$SVD_LAB_CHECKPOINTS`` or the checkout's ``checkpoints/``)."""
    from svd_lab.paths import checkpoints_dir

    return checkpoints_dir() / FOLDER_NAME


def is_present(folder: str | os.PathLike | None = None) -> bool:
    folder = Path(folder) if folder is not None else shipped_folder()
    return (folder / "model_index.json").is_file()


def save_mini(components: SVDComponents, out: str | os.PathLike, record: dict, overwrite: bool = False) -> Path:
    """Write the model (fp16 safetensors, diffusers layout), ``training.json`` and ``loss.png`` into ``out``.

    Written into a temporary folder beside ``out`` and renamed into place, so an interrupted save leaves no
    half-written model; an existing model is replaced only with ``overwrite``.
    """
    from svd_lab.svd.loading import save_diffusers_folder
    from svd_lab.svdmini.train import write_loss_plot, write_training_log

    out = Path(out)
    if out.exists() and not overwrite and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; choose another folder or remove it")
    half = copy.deepcopy(components).to(dtype=torch.float16)

    def add_training_files(folder: Path) -> None:
        write_training_log(record, folder / "training.json")
        write_loss_plot(record, folder / "loss.png")

    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()                       # an empty folder made for the run: the atomic writer wants none
    if not out.exists():
        return save_diffusers_folder(half, out, variant="fp16", atomic=True, extras=add_training_files)
    # overwrite: write the new model completely beside the old one, then swap
    new = out.with_name(out.name + ".new")
    if new.exists():
        shutil.rmtree(new)
    save_diffusers_folder(half, new, variant="fp16", atomic=True, extras=add_training_files)
    old = out.with_name(out.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    os.replace(out, old)
    os.replace(new, out)
    shutil.rmtree(old)
    return out


def load_mini(folder: str | os.PathLike | None = None, dtype: torch.dtype = torch.float32,
              version: str = DEFAULT_VERSION) -> SVDComponents:
    """The trained tiny SVD (profile 'mini') from ``folder`` (default: the shipped one), labelled as ``version``
    (its sampling defaults; the networks are the same whichever temporal-decoder version is named)."""
    from svd_lab.svd.loading import load_checkpoint

    folder = Path(folder) if folder is not None else shipped_folder()
    return load_checkpoint(folder, dtype=dtype, device="cpu", version=version, progress=False)
