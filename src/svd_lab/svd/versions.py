"""The Stable Video Diffusion versions and their reference defaults.

Numbers from Stability's reference script ``scripts/sampling/simple_video_sample.py`` (generative-models, ``sgm``)
and its configs ``scripts/sampling/configs/*.yaml``:

=====================  ======  =====  ==================  ===============================================
version                frames  steps  guidance min -> max  decoder
=====================  ======  =====  ==================  ===============================================
svd                        14     25  1.0 -> 2.5          temporal VAE decoder (AutoencoderKLTemporalDecoder)
svd_xt                     25     30  1.5 -> 3.0          temporal VAE decoder
svd_xt_1_1                 25     30  1.5 -> 3.0          temporal (trained at fps_id 6, motion bucket 127)
svd_image_decoder          14     25  1.0 -> 2.5          per-frame image decoder (AutoencoderKL)
svd_xt_image_decoder       25     30  1.5 -> 3.0          per-frame image decoder
=====================  ======  =====  ==================  ===============================================

Common: 576x1024 (height x width), fps_id 6, motion_bucket_id 127, cond_aug 0.02, seed 23, decoding_t 14, EDM
sigmas sigma_min 0.002, sigma_max 700, rho 7. The image-decoder versions exist on the hub only as sgm single
files (``svd_image_decoder.safetensors``, ``svd_xt_image_decoder.safetensors``).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

DECODER_TEMPORAL = "temporal"
DECODER_IMAGE = "image"


@dataclass(frozen=True)
class VersionSpec:
    name: str
    num_frames: int
    num_steps: int
    min_guidance: float
    max_guidance: float
    decoder: str                       # DECODER_TEMPORAL or DECODER_IMAGE
    hub_repo: str                      # where the weights live on the Hugging Face hub
    diffusers_format: bool             # False: only an sgm single file exists (needs the sgm converter)
    description: str
    height: int = 576
    width: int = 1024
    fps_id: int = 6
    motion_bucket_id: int = 127
    cond_aug: float = 0.02
    seed: int = 23
    decoding_t: int = 14
    sigma_min: float = 0.002
    sigma_max: float = 700.0
    rho: float = 7.0

    def defaults(self) -> dict:
        """Every sampling default of this version as a plain dict (what a run records)."""
        d = asdict(self)
        for key in ("name", "hub_repo", "diffusers_format", "description"):
            d.pop(key)
        return d


VERSIONS: dict[str, VersionSpec] = {
    spec.name: spec
    for spec in (
        VersionSpec("svd", 14, 25, 1.0, 2.5, DECODER_TEMPORAL, "stabilityai/stable-video-diffusion-img2vid", True,
                    "SVD: 14 frames at 576x1024"),
        VersionSpec("svd_xt", 25, 30, 1.5, 3.0, DECODER_TEMPORAL, "stabilityai/stable-video-diffusion-img2vid-xt",
                    True, "SVD-XT: 25 frames, fine-tuned from SVD"),
        VersionSpec("svd_xt_1_1", 25, 30, 1.5, 3.0, DECODER_TEMPORAL,
                    "stabilityai/stable-video-diffusion-img2vid-xt-1-1", True,
                    "SVD-XT 1.1: trained with fixed conditioning fps_id 6, motion_bucket_id 127"),
        VersionSpec("svd_image_decoder", 14, 25, 1.0, 2.5, DECODER_IMAGE,
                    "stabilityai/stable-video-diffusion-img2vid", False,
                    "SVD with the per-frame image decoder (sgm single file svd_image_decoder.safetensors)"),
        VersionSpec("svd_xt_image_decoder", 25, 30, 1.5, 3.0, DECODER_IMAGE,
                    "stabilityai/stable-video-diffusion-img2vid-xt", False,
                    "SVD-XT with the per-frame image decoder (sgm single file svd_xt_image_decoder.safetensors)"),
    )
}

DEFAULT_VERSION = "svd"


def get_version(name: str) -> VersionSpec:
    """The spec of a version, or a ValueError listing the known ones."""
    try:
        return VERSIONS[name]
    except KeyError:
        raise ValueError(f"unknown SVD version {name!r}; known versions: {', '.join(VERSIONS)}") from None


def check_micro_conditioning(fps_id: int, motion_bucket_id: int, cond_aug: float) -> list[str]:
    """Warn (like the reference script) about values outside what the models were trained on.

    Returns the warning texts (also issued with ``warnings.warn``). Negative values are errors.
    """
    if fps_id < 0 or motion_bucket_id < 0 or cond_aug < 0:
        raise ValueError(
            f"fps_id, motion_bucket_id and cond_aug must be >= 0 (got {fps_id}, {motion_bucket_id}, {cond_aug})"
        )
    messages = []
    if not 5 <= fps_id <= 30:
        messages.append(f"fps_id {fps_id} is outside 5..30, the range SVD was trained on: expect poor motion")
    if motion_bucket_id > 255:
        messages.append(f"motion_bucket_id {motion_bucket_id} is above 255, the range SVD was trained on: "
                        "expect extreme or broken motion")
    for message in messages:
        warnings.warn(message, UserWarning, stacklevel=2)
    return messages
