"""Copying checkpoints from Huawei OBS (``obs://bucket/path``) with MoXing, inside ModelArts.

ModelArts (CodeLab, Notebook) ships the ``moxing`` package, whose ``mox.file.copy_parallel(src, dst)`` reads OBS
buckets; nowhere else has it. ``svd-lab download NAME --from obs://...`` uses it instead of the hub, following the
same rules as a hub download (:mod:`svd_lab.checkpoints.staging`): the copy lands in staging, is checked, hashed into
the verification record, and only then moved into ``checkpoints/<name>/``.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from svd_lab.checkpoints.errors import CheckpointError, CorruptDownloadError, ObsUnavailableError
from svd_lab.checkpoints.hub import DownloadPlan, DownloadResult, PlannedFile, _require_listed_layout
from svd_lab.checkpoints.local import checkpoints_root, inspect_download
from svd_lab.checkpoints.registry import DIFFUSERS, HF_MIRROR, downloadable_spec, normalize_variant
from svd_lab.checkpoints.staging import FolderLock, move_into_place, remove_if_empty, staging_dir
from svd_lab.checkpoints.verify import VerificationRecord, safetensors_problem, sha256_file
from svd_lab.svd.layout import FP16

# What an OBS copy's hashes were compared with: OBS publishes no hub hash, so only the structure was checked.
OBS_SOURCE = "obs copy (structure checked; not compared with the hub)"
MODELARTS_HOME = "/home/ma-user"  # the home folder of every ModelArts notebook instance


def copy_from_obs(name: str, source: str, format: str = DIFFUSERS, variant: str | None = FP16,
                  dir: Path | str | None = None, log=print) -> DownloadResult:
    """Copy a checkpoint from Huawei OBS (``obs://bucket/path``) with MoXing, inside ModelArts.

    ``source`` is a folder in the diffusers layout or holding the sgm file, or the sgm ``.safetensors`` file itself.
    The copy lands in staging, is checked (every expected file, complete safetensors structure), hashed into the
    verification record, then moved into ``checkpoints/<name>/``. OBS publishes no hub hash, so the record notes
    that the files were not compared with the hub.
    """
    log = log or (lambda *a, **k: None)
    # 1. an OBS URL, and MoXing to read it (before anything else: outside ModelArts nothing else matters)
    if not source.startswith("obs://"):
        raise CheckpointError(f"--from expects an obs://bucket/path URL, got {source!r}")
    mox = _import_moxing(name)
    started = time.monotonic()

    # 2. which checkpoint, into which folder, made of which files
    spec = downloadable_spec(name, format)
    target = checkpoints_root(dir) / spec.name
    variant = normalize_variant(format, variant, spec)
    repo_files = None if spec.listed else spec.files(format, variant)  # a listed (Wan) release: after the copy
    plan = DownloadPlan(spec, format, variant, target, source, "obs", None,
                        files=[PlannedFile(p, None, None, None, target / p) for p in repo_files or []])
    result = DownloadResult(checkpoint=None, plan=plan)  # type: ignore[arg-type]  (filled in below)

    with FolderLock(target):
        # 3. a staging folder of this process's own, emptied first
        staging = staging_dir(target) / f"obs-{os.getpid()}"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        try:
            # 4. the copy
            log(f"copying    {source} -> {staging} (MoXing)")
            if source.endswith(".safetensors"):
                mox.file.copy(source, str(staging / Path(source).name))
            else:
                mox.file.copy_parallel(source, str(staging))
            # 5. every expected file there, every weight file structurally complete
            if repo_files is None:
                repo_files = spec.files(format, variant, listing=[
                    p.relative_to(staging).as_posix() for p in sorted(staging.rglob("*")) if p.is_file()])
                try:
                    _require_listed_layout(spec, "obs", source, repo_files)
                except CheckpointError as exc:
                    raise CheckpointError(f"{source}: {exc}") from None
            _check_copy(staging, repo_files, source, name, format, variant, target)
            # 6. hashed, moved into place, recorded
            record = VerificationRecord(target)
            for p in repo_files:
                sha = sha256_file(staging / p)
                move_into_place(staging / p, target / p)
                record.add(target / p, sha, OBS_SOURCE)
                result.fetched.append(p)
            record.meta[format] = {"source": source, "variant": variant}
            record.save()
        finally:
            # 7. tidy up, also after a failure: a copy that broke off starts over next time
            shutil.rmtree(staging, ignore_errors=True)
            remove_if_empty(staging_dir(target))

    result.checkpoint = inspect_download(spec, format, target)
    result.seconds = time.monotonic() - started
    return result


def _import_moxing(name: str):
    """The ``moxing`` module, or an :class:`ObsUnavailableError` saying what to do outside ModelArts."""
    try:
        import moxing  # only installed inside Huawei ModelArts images
    except ImportError:
        if Path(MODELARTS_HOME).is_dir():  # ModelArts, but an environment of one's own, without the image's moxing
            raise ObsUnavailableError(
                f"this is ModelArts ({MODELARTS_HOME}), but this Python ({sys.executable}) has no `moxing`: it is "
                f"preinstalled only in the image's own environments (under {MODELARTS_HOME}/anaconda3). Install "
                f"svd-lab into that Python (pip install -e . with its pip) and run the command there, or copy with "
                f"that Python's MoXing into checkpoints/{name}/ and check the copy with `svd-lab models`. See "
                f"docs/modelarts.md.") from None
        raise ObsUnavailableError(
            "--from obs://... works only inside Huawei ModelArts (CodeLab / Notebook), where the `moxing` package "
            "is preinstalled. Elsewhere download from the hub (`svd-lab download NAME`, with --endpoint "
            f"{HF_MIRROR} in mainland China), or copy the files by hand into checkpoints/{name}/.") from None
    return moxing


def _check_copy(staging: Path, repo_files: list[str], source: str, name: str, format: str, variant: str | None,
                target: Path) -> None:
    """Refuse a copy that lacks a file of the checkpoint or holds a truncated safetensors file."""
    missing = [p for p in repo_files if not (staging / p).is_file()]
    if missing:
        raise CheckpointError(f"{source} does not contain {', '.join(missing)} (expected the {format} "
                              f"layout of {name}{', variant ' + variant if variant else ''})")
    for p in repo_files:
        if p.endswith(".safetensors") and (problem := safetensors_problem(staging / p)):
            raise CorruptDownloadError(f"copied from {source}: {problem}; nothing was put in {target}")
