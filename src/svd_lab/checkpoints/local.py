"""What is in the checkpoints folder, and can it be loaded?

Layout (see checkpoints/README.md)::

    checkpoints/
      svd/                      <- `svd-lab download svd`: diffusers layout (model_index.json, unet/, vae/, ...)
        svd.safetensors         <- `svd-lab download svd --format sgm` puts the sgm single file beside it
        .svd-lab/verified.json  <- sha256 of every file, checked once after the download
      svd.safetensors           <- placed by hand, as the seed article does: found too
      mini/                     <- the mini world model's weights, shipped in the repository
      small/                    <- the small SVD (diffusers layout), shipped in the repository

The shipped folders are always found in the checkout's ``checkpoints/``, also when ``SVD_LAB_CHECKPOINTS`` points
at a folder of the user's own: that folder adds checkpoints, it does not hide the course's.

Only files under ``checkpoints/`` are loaded; the Hugging Face cache (``~/.cache/huggingface``) is never read by a
loader. A download copies a file already in that cache instead of fetching it again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from svd_lab.checkpoints.errors import UnusableCheckpointError
from svd_lab.checkpoints.registry import (
    DIFFUSERS,
    MINI,
    REGISTRY,
    SGM,
    SHIPPED,
    SMALL,
    CheckpointSpec,
    spec_for_sgm_file,
)
from svd_lab.checkpoints.verify import VerificationRecord, file_problem
from svd_lab.svd.layout import CONFIG_FILES, FP16, WEIGHT_STEMS, weight_file, weight_files
from svd_lab.svd.versions import version_for_num_frames

# Which format a loader should prefer when both are present: diffusers loads directly, sgm needs a conversion.
_FORMAT_PREFERENCE = {DIFFUSERS: 0, SGM: 1, MINI: 2, SMALL: 3}


@dataclass
class LocalCheckpoint:
    """A checkpoint found on disk.

    ``usable`` is False when a loader must not touch it; ``reason`` then says why (and how to fix it). ``verified``
    is True when every weight file matches a recorded sha256 verification. ``variant`` is 'fp16' or None (full
    precision) for diffusers folders: the files a loader should read.
    """

    name: str
    version: str | None
    format: str
    path: Path
    usable: bool
    reason: str = ""
    variant: str | None = None
    variants: tuple = ()
    size_bytes: int = 0
    verified: bool = False
    placed: str = "download"  # download | hand | shipped
    files: list[Path] = field(default_factory=list)

    def __str__(self) -> str:
        state = "usable" if self.usable else f"NOT usable: {self.reason}"
        return f"{self.name} ({self.format}) at {self.path}: {state}"


def checkpoints_root(dir: Path | str | None = None) -> Path:
    """``dir`` (``~`` expanded), or the project's checkpoints folder (``svd_lab.paths.checkpoints_dir()``)."""
    if dir is not None:
        return Path(dir).expanduser()
    from svd_lab.paths import checkpoints_dir

    return checkpoints_dir()


def _check_files(files: list[Path], record: VerificationRecord | None) -> tuple[str, bool]:
    """('' or the first problem, all verified) for the files a loader would open."""
    problems, verified = [], True
    for f in files:
        problem, ok = file_problem(f, record)
        verified = verified and ok
        if problem:
            problems.append(problem)
    return "; ".join(problems), verified and bool(files)


def _is_wan_folder(folder: Path, spec) -> bool:
    if spec is not None:
        return spec.listed
    try:
        return str(json.loads((folder / "model_index.json").read_text()).get("_class_name", "")).startswith("Wan")
    except (OSError, ValueError, AttributeError):
        return False


def inspect_wan_folder(folder: Path, name: str | None = None) -> LocalCheckpoint:
    """Describe a diffusers-layout Wan folder: model_index.json, each network's config and every weight file its
    shard index names, each weight file verified against the download's record (or structurally complete)."""
    folder = Path(folder)
    name = name or folder.name
    spec = REGISTRY.get(name)
    version = spec.version if spec is not None and spec.listed else None
    missing: list[str] = [] if (folder / "model_index.json").is_file() else ["model_index.json"]
    weights: list[Path] = []
    for part in ("transformer", "vae", "text_encoder"):
        sub = folder / part
        if not (sub / "config.json").is_file():
            missing.append(f"{part}/config.json")
        part_weights = sorted(sub.glob("*.safetensors")) if sub.is_dir() else []
        for index in sorted(sub.glob("*.safetensors.index.json")) if sub.is_dir() else []:
            try:
                shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (OSError, ValueError, KeyError, AttributeError):
                missing.append(f"{part}/{index.name} (unreadable)")
                continue
            missing += [f"{part}/{s}" for s in shards if not (sub / s).is_file()]
        if not part_weights:
            missing.append(f"{part}/*.safetensors")
        weights += part_weights
    if not (folder / "tokenizer").is_dir():
        missing.append("tokenizer/")
    hint = f"svd-lab download {name}" if spec is not None and spec.downloadable else "download it again"
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and ".svd-lab" not in p.relative_to(folder).parts]
    if missing:
        return LocalCheckpoint(name, version, DIFFUSERS, folder, usable=False,
                               reason=f"incomplete, missing {', '.join(missing)}: run `{hint}` (it resumes)",
                               files=files)
    problem, verified = _check_files(weights, VerificationRecord(folder))
    return LocalCheckpoint(name, version, DIFFUSERS, folder, usable=not problem,
                           reason=f"{problem}: run `{hint}` to re-fetch it" if problem else "",
                           size_bytes=sum(f.stat().st_size for f in files), verified=verified, files=files)


def inspect_diffusers_folder(folder: Path, name: str | None = None) -> LocalCheckpoint:
    """Describe a diffusers-layout SVD folder (the one with model_index.json); a Wan folder is described by
    :func:`inspect_wan_folder`."""
    folder = Path(folder)
    name = name or folder.name
    spec = REGISTRY.get(name)
    if _is_wan_folder(folder, spec):
        return inspect_wan_folder(folder, name)
    version = spec.version if spec is not None and DIFFUSERS in spec.formats else None
    if version is None:  # a folder not named after a registry entry: the UNet's frame count tells the version
        try:
            frames = json.loads((folder / "unet" / "config.json").read_text()).get("num_frames")
            version = version_for_num_frames(frames)
        except (OSError, ValueError):
            version = None
    complete = [variant for variant in (None, FP16)
                if all((folder / name).is_file() for name in weight_files(variant))]
    variant = complete[0] if complete else None
    missing = [c for c in CONFIG_FILES if not (folder / c).is_file()]
    if not complete:
        missing += [weight_file(part) + " (or .fp16)" for part in WEIGHT_STEMS
                    if not (folder / weight_file(part)).is_file() and not (folder / weight_file(part, FP16)).is_file()]
    weights = [folder / name for name in weight_files(variant)]
    files = [folder / c for c in CONFIG_FILES] + weights
    hint = f"svd-lab download {name}" if spec is not None and spec.downloadable else "download it again"
    if missing or not complete:
        return LocalCheckpoint(name, version, DIFFUSERS, folder, usable=False,
                               reason=f"incomplete, missing {', '.join(missing)}: run `{hint}` (it resumes)",
                               files=files, variants=tuple(complete))
    record = VerificationRecord(folder)
    problem, verified = _check_files(weights, record)
    size = sum(f.stat().st_size for f in files if f.is_file())
    return LocalCheckpoint(name, version, DIFFUSERS, folder, usable=not problem,
                           reason=f"{problem}: run `{hint}` to re-fetch it" if problem else "",
                           variant=variant, variants=tuple(complete), size_bytes=size, verified=verified,
                           files=files)


def inspect_sgm_file(path: Path, placed: str = "download") -> LocalCheckpoint:
    """Describe an sgm single file (``svd.safetensors`` ...). Unknown file names get version None (see
    checkpoints/README.md for the names that tell the release)."""
    path = Path(path)
    spec = spec_for_sgm_file(path.name)
    name = spec.name if spec is not None else path.stem
    version = spec.version if spec is not None else None
    record = VerificationRecord(path.parent)
    problem, verified = _check_files([path], record)
    if problem:
        hint = f"svd-lab download {name} --format sgm" if spec is not None else "copy it again"
        problem = f"{problem}: run `{hint}`"
    # An unknown file name (a fine-tune, a renamed copy) stays loadable by path; with version None it is never
    # picked by find_checkpoint, and the loader tells the version from the file itself.
    return LocalCheckpoint(name, version, SGM, path, usable=not problem, reason=problem or "",
                           size_bytes=path.stat().st_size, verified=verified, placed=placed, files=[path])


def inspect_download(spec: CheckpointSpec, format: str, target: Path) -> LocalCheckpoint:
    """The local checkpoint a download of ``spec`` in ``format`` into ``target`` (``checkpoints/<name>``) made.

    For the sgm format that is ``target/<sgm file>``, or the file placed by hand beside ``target`` when the download
    verified that one in place.
    """
    if format == DIFFUSERS:
        return inspect_diffusers_folder(target, name=spec.name)
    downloaded, hand_placed = target / spec.sgm_file, target.parent / spec.sgm_file
    if not downloaded.is_file() and hand_placed.is_file():
        return inspect_sgm_file(hand_placed, placed="hand")
    return inspect_sgm_file(downloaded)


# The mini world model's files (svd_lab.mini.model: AUTOENCODER_FILE, DIT_FILE), named here so that listing
# checkpoints does not import torch.
MINI_FILES = ("autoencoder.safetensors", "dit.safetensors")


def inspect_mini_folder(folder: Path) -> LocalCheckpoint:
    """The mini world model's weights: ``autoencoder.safetensors`` and ``dit.safetensors``, both complete."""
    folder = Path(folder)
    weights = [folder / name for name in MINI_FILES]
    missing = [w.name for w in weights if not w.is_file()]
    if missing:
        return LocalCheckpoint("mini", "mini", MINI, folder, usable=False, placed="shipped", files=weights,
                               reason=f"missing {', '.join(missing)}: restore them from the repository "
                                      f"(git checkout checkpoints/mini) or retrain with tools/train_mini.sh")
    record = VerificationRecord(folder)
    problem, verified = _check_files(weights, record)
    size = sum(w.stat().st_size for w in weights)
    return LocalCheckpoint("mini", "mini", MINI, folder, usable=not problem, reason=problem,
                           size_bytes=size, verified=verified, placed="shipped", files=weights)


def _is_shipped(path: Path) -> bool:
    """Whether ``path`` is a shipped model's folder by its place: ``checkpoints/mini`` or ``checkpoints/small``."""
    return path.parent.name == "checkpoints" or path.parent.resolve() == _shipped_root().resolve()


def _shipped_root() -> Path:
    from svd_lab.paths import shipped_checkpoints_dir

    return shipped_checkpoints_dir()


def inspect_small_folder(folder: Path) -> LocalCheckpoint:
    """The small SVD's folder: a diffusers folder, listed under its own name and format (never taken for svd)."""
    found = inspect_diffusers_folder(folder, name=SMALL)
    found.version, found.format, found.placed = SMALL, SMALL, "shipped"
    if not found.usable and "incomplete" in found.reason:
        found.reason = (f"{found.reason.split(':')[0]}: restore it from the repository (git checkout -- "
                        "checkpoints/small) or retrain with tools/train_small.sh")
    return found


_SHIPPED_INSPECTORS = {MINI: inspect_mini_folder, SMALL: inspect_small_folder}


def inspect_path(path: Path | str) -> LocalCheckpoint:
    """Describe whatever ``path`` is: a diffusers folder, an sgm file, a folder holding one sgm file, or a shipped
    model's folder (checkpoints/mini, checkpoints/small)."""
    path = Path(path).expanduser()
    if path.is_file() and path.suffix == ".safetensors":
        return inspect_sgm_file(path, placed="hand")
    if path.is_dir():
        if path.name in _SHIPPED_INSPECTORS and _is_shipped(path):
            return _SHIPPED_INSPECTORS[path.name](path)
        if (path / "model_index.json").is_file():
            return inspect_diffusers_folder(path)
        if path.name == MINI:
            return inspect_mini_folder(path)
        sgm = [p for p in sorted(path.glob("*.safetensors"))]
        if len(sgm) == 1:
            return inspect_sgm_file(sgm[0])
        raise UnusableCheckpointError(
            f"{path} is neither a diffusers folder (no model_index.json) nor holds exactly one sgm .safetensors file")
    raise UnusableCheckpointError(f"{path} does not exist: see `svd-lab models` for what is present")


def present_checkpoints(dir: Path | str | None = None) -> list[LocalCheckpoint]:
    """Every checkpoint found in the checkpoints folder (default: ``svd_lab.paths.checkpoints_dir()``).

    Finds ``<dir>/<name>/`` diffusers folders, sgm single files inside them or directly in ``<dir>`` (placed by
    hand, e.g. ``checkpoints/svd.safetensors``), and the shipped ``mini/`` and ``small/`` (from the checkout's
    ``checkpoints/`` when ``dir`` is another folder). Unusable ones are listed too, with the reason.
    """
    root = checkpoints_root(dir)
    found: list[LocalCheckpoint] = []
    entries = sorted(root.iterdir()) if root.is_dir() else []
    names = {e.name for e in entries}
    shipped_root = _shipped_root()
    if dir is None and shipped_root.resolve() != root.resolve():
        entries += [shipped_root / n for n in SHIPPED if n not in names and (shipped_root / n).is_dir()]
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if entry.name in _SHIPPED_INSPECTORS:
                found.append(_SHIPPED_INSPECTORS[entry.name](entry))
                continue
            if (entry / "model_index.json").is_file():
                found.append(inspect_diffusers_folder(entry))
            for f in sorted(entry.glob("*.safetensors")):
                if spec_for_sgm_file(f.name) is not None:
                    found.append(inspect_sgm_file(f))
        elif entry.is_file() and entry.suffix == ".safetensors":
            found.append(inspect_sgm_file(entry, placed="hand"))
    return found


def find_checkpoint(version: str, dir: Path | str | None = None, format: str | None = None) -> LocalCheckpoint | None:
    """The usable local checkpoint for ``version`` (or registry name), diffusers before sgm; None when there is none.

    This is what the pipeline's ``profile="auto"`` asks: a checkpoint listed here passed the integrity checks
    (recorded sha256 verification, or a complete safetensors structure).
    """
    candidates = [c for c in present_checkpoints(dir)
                  if c.usable and version in (c.version, c.name) and (format is None or c.format == format)]
    candidates.sort(key=lambda c: (_FORMAT_PREFERENCE.get(c.format, 9), not c.verified, c.placed == "hand"))
    return candidates[0] if candidates else None


def require_usable(path: Path | str) -> LocalCheckpoint:
    """Inspect ``path`` and raise :class:`UnusableCheckpointError` with the reason unless it may be loaded.

    Loaders call this before opening any weight file, so a truncated or corrupted download never reaches them.
    """
    ckpt = inspect_path(path)
    if not ckpt.usable:
        raise UnusableCheckpointError(f"{ckpt.path} cannot be loaded: {ckpt.reason}")
    return ckpt
