"""Downloading checkpoints from the Hugging Face hub (or a mirror such as https://hf-mirror.com).

Built on ``huggingface_hub``: its repo-info API for the file list, sizes and sha256s; its metadata request
(``HEAD .../resolve/...``, following the redirect to the storage host); its ``http_get`` for the transfer, which
sends ``Range`` requests, retries a broken connection by itself and draws the progress bars; its conventions for
``HF_ENDPOINT``, ``HF_TOKEN`` / ``hf auth login`` and ``HF_HUB_OFFLINE``. What svd-lab adds, because
``huggingface_hub`` 2.4 does not do it:

- **a partial file that survives the process.** The client writes to a per-process temporary name and deletes it on
  failure, so an interrupted 9.5 GB download starts from zero next time. svd-lab hands ``http_get`` its own file
  in ``checkpoints/<name>/.svd-lab/staging/`` and resumes from its length on the next run;
- **content verification.** The client compares sizes only. Each file is hashed in staging and compared with the
  sha256 the hub publishes (git blob id for small files); a mismatch is discarded and fetched once more. Only then is
  it moved (``os.replace``) to its final name, and the verification recorded so loads need not re-hash;
- **a free-disk check before anything is fetched**, with the numbers;
- **errors that say what to do**: gated repository (which licence page, how to pass a token), not found, network
  (with the mirror), offline. A repository that refuses access is an error even if the folder already exists
  (``snapshot_download(local_dir=...)`` returns such a folder silently; svd-lab does not use it).

Where files live: ``checkpoints/<name>/`` is what loaders read and what wins. The Hugging Face cache
(``HF_HUB_CACHE``, by default ``~/.cache/huggingface/hub``) is only a source: a file of the same commit already
there is copied (and verified) instead of downloaded again. The staging area and the lock are
:mod:`svd_lab.checkpoints.staging`; copying from OBS on ModelArts is :mod:`svd_lab.checkpoints.obs`.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from urllib.parse import urlparse

from svd_lab.checkpoints.errors import (
    CheckpointError,
    CorruptDownloadError,
    DiskSpaceError,
    HubNotFoundError,
    OfflineError,
)

# what a failed hub request means for the user: svd_lab.checkpoints.hub_errors
from svd_lab.checkpoints.hub_errors import _call_hub
from svd_lab.checkpoints.local import LocalCheckpoint, checkpoints_root, inspect_download, inspect_path
from svd_lab.checkpoints.registry import (
    DIFFUSERS,
    HF_MIRROR,
    HUB_WEB,
    SGM,
    CheckpointSpec,
    downloadable_spec,
    normalize_variant,
)
from svd_lab.checkpoints.staging import (
    FolderLock,
    move_into_place,
    partial_path,
    partial_prefix,
    remove_if_empty,
    staging_dir,
)
from svd_lab.checkpoints.verify import (
    VerificationRecord,
    git_blob_sha1,
    safetensors_problem,
    sha256_file,
    verify_against_record,
)
from svd_lab.svd.layout import FP16

# Kept free beyond the files themselves: a filled-up disk breaks far more than this download.
DISK_MARGIN = 256 * 2**20
MAX_FETCH_ATTEMPTS = 2  # a file whose hash is wrong is fetched once more before giving up


def free_bytes(path: Path) -> int:
    """Free bytes on the filesystem holding ``path`` (its nearest existing ancestor). Tests replace this."""
    probe = Path(path).resolve()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n} B"


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def is_offline() -> bool:
    """Offline mode: ``HF_HUB_OFFLINE=1`` (read now and at huggingface_hub's import, like the client does)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE")


def resolve_endpoint(endpoint: str | None = None) -> str:
    """``endpoint``, else ``HF_ENDPOINT`` from the environment now, else the client's default (huggingface.co).

    huggingface_hub reads ``HF_ENDPOINT`` once, at import; svd-lab passes the endpoint explicitly on every call so
    ``--endpoint`` and a variable set later in a notebook both work.
    """
    from huggingface_hub import constants

    chosen = endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    chosen = chosen.strip().rstrip("/")
    if urlparse(chosen).scheme not in ("http", "https"):
        raise CheckpointError(f"endpoint {chosen!r} is not an http(s) URL (e.g. {HF_MIRROR})")
    return chosen


# --------------------------------------------------------------------------------------------------- planning


class Action(Enum):
    """What a download does with one file: decided by :func:`plan_download` from the disk and the hub's metadata."""

    PRESENT = "present"  # verified earlier against the same hash: nothing to do
    CHECK = "check"  # a file of the right size is there but unverified: hash it, fetch it again if it differs
    HAND = "hand"  # the sgm file placed by hand at checkpoints/<sgm file>: hash it where it lies
    CACHE = "cache"  # the Hugging Face cache holds this commit's file: copy it instead of downloading it
    FETCH = "fetch"  # download it, resuming the ``partial_bytes`` already in staging


@dataclass
class PlannedFile:
    """One repository file of a download and what must happen to it (its :class:`Action`)."""

    repo_path: str
    size: int | None
    sha256: str | None  # the hub's LFS sha256, None for small (non-LFS) files
    blob_id: str | None  # git object id (sha1) of the file
    final: Path
    action: Action = Action.FETCH
    partial: Path | None = None
    partial_bytes: int = 0
    cache_path: Path | None = None

    @property
    def expected_digest(self) -> str:
        return self.sha256 or self.blob_id or ""

    @property
    def bytes_to_write(self) -> int:
        if self.action is Action.FETCH:
            return max((self.size or 0) - self.partial_bytes, 0)
        if self.action is Action.CACHE:
            return self.size or 0
        return 0


@dataclass
class DownloadPlan:
    spec: CheckpointSpec
    format: str
    variant: str | None
    target: Path  # checkpoints/<name>
    endpoint: str | None
    revision: str
    commit: str | None
    files: list[PlannedFile] = field(default_factory=list)
    free: int | None = None
    offline: bool = False
    repo_id: str | None = None  # where the files come from when not the spec's hub repository (ModelScope)

    @property
    def total_bytes(self) -> int:
        return sum(f.size or 0 for f in self.files)

    @property
    def bytes_to_write(self) -> int:
        return sum(f.bytes_to_write for f in self.files)

    @property
    def bytes_to_download(self) -> int:
        return sum(f.bytes_to_write for f in self.files if f.action is Action.FETCH)

    @property
    def complete(self) -> bool:
        return bool(self.files) and all(f.action is Action.PRESENT for f in self.files)

    def summary(self) -> str:
        lines = [f"{self.spec.name} ({self.format}{', ' + self.variant if self.variant else ''}) from "
                 f"{self.endpoint or 'local files'} {self.repo_id or self.spec.repo_id}"
                 + (f" @ {self.commit[:10]}" if self.commit else "") + f" -> {self.target}"]
        for f in self.files:
            extra = f" (resume after {_fmt_bytes(f.partial_bytes)})" if f.partial_bytes else ""
            lines.append(f"  {f.action.value:<8} {f.repo_path:<52} {_fmt_bytes(f.size or 0):>10}{extra}")
        lines.append(f"  total {_fmt_bytes(self.total_bytes)}, to download {_fmt_bytes(self.bytes_to_download)}, "
                     f"to write {_fmt_bytes(self.bytes_to_write)}"
                     + (f", free {_fmt_bytes(self.free)}" if self.free is not None else ""))
        return "\n".join(lines)


@dataclass
class DownloadResult:
    checkpoint: LocalCheckpoint
    plan: DownloadPlan
    downloaded_bytes: int = 0
    fetched: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    refetched_corrupt: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        c = self.checkpoint
        verb = "downloaded" if self.fetched else "already present"
        return (f"{c.name} ({c.format}{', ' + c.variant if c.variant else ''}) {verb}: {c.path} "
                f"[{_fmt_bytes(c.size_bytes)}, sha256 verified]")


def plan_download(name: str, format: str = DIFFUSERS, variant: str | None = FP16, dir: Path | str | None = None,
                  endpoint: str | None = None, revision: str = "main", token: str | bool | None = None,
                  verify: bool = False) -> DownloadPlan:
    """What a download would do: the files, their sizes from the hub's metadata, what is already present, partial
    or in the HF cache, and the free space. Contacts the hub (one repo-info request) unless offline."""
    # 1. which checkpoint, into which folder, made of which repository files
    spec = downloadable_spec(name, format)
    target = checkpoints_root(dir) / spec.name
    variant = normalize_variant(format, variant, spec)
    repo_files = None if spec.listed else spec.files(format, variant)

    # 2. offline: the hub cannot be asked, the verification record alone says what is there
    if is_offline():
        if repo_files is None:   # chosen from a listing: what the last download recorded
            repo_files = recorded_files(target)
            if not repo_files:
                raise OfflineError(f"offline mode is on (HF_HUB_OFFLINE=1) and no download of {spec.name} is "
                                   f"recorded in {target}: its files are chosen from the repository's listing, "
                                   "which needs the network. Unset HF_HUB_OFFLINE to download it.")
        return _offline_plan(spec, format, variant, target, revision, repo_files)

    # 3. the hub's file list, with every size and hash (one request); every file must be in it
    endpoint = resolve_endpoint(endpoint)
    info = _call_hub(lambda: _model_info(spec.repo_id, revision, endpoint, token), spec, endpoint, token, revision)
    siblings = {s.rfilename: s for s in (info.siblings or [])}
    if repo_files is None:
        repo_files = spec.files(format, variant, listing=list(siblings))
        _require_listed_layout(spec, revision, endpoint, repo_files)
    _require_published(spec, format, variant, revision, endpoint, [p for p in repo_files if p not in siblings])

    # 4. each file against the disk, the staging area and the HF cache; then the free space
    plan = DownloadPlan(spec, format, variant, target, endpoint, revision, info.sha)
    record = VerificationRecord(target)
    plan.files = [_plan_file(plan, siblings[path], record, verify) for path in repo_files]
    plan.free = free_bytes(target)
    return plan


def _offline_plan(spec: CheckpointSpec, format: str, variant: str | None, target: Path, revision: str,
                  repo_files: list[str]) -> DownloadPlan:
    """Offline, a file is present when its recorded verification still matches it; nothing else can be known."""
    plan = DownloadPlan(spec, format, variant, target, None, revision, None, offline=True)
    record = VerificationRecord(target)
    for path in repo_files:
        pf = PlannedFile(path, None, None, None, target / path)
        if pf.final.is_file():
            rec = record.get(pf.final)
            pf.size = rec.size if rec else None
            if record.status(pf.final) == "verified":
                pf.action = Action.PRESENT
        plan.files.append(pf)
    return plan


def recorded_files(target: Path) -> list[str]:
    """The repository paths a previous download into ``target`` verified (offline, a listed release's files)."""
    record = VerificationRecord(target)
    return sorted(k for k in record.files if not Path(k).is_absolute())


def _require_listed_layout(spec: CheckpointSpec, revision: str, endpoint: str, repo_files: list[str]) -> None:
    """A listed (Wan) repository must hold a diffusers pipeline: model_index.json and each network's config and
    safetensors weights. A HubNotFoundError naming what is missing otherwise."""
    missing = [] if "model_index.json" in repo_files else ["model_index.json"]
    for part in ("transformer", "vae", "text_encoder"):
        if f"{part}/config.json" not in repo_files:
            missing.append(f"{part}/config.json")
        if not any(p.startswith(f"{part}/") and p.endswith(".safetensors") for p in repo_files):
            missing.append(f"{part}/*.safetensors")
    if not any(p.startswith("tokenizer/") for p in repo_files):
        missing.append("tokenizer/")
    if missing:
        raise HubNotFoundError(f"{spec.repo_id} at {revision} on {endpoint} is not a diffusers Wan repository: "
                               f"it lacks {', '.join(missing)}.")


def _require_published(spec: CheckpointSpec, format: str, variant: str | None, revision: str, endpoint: str,
                       missing: list[str]) -> None:
    """A HubNotFoundError when the repository lacks files of the checkpoint, with the option that would work."""
    if not missing:
        return
    hint = ""
    if variant == FP16 and any(".fp16." in p for p in missing):
        hint = " This repository has no fp16 variant of them: use --variant fp32."
    elif format == DIFFUSERS and "model_index.json" in missing:
        hint = f" This repository has no diffusers layout: use --format {SGM}."
    raise HubNotFoundError(f"{spec.repo_id} at {revision} on {endpoint} does not contain "
                           f"{', '.join(missing)}.{hint}")


def _plan_file(plan: DownloadPlan, sibling, record: VerificationRecord, verify: bool) -> PlannedFile:
    """The plan for one repository file (``sibling``: its entry in the hub's file list)."""
    lfs = sibling.lfs
    pf = PlannedFile(repo_path=sibling.rfilename, size=lfs.size if lfs else sibling.size,
                     sha256=lfs.sha256 if lfs else None, blob_id=sibling.blob_id, final=plan.target / sibling.rfilename)
    if not pf.expected_digest:
        raise HubNotFoundError(f"{plan.endpoint} did not publish a hash for {pf.repo_path}: cannot verify it. Is "
                               f"{plan.endpoint} a Hugging Face hub or a compatible mirror?")
    pf.action = _local_action(pf, record, plan.target.parent, plan.spec, verify)
    if pf.action is Action.FETCH:
        pf.partial = partial_path(plan.target, pf.repo_path, pf.expected_digest)
        pf.partial_bytes = pf.partial.stat().st_size if pf.partial.is_file() else 0
        if pf.size is not None and pf.partial_bytes > pf.size:
            pf.partial_bytes = 0  # longer than the file: useless, restarted
        cached = _from_hf_cache(plan.spec.repo_id, pf.repo_path, plan.commit)
        if cached is not None and pf.partial_bytes == 0:  # bytes already in staging are resumed, not replaced
            pf.action, pf.cache_path = Action.CACHE, cached
    return pf


def _local_action(pf: PlannedFile, record: VerificationRecord, root: Path, spec: CheckpointSpec,
                  verify: bool) -> Action:
    """Decide from the disk alone: present (recorded hash equals the hub's), check, hand, or fetch."""
    if pf.final.is_file():
        rec = record.get(pf.final)
        if (not verify and rec is not None and record.status(pf.final) == "verified"
                and (pf.sha256 is None or rec.sha256 == pf.sha256)
                and (pf.size is None or rec.size == pf.size)):
            return Action.PRESENT
        if pf.size is None or pf.final.stat().st_size == pf.size:
            return Action.CHECK
        return Action.FETCH  # the wrong size: replaced once a verified copy is in staging
    hand = root / pf.repo_path
    if spec.sgm_file and pf.repo_path == spec.sgm_file and hand.is_file() and (
            pf.size is None or hand.stat().st_size == pf.size):
        return Action.HAND
    return Action.FETCH


def _model_info(repo_id: str, revision: str, endpoint: str, token):
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint, token=token).model_info(repo_id, revision=revision, files_metadata=True)


def _from_hf_cache(repo_id: str, path: str, commit: str | None) -> Path | None:
    """The file of this exact commit in the Hugging Face cache, if it is there."""
    if not commit:
        return None
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, path, revision=commit)
    except (OSError, ValueError):  # a broken cache is no reason to fail: download instead
        return None
    return Path(found) if isinstance(found, str) and os.path.isfile(found) else None


# --------------------------------------------------------------------------------------------------- transfer


def _progress_class(progress: bool):
    """None (huggingface_hub's own bars, which honour HF_HUB_DISABLE_PROGRESS_BARS) or a silent bar."""
    from svd_lab.progress import progress_enabled

    if progress_enabled(progress):
        return None
    from tqdm.auto import tqdm

    class _SilentBar(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return _SilentBar


def _digest_matches(path: Path, pf: PlannedFile) -> tuple[bool, str, str]:
    """(matches, sha256 of the file, what it was compared with)."""
    sha = sha256_file(path)
    if pf.sha256:
        return sha == pf.sha256, sha, "hub lfs sha256"
    return git_blob_sha1(path) == pf.blob_id, sha, "hub git blob id"


def _fetch_into_partial(pf: PlannedFile, plan: DownloadPlan, token, progress: bool) -> None:
    """Append the missing bytes of ``pf`` to its staging file with huggingface_hub's http_get (Range resume)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    spec, endpoint = plan.spec, plan.endpoint
    url = hf_hub_url(spec.repo_id, pf.repo_path, revision=plan.commit, endpoint=endpoint)
    meta = _call_hub(lambda: get_hf_file_metadata(url, token=token, endpoint=endpoint), spec, endpoint, token,
                     plan.revision)
    if pf.size is not None and meta.size is not None and meta.size != pf.size:
        raise CorruptDownloadError(f"{endpoint} reports {meta.size:,} bytes for {pf.repo_path} but its file list "
                                   f"says {pf.size:,}: the endpoint is inconsistent, try again later or another one")
    headers = build_hf_headers(token=token)
    if (urlparse(meta.location).scheme, urlparse(meta.location).netloc) != (urlparse(url).scheme,
                                                                          urlparse(url).netloc):
        headers.pop("authorization", None)  # a signed storage URL: the token must not leave the hub
    pf.partial.parent.mkdir(parents=True, exist_ok=True)
    for stale in pf.partial.parent.glob(f"{partial_prefix(pf.repo_path)}.*.partial"):
        if stale != pf.partial:
            stale.unlink()  # partial of another revision: never resumable into this one
    with open(pf.partial, "ab") as f:
        resume = f.tell()
        if pf.size is not None and resume > pf.size:
            f.truncate(0)
            resume = 0

        def transfer():
            http_get(meta.location, f, resume_size=resume, headers=headers, expected_size=pf.size,
                     displayed_filename=pf.repo_path, tqdm_class=_progress_class(progress))

        try:
            _call_hub(transfer, spec, endpoint, token, plan.revision)
        except CheckpointError as exc:
            f.flush()
            kept = os.path.getsize(pf.partial)
            note = (f"\n  {_fmt_bytes(kept)} of {pf.repo_path} ({_fmt_bytes(pf.size or 0)}) are kept in "
                    f"{pf.partial.parent}." if kept else "")
            raise type(exc)(str(exc).replace("\n", note + "\n", 1) if note else str(exc)) from None



# --------------------------------------------------------------------------------------------------- download


def download(name: str, format: str = DIFFUSERS, variant: str | None = FP16, dir: Path | str | None = None,
             endpoint: str | None = None, revision: str = "main", token: str | bool | None = None,
             progress: bool = True, verify: bool = False, log=print) -> DownloadResult:
    """Download checkpoint ``name`` into ``<dir>/<name>/`` and return the verified local checkpoint.

    Args:
        name: a registry name (``svd``, ``svd_xt``, ``svd_xt_1_1``, ...: see ``svd-lab models``).
        format: ``diffusers`` (folder layout, what the pipeline loads) or ``sgm`` (Stability's single file).
        variant: ``fp16`` (default, about 4.5 GB) or ``fp32`` / None (full precision, about 9 GB); diffusers only.
        dir: the checkpoints folder (default ``svd_lab.paths.checkpoints_dir()``).
        endpoint: the hub or a mirror, e.g. ``https://hf-mirror.com``; default ``HF_ENDPOINT`` or huggingface.co.
        revision: branch, tag or commit of the repository.
        token: a hub token; default: ``HF_TOKEN`` or the one saved by ``hf auth login``. Never printed.
        verify: re-hash files already present instead of trusting their recorded verification.
        log: where one-line progress messages go (``print``; ``None`` for silence).

    Either every file ends up complete and sha256-verified under its final name, or a :class:`CheckpointError`
    says what to do; completed files and partial bytes are kept, so running it again resumes.
    """
    log = log or (lambda *a, **k: None)
    started = time.monotonic()

    # 1. plan: the hub's file list (sizes, hashes) against the disk, the staging area and the HF cache
    plan = plan_download(name, format, variant, dir, endpoint, revision, token, verify)

    # 2. offline: nothing can be fetched, so every file must be present and verified already
    if plan.offline:
        _require_present_offline(plan)
        return _finish(_all_reused(plan), started)

    # 3. refuse before the first byte when the disk cannot take it all
    _require_disk_space(plan)

    # 4. every file verified by an earlier run: nothing to write
    if plan.complete:
        return _finish(_all_reused(plan), started)

    # 5. bring each file to its final name, verified, one writer per folder at a time
    result = DownloadResult(checkpoint=None, plan=plan)  # type: ignore[arg-type]  (filled in by _finish)
    with FolderLock(plan.target):
        job = _Download(plan, VerificationRecord(plan.target), token, progress, log, result)
        for pf in plan.files:
            _FILE_STEPS[pf.action](pf, job)

        # 6. record where this format's files came from, beside their hashes
        job.record.meta[plan.format] = {"repo_id": plan.spec.repo_id, "revision": plan.revision,
                                        "commit": plan.commit, "endpoint": plan.endpoint, "variant": plan.variant}
        job.record.save()

    # 7. tidy up: an emptied staging area is removed
    remove_if_empty(staging_dir(plan.target))

    # 8. describe the checkpoint now on disk; it must be usable, every file was verified just now
    return _finish(result, started, must_be_usable=True)


def _require_present_offline(plan: DownloadPlan) -> None:
    """An OfflineError listing the files an offline download cannot provide (not present and verified)."""
    missing = [f.repo_path for f in plan.files if f.action is not Action.PRESENT]
    if missing:
        raise OfflineError(f"offline mode is on (HF_HUB_OFFLINE=1) and these files of {plan.spec.name} are not "
                           f"present and verified in {plan.target}: {', '.join(missing)}. Unset HF_HUB_OFFLINE to "
                           f"download them, or copy them there.")


def _require_disk_space(plan: DownloadPlan) -> None:
    """A DiskSpaceError, with the numbers, when the files to write and the margin do not fit in the free space."""
    needed = plan.bytes_to_write
    if needed and plan.free is not None and needed + DISK_MARGIN > plan.free:
        raise DiskSpaceError(
            f"not enough free disk space for {plan.spec.name}: it needs {_fmt_bytes(needed)} "
            f"(+{_fmt_bytes(DISK_MARGIN)} margin) at {plan.target}, only {_fmt_bytes(plan.free)} free. Free some "
            f"space, or download elsewhere with --dir PATH (and set SVD_LAB_CHECKPOINTS=PATH so svd-lab finds it).")


def _all_reused(plan: DownloadPlan) -> DownloadResult:
    """The result of a download that writes nothing: every file of the plan is reused as it is."""
    return DownloadResult(None, plan, reused=[f.repo_path for f in plan.files])  # type: ignore[arg-type]


def _finish(result: DownloadResult, started: float, must_be_usable: bool = False) -> DownloadResult:
    """Fill in the local checkpoint the download left and the time it took."""
    plan = result.plan
    result.checkpoint = inspect_download(plan.spec, plan.format, plan.target)
    result.seconds = time.monotonic() - started
    if must_be_usable and not result.checkpoint.usable:  # should not happen: every file was verified
        raise CorruptDownloadError(f"{result.checkpoint.path} is not usable after the download: "
                                   f"{result.checkpoint.reason}")
    return result


# --------------------------------------------------------------------------------------------------- per file


@dataclass
class _Download:
    """What the per-file steps of one download share."""

    plan: DownloadPlan
    record: VerificationRecord  # of checkpoints/<name>: each verified file is added and saved at once
    token: str | bool | None
    progress: bool
    log: Callable[..., object]
    result: DownloadResult

    def verified(self, path: Path, sha: str, source: str) -> None:
        """Record ``path``'s hash now, so an interruption later does not cost re-hashing it."""
        self.record.add(path, sha, source)
        self.record.save()


def _reuse_present(pf: PlannedFile, job: _Download) -> None:
    """PRESENT: verified by an earlier run against the same hash."""
    job.result.reused.append(pf.repo_path)


def _verify_hand_placed(pf: PlannedFile, job: _Download) -> None:
    """HAND: hash the file placed by hand where it lies; it is the user's, so a mismatch is reported, not replaced."""
    root = job.plan.target.parent
    hand = root / pf.repo_path
    ok, sha, source = _digest_matches(hand, pf)
    if not ok:
        raise CorruptDownloadError(
            f"{hand} (placed by hand) does not match {pf.repo_path} of {job.plan.spec.repo_id} (sha256 "
            f"{sha[:12]}..., expected {pf.expected_digest[:12]}...): it is corrupted or another file. Move it away "
            f"and run the command again to download a verified copy.")
    hand_record = VerificationRecord(root)  # recorded beside the file, under checkpoints/.svd-lab/
    hand_record.add(hand, sha, source)
    hand_record.save()
    job.result.reused.append(pf.repo_path)
    job.log(f"verified   {hand} (placed by hand): matches {job.plan.spec.repo_id}")


def _check_present(pf: PlannedFile, job: _Download) -> None:
    """CHECK: hash the unverified file under its final name; fetch it again when it differs from the hub's."""
    ok, sha, source = _digest_matches(pf.final, pf)
    if ok:
        job.verified(pf.final, sha, source)
        job.result.reused.append(pf.repo_path)
        job.log(f"verified   {pf.repo_path} (already present)")
        return
    job.log(f"mismatch   {pf.repo_path}: the file present does not match the hub; fetching it again")
    job.record.forget(pf.final)
    job.record.save()
    pf.action = Action.FETCH
    pf.partial = partial_path(job.plan.target, pf.repo_path, pf.expected_digest)
    _fetch_verify_place(pf, job)


def _fetch_verify_place(pf: PlannedFile, job: _Download) -> None:
    """CACHE and FETCH: fill the staging file, verify it, give it its final name. A corrupted copy is discarded
    and fetched from the hub again, up to MAX_FETCH_ATTEMPTS in all."""
    for attempt in range(1, MAX_FETCH_ATTEMPTS + 1):
        # a. the bytes: copied from the HF cache (first attempt only), or fetched, resuming what staging holds
        if pf.action is Action.CACHE and attempt == 1:
            _copy_from_hf_cache(pf, job)
        else:
            _fetch(pf, job)
        # b. the size, then the hash the hub published
        problem, sha, source = _staged_problem(pf)
        # c. verified: under its final name in one rename, and recorded
        if problem is None:
            move_into_place(pf.partial, pf.final)
            job.verified(pf.final, sha, source)
            job.result.fetched.append(pf.repo_path)
            return
        # d. corrupted: discarded, so the next attempt starts from zero at the hub
        pf.partial.unlink()
        job.result.refetched_corrupt.append(pf.repo_path)
        if attempt < MAX_FETCH_ATTEMPTS:
            job.log(f"corrupted  {pf.repo_path}: {problem}; discarded, fetching it again")
            pf.action = Action.FETCH
    raise CorruptDownloadError(
        f"{pf.repo_path} of {job.plan.spec.repo_id} arrived corrupted {MAX_FETCH_ATTEMPTS} times ({problem}) from "
        f"{job.plan.endpoint}; nothing was put under its final name. Try again later, or another endpoint "
        f"(--endpoint {HUB_WEB} or {HF_MIRROR}).")


def _copy_from_hf_cache(pf: PlannedFile, job: _Download) -> None:
    """The same commit's file from the Hugging Face cache into staging (the cache itself is left as it is)."""
    job.log(f"copying    {pf.repo_path} from the Hugging Face cache ({pf.cache_path})")
    pf.partial.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pf.cache_path, pf.partial)  # a new file: the umask's mode, not the cache file's


def _fetch(pf: PlannedFile, job: _Download) -> None:
    """Download the bytes staging lacks, counting them in the result."""
    before = pf.partial.stat().st_size if pf.partial.is_file() else 0
    resume = f", resuming after {_fmt_bytes(before)}" if before else ""
    job.log(f"fetching   {pf.repo_path} ({_fmt_bytes(pf.size or 0)}{resume})")
    _fetch_into_partial(pf, job.plan, job.token, job.progress)
    job.result.downloaded_bytes += pf.partial.stat().st_size - before


def _staged_problem(pf: PlannedFile) -> tuple[str | None, str, str]:
    """(None or what is wrong, sha256, what it was compared with) for the staging file of ``pf``."""
    size = pf.partial.stat().st_size
    if pf.size is not None and size != pf.size:
        return f"size {size:,} instead of {pf.size:,}", "", ""
    ok, sha, source = _digest_matches(pf.partial, pf)
    return (None if ok else f"{'sha256' if pf.sha256 else 'git blob id'} differs from the hub's"), sha, source


# Which step handles a file, by what the plan decided for it.
_FILE_STEPS: dict[Action, Callable[[PlannedFile, _Download], None]] = {
    Action.PRESENT: _reuse_present,
    Action.HAND: _verify_hand_placed,
    Action.CHECK: _check_present,
    Action.CACHE: _fetch_verify_place,
    Action.FETCH: _fetch_verify_place,
}


# --------------------------------------------------------------------------------------------------- verify


def verify_checkpoint(path: Path | str) -> list[str]:
    """Re-hash every recorded file of a local checkpoint folder or file; returns the problems (empty: all good)."""
    ckpt = inspect_path(path)
    problems = []
    for f in ckpt.files:
        if f.suffix != ".safetensors":
            continue
        record = VerificationRecord(f.parent if ckpt.format == SGM else ckpt.path)
        problem = verify_against_record(f, record) if record.get(f) else safetensors_problem(f)
        if problem:
            problems.append(problem)
        else:
            record.save()
    return problems
