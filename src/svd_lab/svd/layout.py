"""The diffusers folder layout of an SVD checkpoint: which file holds what, named once.

What ``stabilityai/stable-video-diffusion-img2vid*`` holds on the hub, what ``StableVideoDiffusionPipeline``
loads, what :mod:`svd_lab.svd.loading` reads and what :mod:`svd_lab.checkpoints` downloads and checks::

    model_index.json
    feature_extractor/preprocessor_config.json
    scheduler/scheduler_config.json
    unet/config.json            unet/diffusion_pytorch_model[.fp16].safetensors
    vae/config.json             vae/diffusion_pytorch_model[.fp16].safetensors
    image_encoder/config.json   image_encoder/model[.fp16].safetensors

Weights come in full precision and as the ``fp16`` variant (``.fp16`` before the extension). Names only: this
module imports nothing, so listing checkpoints stays fast.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

#: the half-precision file variant (``*.fp16.safetensors``); None stands for full precision
FP16 = "fp16"

#: network folder -> stem of its weight file. diffusers names its models' files ``diffusion_pytorch_model``,
#: transformers (the CLIP image encoder) names them ``model``.
WEIGHT_STEMS: dict[str, str] = {
    "unet": "diffusion_pytorch_model",
    "vae": "diffusion_pytorch_model",
    "image_encoder": "model",
}

#: every configuration file, in download order: the pipeline's index and the two processors first, then each
#: network's config.json
CONFIG_FILES: tuple[str, ...] = (
    "model_index.json",
    "feature_extractor/preprocessor_config.json",
    "scheduler/scheduler_config.json",
    *(f"{part}/config.json" for part in WEIGHT_STEMS),
)


def weight_file(part: str, variant: str | None = None) -> str:
    """``unet/diffusion_pytorch_model.fp16.safetensors`` for variant 'fp16'; without ``.fp16`` for None."""
    stem = WEIGHT_STEMS[part]
    return f"{part}/{stem}.{variant}.safetensors" if variant else f"{part}/{stem}.safetensors"


def weight_files(variant: str | None = None) -> list[str]:
    """The weight file of every network, in the order of :data:`WEIGHT_STEMS`."""
    return [weight_file(part, variant) for part in WEIGHT_STEMS]


def checkpoint_files(variant: str | None = None) -> list[str]:
    """Every file of a diffusers-layout SVD checkpoint: the configs first (small), then the weights."""
    return [*CONFIG_FILES, *weight_files(variant)]


def files_fingerprint(files: list[Path]) -> str:
    """'files <hash>' of the weight files' names, sizes and modification times: changes when a file is replaced
    (a new download, a retrained model), costs no reading of the weights."""
    digest = hashlib.sha256()
    for f in files:
        stat = Path(f).stat()
        digest.update(f"{Path(f).parent.name}/{Path(f).name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return f"files {digest.hexdigest()[:16]}"
