r"""Write an sgm SVD file as a diffusers folder, once, so later loads need no conversion.

The folder is written by :func:`svd_lab.svd.loading.save_diffusers_folder` (the one writer of diffusers folders)
with ``atomic=True``: assembled under a hidden temporary name beside the output and renamed when complete, never
overwriting. Beside the networks it holds ``svd_lab_conversion.json`` (:data:`CONVERSION_RECORD`), which records
what diffusers' configs cannot: sgm's GroupNorm eps in the UNet's resnets (re-applied after ``from_pretrained`` by
:func:`apply_conversion_record`), the version, and where the weights came from.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from svd_lab.convert.record import CONVERSION_RECORD
from svd_lab.convert.sgm_config import SGM_UNET_GROUPNORM_EPS
from svd_lab.convert.sgm_keys import ignored_reason
from svd_lab.convert.sgm_load import load_sgm_modules, read_header, to_components
from svd_lab.errors import SgmCheckpointError
from svd_lab.svd.loading import save_diffusers_folder


def _check_free_space(in_path: str | os.PathLike, parent: Path, dtype: torch.dtype) -> None:
    """Refuse before loading anything when the output file system cannot hold the converted weights."""
    shapes, _, _ = read_header(in_path)
    values = sum(math.prod(shape) for key, shape in shapes.items() if ignored_reason(key) is None)
    needed = int(values * torch.empty((), dtype=dtype).element_size() * 1.02) + 2**20
    free = shutil.disk_usage(parent).free
    if free < needed:
        raise SgmCheckpointError(f"not enough free disk space in {parent}: the converted folder needs about "
                                 f"{needed / 1e9:.2f} GB, {free / 1e9:.2f} GB are free")


def convert_sgm_to_diffusers(
    in_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    dtype: torch.dtype = torch.float16,
    version: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    **options: Any,
) -> Path:
    """Write an sgm file as a diffusers ``StableVideoDiffusionPipeline`` folder (unet/ vae/ image_encoder/
    feature_extractor/ scheduler/ model_index.json svd_lab_conversion.json), so later loads need no conversion.

    The folder is assembled under a temporary name beside ``out_dir`` and renamed at the end: an interrupted
    run leaves no half-written ``out_dir``. An existing ``out_dir`` is never overwritten. ``options`` go to
    :func:`svd_lab.convert.sgm_load.load_sgm_modules` (``unet_head_channels``, ``clip_head_width``,
    ``sgm_groupnorm_eps``).
    """
    import diffusers
    import transformers

    log = log or (lambda message: None)
    out_dir = Path(out_dir)
    # Everything that can be refused is refused before the (long) load.
    if out_dir.exists():
        raise SgmCheckpointError(f"{out_dir} already exists; choose a new output folder (nothing is overwritten)")
    parent = out_dir.parent if str(out_dir.parent) else Path(".")
    if not parent.is_dir():
        raise SgmCheckpointError(f"{parent} does not exist; create it first")
    _check_free_space(in_path, parent, dtype)
    loaded = load_sgm_modules(in_path, dtype=dtype, device="cpu", version=version, progress=progress, **options)
    log(loaded.plan.summary() + f"; version {loaded.version} ({loaded.version_source})")
    log(f"writing {out_dir}/ (unet, vae, image_encoder, feature_extractor, scheduler)")
    record = {
        "converted_from": Path(in_path).name,
        "version_source": loaded.version_source,
        "decoder_kind": loaded.decoder_kind,
        "dtype": str(dtype).replace("torch.", ""),
        "unet_resnet_groupnorm_eps": SGM_UNET_GROUPNORM_EPS if options.get("sgm_groupnorm_eps", True) else None,
        "ignored_tensors": len(loaded.plan.ignored),
        "converter": "svd_lab.convert.sgm",
        "versions": {"diffusers": diffusers.__version__, "transformers": transformers.__version__,
                     "torch": torch.__version__},
    }
    return save_diffusers_folder(to_components(loaded), out_dir, record=record, record_name=CONVERSION_RECORD,
                                 atomic=True)
