"""Load SVD weights from disk, offline: diffusers-format folders (the hub layout) and sgm single files.

A diffusers folder (``stabilityai/stable-video-diffusion-img2vid*`` on the hub)::

    model_index.json
    unet/config.json            unet/diffusion_pytorch_model[.fp16].safetensors
    vae/config.json             vae/diffusion_pytorch_model[.fp16].safetensors
    image_encoder/config.json   image_encoder/model[.fp16].safetensors
    feature_extractor/preprocessor_config.json
    scheduler/scheduler_config.json          (not needed: our sampler has the schedule)

Always load with an explicit dtype: the hub's ``image_encoder/config.json`` says float16, so loading without one
gives a half-float image encoder next to float32 networks, and the pipeline fails ("Half vs Float").
Weights are read from safetensors only (never pickle) and nothing is fetched from the network.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from svd_lab.svd.components import ClipImagePreprocessing, SVDComponents
from svd_lab.svd.versions import DECODER_IMAGE, DECODER_TEMPORAL, VERSIONS, get_version

WEIGHT_FILES = {"unet": "diffusion_pytorch_model", "vae": "diffusion_pytorch_model", "image_encoder": "model"}


class CheckpointLoadError(ValueError):
    """A checkpoint path that cannot be loaded; the message says why and what to do."""


def _weights_present(folder: Path, part: str, variant: str | None) -> bool:
    stem = WEIGHT_FILES[part]
    name = f"{stem}.{variant}.safetensors" if variant else f"{stem}.safetensors"
    return (folder / part / name).is_file() or (folder / part / f"{name}.index.json").is_file()


def choose_variant(folder: Path, variant: str | None = "auto") -> str | None:
    """'auto': full-precision files when every part has them, else the fp16 files; or check the requested one."""
    parts = list(WEIGHT_FILES)
    if variant == "auto":
        for candidate in (None, "fp16"):
            if all(_weights_present(folder, p, candidate) for p in parts):
                return candidate
        missing = [p for p in parts if not (_weights_present(folder, p, None) or _weights_present(folder, p, "fp16"))]
        raise CheckpointLoadError(
            f"{folder} is incomplete: no safetensors weights for {', '.join(missing) or 'a consistent variant'} "
            "(expected e.g. unet/diffusion_pytorch_model.fp16.safetensors); download it again with "
            "`svd-lab download`")
    missing = [p for p in parts if not _weights_present(folder, p, variant)]
    if missing:
        raise CheckpointLoadError(f"{folder} has no {variant or 'full-precision'} weights for {', '.join(missing)}")
    return variant


def infer_version(folder: Path) -> str:
    """The version a diffusers folder holds: an svd_lab record if any, else the UNet's num_frames (14: svd, 25: svd_xt)."""
    for record in ("svd_lab_version.json", "svd_lab_conversion.json"):
        path = folder / record
        if path.is_file():
            version = json.loads(path.read_text()).get("version")
            if version in VERSIONS:
                return version
    frames = json.loads((folder / "unet" / "config.json").read_text()).get("num_frames")
    return "svd_xt" if frames == 25 else "svd"


def _clip_preprocessing(folder: Path) -> ClipImagePreprocessing:
    path = folder / "feature_extractor" / "preprocessor_config.json"
    if not path.is_file():
        return ClipImagePreprocessing()
    cfg = json.loads(path.read_text())
    crop = cfg.get("crop_size") or {}
    size = crop.get("height", 224) if isinstance(crop, dict) else int(crop)
    return ClipImagePreprocessing(mean=tuple(cfg.get("image_mean", ClipImagePreprocessing.mean)),
                                  std=tuple(cfg.get("image_std", ClipImagePreprocessing.std)), size=int(size))


def load_diffusers_folder(path: str | os.PathLike, dtype: torch.dtype = torch.float32,
                          device: str | torch.device = "cpu", variant: str | None = "auto",
                          version: str | None = None) -> SVDComponents:
    """Load unet/, vae/ and image_encoder/ of a hub-layout folder (offline, safetensors, explicit dtype).

    Args:
        variant: 'auto' (full precision if complete, else fp16), None (full precision) or 'fp16'. The file variant
            is independent of ``dtype``: fp16 files load into float32 modules and vice versa.
        version: which SVD version the folder holds (default: inferred, see :func:`infer_version`).
    """
    from diffusers import AutoencoderKL, AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
    from transformers import CLIPVisionModelWithProjection

    from svd_lab.svd.configs import tiny_unet_config

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise CheckpointLoadError(f"{folder} is not a folder")
    index = folder / "model_index.json"
    if not index.is_file():
        raise CheckpointLoadError(f"{folder} has no model_index.json: not a diffusers-format SVD folder")
    cls = json.loads(index.read_text()).get("_class_name")
    if cls != "StableVideoDiffusionPipeline":
        raise CheckpointLoadError(f"{folder} holds a {cls}, not a StableVideoDiffusionPipeline")
    for part in WEIGHT_FILES:
        if not (folder / part / "config.json").is_file():
            raise CheckpointLoadError(f"{folder} has no {part}/config.json")
    variant = choose_variant(folder, variant)
    version = version or infer_version(folder)
    spec = get_version(version)

    common = {"local_files_only": True, "use_safetensors": True, "variant": variant}
    unet = UNetSpatioTemporalConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype, **common)
    vae_class = json.loads((folder / "vae" / "config.json").read_text()).get("_class_name")
    decoder = DECODER_IMAGE if vae_class == "AutoencoderKL" else DECODER_TEMPORAL
    vae_type = AutoencoderKL if decoder == DECODER_IMAGE else AutoencoderKLTemporalDecoder
    vae = vae_type.from_pretrained(folder, subfolder="vae", torch_dtype=dtype, **common)
    encoder = CLIPVisionModelWithProjection.from_pretrained(folder, subfolder="image_encoder", dtype=dtype, **common)
    try:  # a folder converted from an sgm file records sgm's GroupNorm eps; re-apply it (svd_lab.convert)
        from svd_lab.convert.sgm import apply_conversion_record
    except ImportError:
        pass
    else:
        apply_conversion_record(folder, unet)

    unet_cfg = {k: v for k, v in dict(unet.config).items() if k in tiny_unet_config()}
    profile = "tiny" if {**unet_cfg, "num_frames": 3} == tiny_unet_config() else "full"
    components = SVDComponents(
        unet=unet, vae=vae, image_encoder=encoder, version=spec.name, decoder=decoder, profile=profile,
        source=f"{folder} (diffusers{', ' + variant if variant else ''})",
        clip_preprocessing=_clip_preprocessing(folder),
    )
    return components.to(device=device, dtype=dtype).eval()


def save_diffusers_folder(components: SVDComponents, path: str | os.PathLike, variant: str | None = None) -> Path:
    """Write components in the hub layout (model_index.json, configs, safetensors weights).

    Used by tests (tiny folders) and by anyone who wants to keep a converted or fine-tuned model.
    """
    from svd_lab.svd.configs import feature_extractor_config, scheduler_config

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for name, module in components.modules().items():
        module.save_pretrained(folder / name, variant=variant, safe_serialization=True)
    index = {
        "_class_name": "StableVideoDiffusionPipeline",
        "feature_extractor": ["transformers", "CLIPImageProcessor"],
        "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
        "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "unet": ["diffusers", "UNetSpatioTemporalConditionModel"],
        "vae": ["diffusers", type(components.vae).__name__],
    }
    (folder / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    pre = components.clip_preprocessing
    fe = {**feature_extractor_config(), "image_mean": list(pre.mean), "image_std": list(pre.std),
          "image_processor_type": "CLIPImageProcessor"}
    (folder / "feature_extractor").mkdir(exist_ok=True)
    (folder / "feature_extractor" / "preprocessor_config.json").write_text(json.dumps(fe, indent=2) + "\n")
    (folder / "scheduler").mkdir(exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(
        json.dumps({"_class_name": "EulerDiscreteScheduler", **scheduler_config()}, indent=2) + "\n")
    (folder / "svd_lab_version.json").write_text(json.dumps({"version": components.version}) + "\n")
    return folder


def load_checkpoint(path: str | os.PathLike, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                    version: str | None = None, progress: bool = True) -> SVDComponents:
    """Load whatever ``path`` is: a diffusers folder, or an sgm single ``.safetensors`` file (via svd_lab.convert).

    The checkpoints module's integrity check runs first when present (a truncated download never reaches the
    loaders).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointLoadError(f"checkpoint {str(path)!r} does not exist (see `svd-lab models` for what is present)")
    try:
        from svd_lab.checkpoints import require_usable
    except ImportError:
        pass
    else:
        require_usable(path)
    if path.is_dir() and (path / "model_index.json").is_file():
        components = load_diffusers_folder(path, dtype=dtype, device=device, version=version)
    else:
        sgm_file = path
        if path.is_dir():
            files = sorted(path.glob("*.safetensors"))
            if len(files) != 1:
                raise CheckpointLoadError(f"{path} is neither a diffusers folder nor holds exactly one .safetensors file")
            sgm_file = files[0]
        if sgm_file.suffix != ".safetensors":
            raise CheckpointLoadError(f"{sgm_file}: only .safetensors checkpoints are loaded (never pickle files)")
        try:
            from svd_lab.convert.sgm import load_sgm_checkpoint
        except ImportError:
            raise CheckpointLoadError(
                f"{sgm_file} is an sgm single-file checkpoint, and this installation has no sgm loader "
                "(svd_lab.convert)") from None
        components = load_sgm_checkpoint(sgm_file, dtype=dtype, device=device, version=version, progress=progress)
    if version is not None and components.version != version:
        raise CheckpointLoadError(f"{path} holds version {components.version!r}, not {version!r}")
    return components.eval()


def image_decoder_needs_checkpoint(version: str) -> str:
    """The message for an image-decoder version requested without a checkpoint file."""
    return (f"{version} exists only as an sgm single file (per-frame image decoder): pass "
            f"--checkpoint {version}.safetensors (download it with `svd-lab download {version}`)")
