"""Downloading checkpoints from ModelScope (https://www.modelscope.cn), where mainland China gets its weights.

``svd-lab download NAME --source modelscope``. Built on the ``modelscope`` package's own download engine
(``modelscope`` 1.40 delegates its hub client to ``modelscope-hub``, whose :class:`modelscope_hub.HubApi` is used
here, as :mod:`svd_lab.checkpoints.hub` uses ``huggingface_hub``):

- the file list with every size and sha256: ``HubApi.list_repo_files`` (``GET /api/v1/models/{repo}/repo/files``);
- the transfer: ``HubApi.download_file(..., local_dir=..., expected_sha256=..., file_size=...)``, which follows the
  redirect to object storage, resumes a partial file (``<file>.incomplete``) with ``Range`` requests, retries broken
  connections, checks the size and the sha256 and re-fetches a corrupted copy by itself;
- its conventions: ``MODELSCOPE_ENDPOINT`` (or the older ``MODELSCOPE_DOMAIN``) for the site, ``MODELSCOPE_API_TOKEN``
  or ``modelscope login`` for a token (only private repositories need one), ``MODELSCOPE_CACHE`` for its cache.

What svd-lab adds is what it adds to hub downloads: the partial file lives in ``checkpoints/<name>/.svd-lab/
staging/modelscope/<sha256 prefix>/`` (so it survives the process and a partial of another revision is never resumed
into this one), the free-disk check before the first byte, a second sha256 check of its own before the file gets its
final name in one rename, the verification record, and errors that say what to do. A file already in the ModelScope
cache (``~/.cache/modelscope`` or ``MODELSCOPE_CACHE``) for the same revision is copied (and verified) instead of
downloaded.

Which repositories: the registry names a ModelScope repository only where one was confirmed from public sources
(:data:`svd_lab.checkpoints.registry.MODELSCOPE_REPOS`); for the others the message points at the hub mirror and OBS.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

from svd_lab.checkpoints import hub
from svd_lab.checkpoints.errors import (
    CheckpointError,
    CorruptDownloadError,
    HubAccessError,
    HubNetworkError,
    HubNotFoundError,
)
from svd_lab.checkpoints.hub import Action, DownloadPlan, DownloadResult, PlannedFile, _Download, _fmt_bytes
from svd_lab.checkpoints.hub_errors import _short_reason
from svd_lab.checkpoints.local import checkpoints_root
from svd_lab.checkpoints.registry import (
    DIFFUSERS,
    HF_MIRROR,
    MODELSCOPE_REPOS,
    MODELSCOPE_WEB,
    CheckpointSpec,
    downloadable_spec,
    normalize_variant,
)
from svd_lab.checkpoints.staging import FolderLock, move_into_place, remove_if_empty, staging_dir
from svd_lab.checkpoints.verify import VerificationRecord, sha256_file
from svd_lab.svd.layout import FP16

SOURCE = "modelscope"
DEFAULT_REVISION = "master"  # ModelScope's default branch (the hub's is "main")
TOKEN_ENV = "MODELSCOPE_API_TOKEN"
TOKEN_PAGE = f"{MODELSCOPE_WEB}/my/myaccesstoken"
VERIFIED_AGAINST = "modelscope sha256"


def modelscope_repo(spec: CheckpointSpec) -> str:
    """The ModelScope repository of ``spec``, or a CheckpointError naming the sources that do have it."""
    repo = spec.modelscope_repo
    if repo is None:
        known = ", ".join(MODELSCOPE_REPOS)
        raise CheckpointError(
            f"svd-lab knows no ModelScope repository of {spec.name} ({spec.repo_id}): only {known} have one that was "
            f"confirmed. Get {spec.name} from the hub mirror instead (svd-lab download {spec.name} --endpoint "
            f"{HF_MIRROR}), or on ModelArts from OBS (svd-lab download {spec.name} --from obs://bucket/path).")
    return repo


def resolve_endpoint(endpoint: str | None = None) -> str:
    """``endpoint``, else ``MODELSCOPE_ENDPOINT`` (or the older ``MODELSCOPE_DOMAIN``) read now, else the client's
    default site. Passed explicitly on every call, so a variable set later in a notebook counts."""
    from modelscope_hub.constants import DEFAULT_ENDPOINT

    chosen = (endpoint or os.environ.get("MODELSCOPE_ENDPOINT") or os.environ.get("MODELSCOPE_DOMAIN")
              or DEFAULT_ENDPOINT).strip().rstrip("/")
    if "://" not in chosen:
        chosen = f"https://{chosen}"  # MODELSCOPE_DOMAIN holds a bare host name
    if urlparse(chosen).scheme not in ("http", "https"):
        raise CheckpointError(f"ModelScope endpoint {chosen!r} is not an http(s) URL (e.g. {MODELSCOPE_WEB})")
    return chosen


def _api(endpoint: str, token: str | None):
    from modelscope_hub import HubApi

    if token is None:
        token = os.environ.get(TOKEN_ENV) or None  # else the client's saved login (`modelscope login`)
    return HubApi(endpoint=endpoint, token=token)


# --------------------------------------------------------------------------------------------------- errors


def _network_message(endpoint: str, exc: BaseException, name: str, partial_note: str = "") -> str:
    return (f"could not download from ModelScope at {endpoint} ({_short_reason(exc)}).{partial_note}\n"
            f"  Check your connection or proxy (HTTPS_PROXY), then run the same command again: it resumes.\n"
            f"  A very slow link can exceed the client's time budget per file (MODELSCOPE_DOWNLOAD_TOTAL_TIMEOUT, "
            f"3600 s by default): raise it, or just run the command again.\n"
            f"  Other sources: the Hugging Face mirror (svd-lab download {name} --endpoint {HF_MIRROR}), or on "
            f"ModelArts your OBS bucket (svd-lab download {name} --from obs://bucket/path).")


def _translate(exc: BaseException, spec: CheckpointSpec, repo: str, endpoint: str, revision: str,
               partial_note: str = "") -> CheckpointError | None:
    """A CheckpointError for an exception of the ModelScope client or its transport; None if not ours to map."""
    import requests
    from modelscope_hub import errors as ms

    status = getattr(exc, "status_code", None)
    if isinstance(exc, (ms.AuthenticationError, ms.PermissionDeniedError)):
        sent = "a token was sent but ModelScope refused it" if status == 403 else "no token was sent"
        return HubAccessError(
            f"ModelScope refused access to {repo} (HTTP {status}: {sent}). The SVD repositories are public, so "
            f"check the repository and endpoint; for a private one create a token at {TOKEN_PAGE} and give it with "
            f"`modelscope login --token ...` in a terminal or `export {TOKEN_ENV}=...` in the shell that starts "
            f"svd-lab / Jupyter (never in a notebook cell).")
    if isinstance(exc, ms.FileIntegrityError):
        return CorruptDownloadError(
            f"a file of {spec.name} kept arriving corrupted from {endpoint} ({str(exc).splitlines()[0][:200]}); the "
            f"ModelScope client discarded every copy and nothing was put under its final name. Try again later, or "
            f"another source: svd-lab download {spec.name} --endpoint {HF_MIRROR}")
    if isinstance(exc, ms.NotExistError):
        detail = str(exc).splitlines()[0][:200]
        return HubNotFoundError(
            f"ModelScope at {endpoint} has no {repo} at revision {revision!r}, or not the file asked for ({detail}). "
            f"Check --revision (ModelScope's default branch is {DEFAULT_REVISION}) and the endpoint "
            f"(the official site is {MODELSCOPE_WEB}).")
    if isinstance(exc, (ms.NetworkError, ms.ServerError, ms.RateLimitError, ms.APIError,
                        requests.RequestException, ConnectionError, TimeoutError)):
        return HubNetworkError(_network_message(endpoint, exc, spec.name, partial_note))
    return None


def _call(fn, spec: CheckpointSpec, repo: str, endpoint: str, revision: str, partial_note=lambda: ""):
    try:
        return fn()
    except CheckpointError:
        raise
    except Exception as exc:
        mapped = _translate(exc, spec, repo, endpoint, revision, partial_note())
        if mapped is None:
            raise
        raise mapped from None  # the client's traceback adds nothing for the user


# --------------------------------------------------------------------------------------------------- planning


def _staging_root(target: Path, sha256: str) -> Path:
    """The client's ``local_dir`` for one file: keyed by the hash the file must end up with."""
    return staging_dir(target) / SOURCE / sha256[:16]


def _staged(target: Path, pf: PlannedFile) -> Path:
    return _staging_root(target, pf.sha256 or "") / pf.repo_path


def _incomplete(staged: Path) -> Path:
    return staged.with_name(staged.name + ".incomplete")  # the client's partial-file name


def plan_download(name: str, format: str = DIFFUSERS, variant: str | None = FP16, dir: Path | str | None = None,
                  endpoint: str | None = None, revision: str = DEFAULT_REVISION, token: str | None = None,
                  verify: bool = False) -> DownloadPlan:
    """What a ModelScope download would do: the files with ModelScope's sizes and sha256s, what is present,
    partial or in the ModelScope cache, and the free space. One listing request."""
    spec = downloadable_spec(name, format)
    repo = modelscope_repo(spec)
    target = checkpoints_root(dir) / spec.name
    variant = normalize_variant(format, variant, spec)
    repo_files = None if spec.listed else spec.files(format, variant)
    endpoint = resolve_endpoint(endpoint)
    api = _api(endpoint, token)

    listing = _call(lambda: api.list_repo_files(repo, "model", revision=revision), spec, repo, endpoint, revision)
    blobs = {f.path: f for f in listing if not f.is_dir}
    if repo_files is None:   # a listed (Wan) release: its files are chosen from the listing
        repo_files = spec.files(format, variant, listing=list(blobs))
        hub._require_listed_layout(spec, revision, endpoint, repo_files)
    hub._require_published(spec, format, variant, revision, endpoint, [p for p in repo_files if p not in blobs])

    plan = DownloadPlan(spec, format, variant, target, endpoint, revision, None, repo_id=repo)
    record = VerificationRecord(target)
    for path in repo_files:
        entry = blobs[path]
        if not entry.sha256:
            raise HubNotFoundError(f"{endpoint} published no sha256 for {path} of {repo}: cannot verify it. Is "
                                   f"{endpoint} ModelScope?")
        pf = PlannedFile(path, entry.size or None, entry.sha256.lower(), None, target / path)
        pf.action = hub._local_action(pf, record, target.parent, spec, verify)
        if pf.action is Action.FETCH:
            pf.partial = _incomplete(_staged(target, pf))
            pf.partial_bytes = pf.partial.stat().st_size if pf.partial.is_file() else 0
            if pf.size is not None and pf.partial_bytes > pf.size:
                pf.partial_bytes = 0
            cached = _from_modelscope_cache(api, repo, path, revision)
            if cached is not None and pf.partial_bytes == 0:
                pf.action, pf.cache_path = Action.CACHE, cached
        plan.files.append(pf)
    plan.free = hub.free_bytes(target)
    return plan


def _from_modelscope_cache(api, repo: str, path: str, revision: str) -> Path | None:
    """The file of this revision in the ModelScope cache (the client's own lookup, no network), if it is there."""
    try:
        # MODELSCOPE_CACHE read now (the client's default configuration read it once, at its first use)
        found = api.download_file(repo, "model", path, revision=revision, local_files_only=True,
                                  cache_dir=os.environ.get("MODELSCOPE_CACHE") or None)
    except Exception:  # noqa: BLE001  (not cached, or a broken cache: no reason to fail, download instead)
        return None
    return Path(found) if found and os.path.isfile(found) else None


# --------------------------------------------------------------------------------------------------- download


def download(name: str, format: str = DIFFUSERS, variant: str | None = FP16, dir: Path | str | None = None,
             endpoint: str | None = None, revision: str = DEFAULT_REVISION, token: str | None = None,
             verify: bool = False, log=print) -> DownloadResult:
    """Download checkpoint ``name`` from ModelScope into ``<dir>/<name>/`` and return the verified checkpoint.

    The arguments are :func:`svd_lab.checkpoints.hub.download`'s, with ModelScope's defaults: ``endpoint``
    ``MODELSCOPE_ENDPOINT`` or https://modelscope.cn, ``revision`` ``master``, ``token`` ``MODELSCOPE_API_TOKEN`` or
    the saved ``modelscope login``. The client draws its own progress bars (``TQDM_DISABLE=1`` hides them).

    Either every file ends up complete and sha256-verified under its final name, or a :class:`CheckpointError`
    says what to do; completed files and partial bytes are kept, so running it again resumes.
    """
    cache = _cache_root()
    new = next((f for f in reversed([cache, *cache.parents]) if not f.exists()), None)  # the first folder made
    try:
        return _download(name, format, variant, dir, endpoint, revision, token, verify, log)
    except BaseException:
        if new is not None:
            _remove_empty_tree(new)      # the client creates its cache folder even when nothing arrives
        raise


def _cache_root() -> Path:
    """The ModelScope client's cache folder: ``MODELSCOPE_CACHE``, else ``~/.cache/modelscope``."""
    return Path(os.environ.get("MODELSCOPE_CACHE") or Path.home() / ".cache" / "modelscope").expanduser()


def _remove_empty_tree(root: Path) -> None:
    """Remove ``root`` if it holds nothing but (nested) empty folders."""
    if not root.is_dir() or any(p.is_file() or p.is_symlink() for p in root.rglob("*")):
        return
    shutil.rmtree(root, ignore_errors=True)


def _download(name, format, variant, dir, endpoint, revision, token, verify, log) -> DownloadResult:
    log = log or (lambda *a, **k: None)
    started = time.monotonic()

    # 1. plan: ModelScope's file list (sizes, sha256) against the disk, the staging area and the ModelScope cache
    plan = plan_download(name, format, variant, dir, endpoint, revision, token, verify)

    # 2. refuse before the first byte when the disk cannot take it all; nothing to do when all is verified
    hub._require_disk_space(plan)
    if plan.complete:
        return hub._finish(hub._all_reused(plan), started)

    # 3. each file to its final name, verified, one writer per folder at a time
    api = _api(plan.endpoint, token)
    result = DownloadResult(checkpoint=None, plan=plan)  # type: ignore[arg-type]  (filled in by _finish)
    with FolderLock(plan.target):
        job = _Download(plan, VerificationRecord(plan.target), token, True, log, result)
        for pf in plan.files:
            if pf.action is Action.PRESENT:
                job.result.reused.append(pf.repo_path)
            elif pf.action is Action.HAND:
                hub._verify_hand_placed(pf, job)
            elif pf.action is Action.CHECK and _present_matches(pf, job):
                pass
            else:
                _fetch_verify_place(pf, job, api)
        job.record.meta[plan.format] = {"source": SOURCE, "repo_id": plan.repo_id, "revision": plan.revision,
                                        "endpoint": plan.endpoint, "variant": plan.variant}
        job.record.save()

    # 4. tidy up: emptied staging folders are removed
    for folder in sorted(staging_dir(plan.target).glob(f"{SOURCE}/**/"), key=lambda p: -len(p.parts)):
        remove_if_empty(folder)
    remove_if_empty(staging_dir(plan.target))
    return hub._finish(result, started, must_be_usable=True)


def _present_matches(pf: PlannedFile, job: _Download) -> bool:
    """CHECK: hash the unverified file under its final name; True when it is ModelScope's (then recorded)."""
    sha = sha256_file(pf.final)
    if sha == pf.sha256:
        job.verified(pf.final, sha, VERIFIED_AGAINST)
        job.result.reused.append(pf.repo_path)
        job.log(f"verified   {pf.repo_path} (already present)")
        return True
    job.log(f"mismatch   {pf.repo_path}: the file present does not match ModelScope's; fetching it again")
    job.record.forget(pf.final)
    job.record.save()
    return False


def _fetch_verify_place(pf: PlannedFile, job: _Download, api) -> None:
    """Bring ``pf`` into staging (from the ModelScope cache, else the client's resumable download), check its size
    and sha256 once more, and give it its final name in one rename."""
    plan = job.plan
    staged = _staged(plan.target, pf)
    _remove_other_revisions(plan.target, pf)
    if pf.action is Action.CACHE:
        job.log(f"copying    {pf.repo_path} from the ModelScope cache ({pf.cache_path})")
        staged.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pf.cache_path, staged)
        if _problem(staged, pf) is None:
            return _place(staged, pf, job)
        job.log(f"corrupted  {pf.repo_path} in the ModelScope cache: discarded, downloading it")
        staged.unlink()
    partial = _incomplete(staged)
    before = partial.stat().st_size if partial.is_file() else 0
    resume = f", resuming after {_fmt_bytes(before)}" if before else ""
    job.log(f"fetching   {pf.repo_path} ({_fmt_bytes(pf.size or 0)}{resume}) from {plan.repo_id}")

    def kept() -> str:
        size = partial.stat().st_size if partial.is_file() else 0
        return (f"\n  {_fmt_bytes(size)} of {pf.repo_path} ({_fmt_bytes(pf.size or 0)}) are kept in "
                f"{partial.parent}." if size else "")

    _call(lambda: api.download_file(plan.repo_id, "model", pf.repo_path, revision=plan.revision,
                                    local_dir=_staging_root(plan.target, pf.sha256 or ""),
                                    expected_sha256=pf.sha256, file_size=pf.size),
          plan.spec, plan.repo_id or "", plan.endpoint or "", plan.revision, kept)
    job.result.downloaded_bytes += (pf.size or staged.stat().st_size) - before
    problem = _problem(staged, pf)
    if problem is not None:  # the client checked it too: this would be a client bug, still never placed
        staged.unlink()
        raise CorruptDownloadError(f"{pf.repo_path} of {plan.repo_id} from {plan.endpoint}: {problem}; discarded, "
                                   f"nothing was put under its final name. Run the command again.")
    _place(staged, pf, job)


def _problem(staged: Path, pf: PlannedFile) -> str | None:
    size = staged.stat().st_size
    if pf.size is not None and size != pf.size:
        return f"size {size:,} instead of {pf.size:,}"
    if sha256_file(staged) != pf.sha256:
        return "sha256 differs from ModelScope's"
    return None


def _place(staged: Path, pf: PlannedFile, job: _Download) -> None:
    move_into_place(staged, pf.final)
    job.verified(pf.final, pf.sha256 or "", VERIFIED_AGAINST)
    job.result.fetched.append(pf.repo_path)


def _remove_other_revisions(target: Path, pf: PlannedFile) -> None:
    """Partial or staged copies of ``pf.repo_path`` for another sha256: never resumable into this one."""
    mine = _staging_root(target, pf.sha256 or "")
    for root in (staging_dir(target) / SOURCE).glob("*"):
        if root != mine and root.is_dir():
            for stale in (root / pf.repo_path, _incomplete(root / pf.repo_path)):
                stale.unlink(missing_ok=True)
