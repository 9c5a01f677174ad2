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

import contextlib
import json
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import torch

from svd_lab.alignment import align_module
from svd_lab.atomic import new_directory_beside
from svd_lab.convert.record import apply_conversion_record
from svd_lab.errors import CheckpointLoadError
from svd_lab.svd.components import ClipImagePreprocessing, SVDComponents
from svd_lab.svd.layout import FP16, WEIGHT_STEMS, files_fingerprint, weight_file
from svd_lab.svd.versions import (
    DECODER_IMAGE,
    DECODER_TEMPORAL,
    DEFAULT_VERSION,
    VERSIONS,
    get_version,
    version_for_num_frames,
)


def _weights_present(folder: Path, part: str, variant: str | None) -> bool:
    name = weight_file(part, variant)
    # a large model may be saved in shards: <name>.index.json lists them
    return (folder / name).is_file() or (folder / f"{name}.index.json").is_file()


def choose_variant(folder: Path, variant: str | None = "auto") -> str | None:
    """'auto': full-precision files when every part has them, else the fp16 files; or check the requested one."""
    parts = list(WEIGHT_STEMS)
    if variant == "auto":
        for candidate in (None, FP16):
            if all(_weights_present(folder, p, candidate) for p in parts):
                return candidate
        missing = [p for p in parts if not (_weights_present(folder, p, None) or _weights_present(folder, p, FP16))]
        raise CheckpointLoadError(
            f"{folder} is incomplete: no safetensors weights for {', '.join(missing) or 'a consistent variant'} "
            f"(expected e.g. {weight_file('unet', FP16)}); download it again with `svd-lab download`")
    missing = [p for p in parts if not _weights_present(folder, p, variant)]
    if missing:
        raise CheckpointLoadError(f"{folder} has no {variant or 'full-precision'} weights for {', '.join(missing)}")
    return variant


def infer_version(folder: Path) -> str:
    """The version a diffusers folder holds: an svd_lab record if any, else the one the UNet's num_frames suggests
    (:func:`~svd_lab.svd.versions.version_for_num_frames`: 14 svd, 25 svd_xt), else the default version."""
    for record in ("svd_lab_version.json", "svd_lab_conversion.json"):
        path = folder / record
        if path.is_file():
            version = json.loads(path.read_text()).get("version")
            if version in VERSIONS:
                return version
    frames = json.loads((folder / "unet" / "config.json").read_text()).get("num_frames")
    return version_for_num_frames(frames) or DEFAULT_VERSION  # any other count (the tiny profile's 3): svd


def _clip_preprocessing(folder: Path) -> ClipImagePreprocessing:
    path = folder / "feature_extractor" / "preprocessor_config.json"
    if not path.is_file():
        return ClipImagePreprocessing()
    cfg = json.loads(path.read_text())
    crop = cfg.get("crop_size") or {}
    size = crop.get("height", 224) if isinstance(crop, dict) else int(crop)
    return ClipImagePreprocessing(mean=tuple(cfg.get("image_mean", ClipImagePreprocessing.mean)),
                                  std=tuple(cfg.get("image_std", ClipImagePreprocessing.std)), size=int(size))


def check_diffusers_folder(folder: Path, variant: str | None = "auto",
                           version: str | None = None) -> tuple[str | None, str]:
    """What a folder must be before any weight is read: a StableVideoDiffusionPipeline in the hub layout with
    weights for every network. Returns (the variant to load, the version); a :class:`CheckpointLoadError` says
    what is wrong."""
    if not folder.is_dir():
        raise CheckpointLoadError(f"{folder} is not a folder")
    index = folder / "model_index.json"
    if not index.is_file():
        raise CheckpointLoadError(f"{folder} has no model_index.json: not a diffusers-format SVD folder")
    try:
        cls = json.loads(index.read_text()).get("_class_name")
    except (ValueError, AttributeError):
        raise CheckpointLoadError(f"{index} is not readable JSON: download the checkpoint again") from None
    if cls != "StableVideoDiffusionPipeline":
        raise CheckpointLoadError(f"{folder} holds a {cls}, not a StableVideoDiffusionPipeline")
    for part in WEIGHT_STEMS:
        if not (folder / part / "config.json").is_file():
            raise CheckpointLoadError(f"{folder} has no {part}/config.json")
    return choose_variant(folder, variant), version or infer_version(folder)


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

    folder = Path(path).expanduser()
    variant, version = check_diffusers_folder(folder, variant, version)
    spec = get_version(version)

    common = {"local_files_only": True, "use_safetensors": True, "variant": variant}
    unet = UNetSpatioTemporalConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype, **common)
    vae_class = json.loads((folder / "vae" / "config.json").read_text()).get("_class_name")
    decoder = DECODER_IMAGE if vae_class == "AutoencoderKL" else DECODER_TEMPORAL
    vae_type = AutoencoderKL if decoder == DECODER_IMAGE else AutoencoderKLTemporalDecoder
    vae = vae_type.from_pretrained(folder, subfolder="vae", torch_dtype=dtype, **common)
    encoder = CLIPVisionModelWithProjection.from_pretrained(folder, subfolder="image_encoder", dtype=dtype, **common)
    apply_conversion_record(folder, unet)      # a folder converted from an sgm file: sgm's GroupNorm eps

    profile = _recorded_profile(folder) or profile_of_unet_config(dict(unet.config))
    components = SVDComponents(
        unet=unet, vae=vae, image_encoder=encoder, version=spec.name, decoder=decoder, profile=profile,
        source=f"{folder} (diffusers{', ' + variant if variant else ''})",
        clip_preprocessing=_clip_preprocessing(folder),
        fingerprint=files_fingerprint(sorted(folder.rglob("*.safetensors"))),
        trained_size=_recorded_size(folder),
        sampling=_recorded_sampling(folder),
    )
    components.to(device=device, dtype=dtype)
    for module in components.modules().values():
        # from_pretrained leaves CPU weights in the file's memory map, at unaligned addresses where CPU kernels take
        # another path (svd_lab.alignment): aligned copies compute exactly what the saved networks computed
        align_module(module)
    return components.eval()


def _recorded_profile(folder: Path) -> str | None:
    """'small' for a folder the small SVD's trainer wrote (its record says ``"model": "small"``), whatever its size."""
    path = folder / "svd_lab_version.json"
    try:
        return "small" if json.loads(path.read_text()).get("model") == "small" else None
    except (OSError, ValueError, AttributeError):
        return None


def _recorded_size(folder: Path) -> tuple[int, int] | None:
    """(height, width) a fine-tuned folder was trained at (``svd-lab finetune`` records it), else None."""
    try:
        size = json.loads((folder / "svd_lab_version.json").read_text()).get("trained_size")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size):
        return int(size[0]), int(size[1])
    return None


#: the sampling defaults a folder's record may recommend (svd_lab_version.json's "sampling"), and their checks
RECORDED_SAMPLING = {"num_steps": "a whole number >= 1", "min_guidance": "a finite number",
                     "max_guidance": "a finite number"}


def _recorded_sampling(folder: Path) -> dict:
    """The sampling defaults the folder's record recommends (the small SVD's trainer writes them), else {}.

    A record that names one wrongly is refused: sampling silently with other settings would change every video."""
    path = folder / "svd_lab_version.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    value = record.get("sampling", {}) if isinstance(record, dict) else {}

    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    bad = ([f"{key!r} (known: {', '.join(RECORDED_SAMPLING)})" for key in value if key not in RECORDED_SAMPLING]
           if isinstance(value, dict) else [f"{value!r} (a mapping of settings)"])
    if not bad:
        bad = [f"{key}: {v!r} (must be {RECORDED_SAMPLING[key]})" for key, v in value.items()
               if not number(v) or (key == "num_steps" and (v != int(v) or v < 1))]
    if bad:
        raise CheckpointLoadError(f"{path}: its 'sampling' defaults are not usable: {'; '.join(bad)}. Fix the file, "
                                  "or delete the entry to sample with the version's defaults")
    return {key: int(v) if key == "num_steps" else float(v) for key, v in value.items()}


def profile_of_unet_config(config: dict) -> str:
    """'tiny' or 'small' when a UNet config is one of those profiles' (any frame count), else 'full'."""
    from svd_lab.svd.configs import CONFIGS

    for profile in ("tiny", "small"):
        reference = CONFIGS[profile]["unet"]()
        if {**{k: v for k, v in config.items() if k in reference}, "num_frames": reference["num_frames"]} == reference:
            return profile
    return "full"


def _write_json(path: Path, data: dict) -> None:
    """One JSON file of a diffusers folder (its subfolder created if needed), indented, keys sorted."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def _folder_to_write(folder: Path, atomic: bool):
    """Yield where to write ``folder``: the folder itself, or (``atomic``) a hidden staging folder beside it.

    Atomic: ``folder`` must not exist; the staging folder is renamed to it only after the body finished, and
    removed on any failure (Ctrl-C included), so nothing half-written ever looks like a complete folder, and nothing
    is overwritten.
    """
    from svd_lab.errors import CheckpointError

    if not atomic:
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    if folder.exists():
        raise CheckpointError(f"{folder} already exists; choose a new folder (nothing is overwritten)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = new_directory_beside(folder)      # hidden, and with the permissions of any folder the user makes
    try:
        yield staging
        if folder.exists():  # appeared while we were writing
            raise CheckpointError(f"{folder} appeared while it was being written; nothing was overwritten")
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def save_diffusers_folder(components: SVDComponents, path: str | os.PathLike, variant: str | None = None, *,
                          record: dict | None = None, record_name: str = "svd_lab_version.json",
                          atomic: bool = False, extras: Callable[[Path], None] | None = None) -> Path:
    """Write components in the hub layout: model_index.json, unet/ vae/ image_encoder/ (config + safetensors),
    feature_extractor/, scheduler/, and svd-lab's record of the version. The one writer of diffusers folders
    (tests' tiny folders, the sgm converter, the small SVD).

    Args:
        variant: weight file variant (``"fp16"`` -> ``*.fp16.safetensors``); None: the plain file names.
        record, record_name: the svd-lab record written beside the networks, ``{"version": ..., **record}`` in
            ``record_name`` (:func:`infer_version` reads ``svd_lab_version.json`` or the sgm converter's
            ``svd_lab_conversion.json``), with the components' recommended sampling defaults
            (:attr:`SVDComponents.sampling`: a fine-tuned or merged model keeps its base's).
        atomic: assemble the folder under a hidden temporary name beside ``path`` and rename it when complete;
            ``path`` must not exist. Otherwise the files are written into ``path`` (created when missing).
        extras: called with the folder being written, after the networks, to add files of the caller's (the small
            model's training log and loss plot): part of the same atomic write.
    """
    import diffusers

    from svd_lab.svd.configs import feature_extractor_config, scheduler_config

    folder = Path(path)
    with _folder_to_write(folder, atomic) as target:
        for name, module in components.modules().items():
            module.save_pretrained(target / name, variant=variant, safe_serialization=True)
            config = target / name / "config.json"
            saved = json.loads(config.read_text())
            if saved.pop("_name_or_path", None) is not None:
                # a model loaded from a folder remembers that folder's local path: not something to publish
                config.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
        _write_json(target / "model_index.json", {
            "_class_name": "StableVideoDiffusionPipeline",
            "_diffusers_version": diffusers.__version__,
            "feature_extractor": ["transformers", "CLIPImageProcessor"],
            "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
            "scheduler": ["diffusers", "EulerDiscreteScheduler"],
            "unet": ["diffusers", "UNetSpatioTemporalConditionModel"],
            "vae": ["diffusers", type(components.vae).__name__],
        })
        pre = components.clip_preprocessing
        _write_json(target / "feature_extractor" / "preprocessor_config.json", {
            **feature_extractor_config(), "image_mean": list(pre.mean), "image_std": list(pre.std),
            "image_processor_type": "CLIPImageProcessor"})
        _write_json(target / "scheduler" / "scheduler_config.json", {
            "_class_name": "EulerDiscreteScheduler", "_diffusers_version": diffusers.__version__,
            **scheduler_config()})
        sampling = {"sampling": dict(components.sampling)} if components.sampling else {}
        _write_json(target / record_name, {"version": components.version, **sampling, **(record or {})})
        if extras is not None:
            extras(target)
    return folder


def _checkpoint_kind(path: Path, head_sizes: dict) -> tuple[str, Path]:
    """('diffusers', folder) or ('sgm', file) for a checked path; refuses head sizes for a diffusers folder."""
    if path.is_dir() and (path / "model_index.json").is_file():
        if any(v is not None for v in head_sizes.values()):
            raise CheckpointLoadError(f"{path} is a diffusers folder: its attention head sizes are in its configs; "
                                      "head sizes are given only for an sgm .safetensors file")
        return "diffusers", path
    sgm_file = path
    if path.is_dir():
        files = sorted(path.glob("*.safetensors"))
        if len(files) != 1:
            raise CheckpointLoadError(f"{path} is neither a diffusers folder nor holds exactly one .safetensors file")
        sgm_file = files[0]
    if sgm_file.suffix != ".safetensors":
        raise CheckpointLoadError(f"{sgm_file}: only .safetensors checkpoints are loaded (never pickle files)")
    return "sgm", sgm_file


def check_checkpoint(path: str | os.PathLike, version: str | None = None, unet_head_channels: int | None = None,
                     clip_head_width: int | None = None) -> str:
    """Everything :func:`load_checkpoint` checks before reading a weight: the path (no pickle, complete files),
    and that it *is* an SVD checkpoint (a diffusers folder's index and configs, an sgm file's header against the
    networks it describes). Returns the version it holds; raises a :class:`CheckpointLoadError` (or an
    ``SgmCheckpointError``) saying what is wrong. Seconds for any size: run it before a long job starts."""
    path = check_checkpoint_path(path)
    head_sizes = {"unet_head_channels": unet_head_channels, "clip_head_width": clip_head_width}
    kind, target = _checkpoint_kind(path, head_sizes)
    if kind == "diffusers":
        found = check_diffusers_folder(target, "auto", version)[1]
    else:
        from svd_lab.convert.sgm_load import check_sgm_file

        found = check_sgm_file(target, version, **head_sizes)[2]
    if version is not None and found != version:
        raise CheckpointLoadError(f"{path} holds version {found!r}, not {version!r}")
    return found


def load_checkpoint(path: str | os.PathLike, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                    version: str | None = None, progress: bool = True, unet_head_channels: int | None = None,
                    clip_head_width: int | None = None) -> SVDComponents:
    """Load whatever ``path`` is: a diffusers folder, or an sgm single ``.safetensors`` file (via svd_lab.convert).

    The checkpoints module's integrity check runs first when present (a truncated download never reaches the
    loaders). ``unet_head_channels`` / ``clip_head_width``: channels per attention head of an sgm file that is not
    Stability's (64) nor a registered profile (see :func:`svd_lab.convert.sgm_plan.plan_conversion`); a diffusers
    folder stores its heads in its configs, so they are refused there.
    """
    path = check_checkpoint_path(path)
    head_sizes = {"unet_head_channels": unet_head_channels, "clip_head_width": clip_head_width}
    kind, target = _checkpoint_kind(path, head_sizes)
    if kind == "diffusers":
        components = load_diffusers_folder(target, dtype=dtype, device=device, version=version)
    else:
        from svd_lab.convert.sgm_load import load_sgm_checkpoint  # the converter is needed only for sgm files

        components = load_sgm_checkpoint(target, dtype=dtype, device=device, version=version, progress=progress,
                                         **head_sizes)
    if version is not None and components.version != version:
        raise CheckpointLoadError(f"{path} holds version {components.version!r}, not {version!r}")
    return components.eval()


def image_decoder_needs_checkpoint(version: str) -> str:
    """The message for an image-decoder version requested without a checkpoint file."""
    return (f"{version} exists only as an sgm single file (per-frame image decoder): pass "
            f"--checkpoint {version}.safetensors (download it with `svd-lab download {version}`)")


#: suffixes of pickle-based checkpoints (torch.save, Lightning): loading one can run arbitrary code
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")


def check_checkpoint_path(path: str | os.PathLike) -> Path:
    """Check that ``path`` is something svd-lab may load, before any weights are read; return it as a Path.

    Refused with a :class:`CheckpointLoadError` saying what to do: a missing path, a pickle file (never loaded:
    unpickling runs code), any other non-safetensors file. Then the checkpoints module's integrity check
    (:func:`svd_lab.checkpoints.require_usable`): a truncated or corrupted file never reaches a loader.
    """
    from svd_lab.checkpoints import require_usable

    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointLoadError(f"checkpoint {str(path)!r} does not exist (see `svd-lab models` for what is present)")
    if path.is_file() and path.suffix.lower() in PICKLE_SUFFIXES:
        raise CheckpointLoadError(
            f"{path} is a pickle checkpoint ({path.suffix}): svd-lab never loads pickle files, because unpickling can "
            "run arbitrary code. Use a safetensors release instead: `svd-lab download svd --format sgm` (Stability's "
            "svd.safetensors) or `svd-lab download svd` (diffusers folder). If this file is all you have and you "
            "trust it, convert it once with safetensors: save_file(torch.load(path, weights_only=True)"
            "['state_dict'], 'svd.safetensors')")
    if path.is_file() and path.suffix.lower() != ".safetensors":
        raise CheckpointLoadError(f"{path}: only .safetensors files or diffusers folders are loaded, not "
                                  f"{path.suffix or 'files without a suffix'}")
    require_usable(path)
    return path

