"""The checkpoints svd-lab knows about: where they live on the Hugging Face hub, which files make them, how big they
are, under which licence they were released and whether the repository is gated.

Two on-disk formats exist for every SVD release:

- ``diffusers``: a folder (``model_index.json``, ``unet/``, ``vae/``, ``image_encoder/``, ``scheduler/``,
  ``feature_extractor/``) that diffusers' ``StableVideoDiffusionPipeline`` loads. The weights come in full precision
  (about 9 GB) and as an ``fp16`` variant (about 4.5 GB: files named ``*.fp16.safetensors``).
- ``sgm``: one safetensors file holding Stability's whole ``DiffusionEngine`` state dict in fp32 (about 9.6 GB),
  what Stability's generative-models scripts (and the seed article) use, e.g. ``checkpoints/svd.safetensors``.

Sizes below are the bytes of the weights (parameter count x bytes per value; the safetensors header adds ~0.1 MB).
They are used for the ``svd-lab models`` table and as an estimate; a download always checks free space against the
exact sizes the hub reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DIFFUSERS, SGM, MINI = "diffusers", "sgm", "mini"
FORMATS = (DIFFUSERS, SGM, MINI)
FP16 = "fp16"

HUB_WEB = "https://huggingface.co"
HF_MIRROR = "https://hf-mirror.com"  # community mirror reachable from mainland China

# Parameter counts of the full-size networks (diffusers classes built on the meta device, see FACTS).
_UNET_PARAMS = 1_524_623_082
_VAE_PARAMS = 97_742_847  # AutoencoderKLTemporalDecoder
_CLIP_PARAMS = 632_076_800  # CLIPVisionModelWithProjection (ViT-H/14)
# Whole sgm DiffusionEngine state dicts (count of values, fp32 on disk).
_SGM_TEMPORAL_DECODER_VALUES = 2_389_819_785
_SGM_IMAGE_DECODER_VALUES = 2_375_730_873

# (folder in the diffusers layout, weight file stem); configs are <folder>/config.json except where noted.
DIFFUSERS_WEIGHTS = (
    ("unet", "diffusion_pytorch_model", _UNET_PARAMS),
    ("vae", "diffusion_pytorch_model", _VAE_PARAMS),
    ("image_encoder", "model", _CLIP_PARAMS),
)
DIFFUSERS_CONFIGS = (
    "model_index.json",
    "feature_extractor/preprocessor_config.json",
    "scheduler/scheduler_config.json",
    "unet/config.json",
    "vae/config.json",
    "image_encoder/config.json",
)


def diffusers_weight_file(folder: str, stem: str, variant: str | None) -> str:
    """``unet/diffusion_pytorch_model.fp16.safetensors`` for variant 'fp16', without ``.fp16`` for full precision."""
    return f"{folder}/{stem}.{variant}.safetensors" if variant else f"{folder}/{stem}.safetensors"


def diffusers_files(variant: str | None) -> list[str]:
    """Repository paths of a diffusers-layout SVD checkpoint, configs first (small), then weights."""
    return list(DIFFUSERS_CONFIGS) + [diffusers_weight_file(f, s, variant) for f, s, _ in DIFFUSERS_WEIGHTS]


@dataclass(frozen=True)
class CheckpointSpec:
    """One known checkpoint.

    ``name`` is what users type (``svd-lab download svd_xt``) and the folder under ``checkpoints/``; ``version`` is
    the model version the sampling code understands (frames, steps and guidance defaults follow from it).
    """

    name: str
    version: str
    description: str
    formats: tuple[str, ...]
    repo_id: str | None = None
    sgm_file: str | None = None  # file name of the sgm single file in the repo (also its hand-placed name)
    num_frames: int | None = None
    licence: str = ""
    licence_note: str = ""
    gated: bool = False
    sizes: dict[str, int] = field(default_factory=dict)  # "diffusers" / "diffusers-fp16" / "sgm" / "mini" -> bytes

    @property
    def downloadable(self) -> bool:
        return self.repo_id is not None

    @property
    def repo_url(self) -> str | None:
        """The model page on the hub: where the licence is read (and, for a gated repo, accepted)."""
        return f"{HUB_WEB}/{self.repo_id}" if self.repo_id else None

    def files(self, format: str, variant: str | None = None) -> list[str]:
        """Repository paths that make this checkpoint in ``format`` (variant only matters for diffusers)."""
        if format not in self.formats:
            raise ValueError(f"{self.name} has no {format!r} format (it has: {', '.join(self.formats)})")
        if format == DIFFUSERS:
            return diffusers_files(variant)
        if format == SGM:
            return [self.sgm_file]
        return []

    def size(self, format: str, variant: str | None = None) -> int | None:
        key = f"{format}-{variant}" if (format == DIFFUSERS and variant) else format
        return self.sizes.get(key)


def _diffusers_sizes() -> dict[str, int]:
    return {
        DIFFUSERS: 4 * sum(n for _, _, n in DIFFUSERS_WEIGHTS),
        f"{DIFFUSERS}-{FP16}": 2 * sum(n for _, _, n in DIFFUSERS_WEIGHTS),
    }


_SVD_LICENCE = "stable-video-diffusion-community"
_SVD_LICENCE_NOTE = ("released as stable-video-diffusion-nc-community (research only), later relicensed to the "
                     "Stability AI Community licence: read the model card before use")

REGISTRY: dict[str, CheckpointSpec] = {}


def _register(spec: CheckpointSpec) -> None:
    REGISTRY[spec.name] = spec


_register(CheckpointSpec(
    name="svd", version="svd", num_frames=14,
    description="Stable Video Diffusion: 14 frames at 576x1024",
    formats=(DIFFUSERS, SGM), repo_id="stabilityai/stable-video-diffusion-img2vid", sgm_file="svd.safetensors",
    licence=_SVD_LICENCE, licence_note=_SVD_LICENCE_NOTE, gated=False,
    sizes={**_diffusers_sizes(), SGM: 4 * _SGM_TEMPORAL_DECODER_VALUES},
))
_register(CheckpointSpec(
    name="svd_image_decoder", version="svd_image_decoder", num_frames=14,
    description="svd with a per-frame (image) VAE decoder instead of the temporal one",
    formats=(SGM,), repo_id="stabilityai/stable-video-diffusion-img2vid", sgm_file="svd_image_decoder.safetensors",
    licence=_SVD_LICENCE, licence_note=_SVD_LICENCE_NOTE, gated=False,
    sizes={SGM: 4 * _SGM_IMAGE_DECODER_VALUES},
))
_register(CheckpointSpec(
    name="svd_xt", version="svd_xt", num_frames=25,
    description="SVD-XT: 25 frames at 576x1024 (fine-tuned from svd)",
    formats=(DIFFUSERS, SGM), repo_id="stabilityai/stable-video-diffusion-img2vid-xt",
    sgm_file="svd_xt.safetensors",
    licence=_SVD_LICENCE, licence_note=_SVD_LICENCE_NOTE, gated=False,
    sizes={**_diffusers_sizes(), SGM: 4 * _SGM_TEMPORAL_DECODER_VALUES},
))
_register(CheckpointSpec(
    name="svd_xt_image_decoder", version="svd_xt_image_decoder", num_frames=25,
    description="svd_xt with a per-frame (image) VAE decoder",
    formats=(SGM,), repo_id="stabilityai/stable-video-diffusion-img2vid-xt",
    sgm_file="svd_xt_image_decoder.safetensors",
    licence=_SVD_LICENCE, licence_note=_SVD_LICENCE_NOTE, gated=False,
    sizes={SGM: 4 * _SGM_IMAGE_DECODER_VALUES},
))
_register(CheckpointSpec(
    name="svd_xt_1_1", version="svd_xt_1_1", num_frames=25,
    description="SVD-XT 1.1: svd_xt fine-tuned for fixed conditioning (6 fps, motion bucket 127)",
    formats=(DIFFUSERS, SGM), repo_id="stabilityai/stable-video-diffusion-img2vid-xt-1-1",
    sgm_file="svd_xt_1_1.safetensors",
    licence="stable-video-diffusion-1-1-community",
    licence_note=("Stability AI Community licence (free below US$1M annual revenue); gated: log in on the hub and "
                  "'agree to share your contact information' first"),
    gated=True,
    sizes={**_diffusers_sizes(), SGM: 4 * _SGM_TEMPORAL_DECODER_VALUES},
))
_register(CheckpointSpec(
    name="mini", version="mini",
    description=("the course's mini world model (autoencoder.safetensors + dit.safetensors), trained with "
                 "tools/train_mini.sh and shipped in the repository at checkpoints/mini/"),
    formats=(MINI,), repo_id=None,
    licence="Apache-2.0", licence_note="part of svd-lab",
    gated=False,
))


def get_spec(name: str) -> CheckpointSpec:
    """The registry entry called ``name``; a clear error listing the known names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(REGISTRY)
        close = [n for n in REGISTRY if n.replace("_", "-") == name.replace("_", "-").lower()]
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise KeyError(f"unknown checkpoint {name!r}{hint}; known: {known}. See `svd-lab models`.") from None


def spec_for_sgm_file(filename: str) -> CheckpointSpec | None:
    """The registry entry whose sgm single file is called ``filename`` (e.g. ``svd.safetensors``)."""
    for spec in REGISTRY.values():
        if spec.sgm_file == filename:
            return spec
    return None
