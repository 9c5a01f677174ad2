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

A :class:`VersionSpec` is also the release: its hub repository, whether a diffusers layout exists, its licence and
gating. :mod:`svd_lab.checkpoints.registry` builds its download entries from :data:`VERSIONS`, so adding an SVD
version is one new row here (plus its network config in :mod:`svd_lab.svd.configs` if the architecture differs).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

from svd_lab.errors import InputError, UnknownNameError

DECODER_TEMPORAL = "temporal"
DECODER_IMAGE = "image"

# Licences from the model cards (see FACTS): svd and svd_xt were first released under the research-only
# stable-video-diffusion-nc-community licence, later relicensed; svd_xt_1_1 has its own, gated, licence.
COMMUNITY_LICENCE = "stable-video-diffusion-community"
COMMUNITY_LICENCE_NOTE = ("released as stable-video-diffusion-nc-community (research only), later relicensed to the "
                          "Stability AI Community licence: read the model card before use")

# Fields that describe the release rather than how to sample it: left out of VersionSpec.defaults().
_RELEASE_FIELDS = ("name", "hub_repo", "diffusers_format", "description", "licence", "licence_note", "gated")


@dataclass(frozen=True)
class VersionSpec:
    """One SVD version: its sampling defaults (from Stability's reference script) and where it was released."""

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
    licence: str = COMMUNITY_LICENCE   # the licence id on the model card
    licence_note: str = COMMUNITY_LICENCE_NOTE
    gated: bool = False                # the hub asks to accept the licence (and a token) before a download

    @property
    def sgm_file(self) -> str:
        """The name of the sgm single file in the hub repository, e.g. ``svd_xt.safetensors``.

        Stability names every single file after its version (the reference script loads
        ``checkpoints/<version>.safetensors``), so the name is derived rather than stored.
        """
        return f"{self.name}.safetensors"

    def defaults(self) -> dict:
        """Every sampling default of this version as a plain dict (what a run records)."""
        d = asdict(self)
        for key in _RELEASE_FIELDS:
            d.pop(key)
        return d


VERSIONS: dict[str, VersionSpec] = {
    spec.name: spec
    for spec in (
        VersionSpec("svd", 14, 25, 1.0, 2.5, DECODER_TEMPORAL, "stabilityai/stable-video-diffusion-img2vid", True,
                    "Stable Video Diffusion: 14 frames at 576x1024"),
        VersionSpec("svd_xt", 25, 30, 1.5, 3.0, DECODER_TEMPORAL, "stabilityai/stable-video-diffusion-img2vid-xt",
                    True, "SVD-XT: 25 frames at 576x1024 (fine-tuned from svd)"),
        VersionSpec("svd_xt_1_1", 25, 30, 1.5, 3.0, DECODER_TEMPORAL,
                    "stabilityai/stable-video-diffusion-img2vid-xt-1-1", True,
                    "SVD-XT 1.1: svd_xt fine-tuned for fixed conditioning (6 fps, motion bucket 127)",
                    licence="stable-video-diffusion-1-1-community",
                    licence_note=("Stability AI Community licence (free below US$1M annual revenue); gated: log in "
                                  "on the hub and 'agree to share your contact information' first"),
                    gated=True),
        VersionSpec("svd_image_decoder", 14, 25, 1.0, 2.5, DECODER_IMAGE,
                    "stabilityai/stable-video-diffusion-img2vid", False,
                    "svd with a per-frame (image) VAE decoder instead of the temporal one"),
        VersionSpec("svd_xt_image_decoder", 25, 30, 1.5, 3.0, DECODER_IMAGE,
                    "stabilityai/stable-video-diffusion-img2vid-xt", False,
                    "svd_xt with a per-frame (image) VAE decoder"),
    )
}

DEFAULT_VERSION = "svd"


def get_version(name: str) -> VersionSpec:
    """The spec of a version; an :class:`~svd_lab.errors.UnknownNameError` (a ValueError) listing the known ones."""
    try:
        return VERSIONS[name]
    except KeyError:
        raise UnknownNameError(f"unknown SVD version {name!r}; known versions: {', '.join(VERSIONS)}") from None


def version_for_num_frames(num_frames: int | None) -> str | None:
    """The version a UNet trained for ``num_frames`` frames most likely is (14: svd, 25: svd_xt), or None.

    A frame count cannot tell a release from its later fine-tune or its image-decoder variant, so this is the first
    temporal-decoder version listed in :data:`VERSIONS` (the base release comes first). Callers that know more (an
    svd_lab record, a registry name) should ask that first.
    """
    for spec in VERSIONS.values():
        if spec.num_frames == num_frames and spec.decoder == DECODER_TEMPORAL:
            return spec.name
    return None


def check_micro_conditioning(fps_id: int, motion_bucket_id: int, cond_aug: float) -> list[str]:
    """Warn (like the reference script) about values outside what the models were trained on.

    Returns the warning texts (also issued with ``warnings.warn``). Negative values are errors.
    """
    if fps_id < 0 or motion_bucket_id < 0 or cond_aug < 0:
        raise InputError(
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
