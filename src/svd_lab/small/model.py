"""The shipped small SVD: where it lives, how it is saved (a diffusers folder, fp16) and loaded.

``checkpoints/small/`` has the hub layout (``model_index.json``, ``unet/``, ``vae/``, ``image_encoder/``, ...),
so :func:`svd_lab.svd.loading.load_checkpoint` loads it like any downloaded SVD; ``training.json`` (the whole
training record) and ``loss.png`` sit beside it. Its frame size and frame count are in its own configs
(:attr:`svd_lab.svd.components.SVDComponents.native_size`, ``native_frames``).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import torch

from svd_lab.svd.components import SVDComponents
from svd_lab.svd.versions import DEFAULT_VERSION

#: the profile and registry name of the small SVD, and its folder under checkpoints/
NAME = "small"

#: the sampling defaults of the small SVD, written into its record (``svd_lab_version.json``) and used by every run
#: that does not set them. Chosen on the bar test's subset (README "The small SVD"): with the svd version's guidance
#: 1.0 -> 2.5 the last frames of fast pans drift red (largest colour error 0.037; 2.0: 0.026, 1.5: 0.019, no guidance:
#: 0.022), and every other score stays within noise from 8 to 25 steps (frame 0 within 0.1 dB): 12 steps halve the
#: sampling time. The full evaluation (`svd-lab small eval`) checks the choice on held-out photos.
SAMPLING = {"num_steps": 12, "min_guidance": 1.0, "max_guidance": 1.5}


def shipped_folder() -> Path:
    """``<checkout>/checkpoints/small``: shipped with the course, found whatever ``SVD_LAB_CHECKPOINTS`` says."""
    from svd_lab.paths import shipped_checkpoints_dir

    return shipped_checkpoints_dir() / NAME


def is_present(folder: str | os.PathLike | None = None) -> bool:
    folder = Path(folder) if folder is not None else shipped_folder()
    return (folder / "model_index.json").is_file()


def save_small(components: SVDComponents, out: str | os.PathLike, record: dict) -> Path:
    """Write the model (fp16 safetensors, diffusers layout), ``training.json`` and ``loss.png`` into ``out``.

    Written into a temporary folder beside ``out`` and renamed into place, so an interrupted save leaves no
    half-written model; ``out`` must not exist (nothing is overwritten).
    """
    from svd_lab.svd.loading import save_diffusers_folder

    half = copy.deepcopy(components).to(dtype=torch.float16)
    half.sampling = dict(SAMPLING)         # written into its record by save_diffusers_folder

    def add_training_files(folder: Path) -> None:
        write_training_log(record, folder / "training.json")
        write_loss_plot(record, folder / "loss.png")

    return save_diffusers_folder(half, out, variant="fp16", atomic=True, extras=add_training_files,
                                 record={"model": NAME})


def load_small(folder: str | os.PathLike | None = None, dtype: torch.dtype = torch.float32,
               version: str = DEFAULT_VERSION) -> SVDComponents:
    """The small SVD (profile 'small') from ``folder`` (default: the shipped one), labelled as ``version`` (its
    sampling defaults; the networks are the same whichever temporal-decoder version is named)."""
    from svd_lab.svd.loading import load_checkpoint

    folder = Path(folder) if folder is not None else shipped_folder()
    return load_checkpoint(folder, dtype=dtype, device="cpu", version=version, progress=False)


def write_loss_plot(record: dict, path: Path) -> None:
    """The loss curves (VAE and UNet, raw and smoothed) as a PNG, written atomically."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from svd_lab.atomic import write_bytes_atomic
    from svd_lab.training import smooth

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3), dpi=100)
    vae_steps = [r[0] for r in record["vae"]["loss"]]
    vae_loss = [r[1] for r in record["vae"]["loss"]]
    axes[0].plot(vae_steps, vae_loss, alpha=0.3, lw=0.6)
    axes[0].plot(vae_steps, smooth(vae_loss), lw=1.5, label="VAE, 32x32 crops")
    if "decoder" in record:               # stage 3: the VAE on whole frames, counted on from stage 2's steps
        last = vae_steps[-1] if vae_steps else 0
        dec_steps = [last + r[0] for r in record["decoder"]["loss"]]
        dec_loss = [r[1] for r in record["decoder"]["loss"]]
        axes[0].plot(dec_steps, dec_loss, alpha=0.3, lw=0.6)
        axes[0].plot(dec_steps, smooth(dec_loss), lw=1.5, label="whole frames (stage 3)")
        axes[0].legend()
    axes[0].set(yscale="log", xlabel="VAE step", ylabel="L1 + L2 + edges", title="VAE")
    steps = [r[0] for r in record["loss"]]
    losses = [r[1] for r in record["loss"]]
    axes[1].plot(steps, losses, alpha=0.25, lw=0.5, label="loss")
    axes[1].plot(steps, smooth(losses), lw=1.5, label="smoothed")
    if "fast" in record:                  # stage 6: half of every batch from fast pans, counted on from stage 5
        last = steps[-1] if steps else 0
        fast_steps = [last + r[0] for r in record["fast"]["loss"]]
        fast_loss = [r[1] for r in record["fast"]["loss"]]
        axes[1].plot(fast_steps, fast_loss, alpha=0.25, lw=0.5)
        axes[1].plot(fast_steps, smooth(fast_loss), lw=1.5, label="fast pans (stage 6)")
    axes[1].set(yscale="log", xlabel="UNet step", ylabel="v-prediction loss", title="UNet (SVD objective)")
    axes[1].legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue(), overwrite=True)


def write_training_log(record: dict, path: Path) -> None:
    from svd_lab.atomic import write_text_atomic

    write_text_atomic(path, json.dumps(record, indent=1), overwrite=True)
