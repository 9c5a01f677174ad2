"""What a failed request to the Hugging Face hub means for the user: the one-line errors of ``svd-lab download``.

Gated repositories (how to accept the licence and log in), network failures (the mirror, ModelScope and OBS as
other sources), missing repositories or revisions, offline mode. :func:`_call_hub` runs one huggingface_hub call
and turns its exceptions into :mod:`svd_lab.checkpoints.errors`.
"""

from __future__ import annotations

from urllib.parse import urlparse

from svd_lab.checkpoints.errors import (
    CheckpointError,
    HubAccessError,
    HubNetworkError,
    HubNotFoundError,
    OfflineError,
)
from svd_lab.checkpoints.registry import HF_MIRROR, HUB_WEB, MODELSCOPE_REPOS, CheckpointSpec


def _token_available(token: str | bool | None) -> bool:
    """Whether a token will be sent (never the token itself)."""
    if isinstance(token, str):
        return bool(token)
    if token is False:
        return False
    from huggingface_hub import get_token

    return get_token() is not None



def _gated_message(spec: CheckpointSpec, endpoint: str, token, status: int | None) -> str:
    sent = _token_available(token)
    if status == 403 or sent:
        why = ("the hub answered 403: a token was sent, but its account has not been granted access yet "
               "(accept the licence with the account that owns the token; approval can take a moment), or "
               "the token lacks read permission")
    else:
        why = "the hub answered 401: no token was sent"
    mirror = (f"\n  You are using {endpoint}: a mirror passes a gated repository through only with a token of an "
              f"account that accepted the licence on {HUB_WEB}." if not endpoint.startswith(HUB_WEB) else "")
    return (f"{spec.repo_id} is gated ({why}).\n"
            f"  1. Open {spec.repo_url} , log in, read the licence ({spec.licence}) and accept it"
            f" ('agree to share your contact information').\n"
            f"  2. Create a read token at {HUB_WEB}/settings/tokens .\n"
            f"  3. Give it to svd-lab without writing it into a notebook or a file you share: run `hf auth login` in "
            f"a terminal, or `export HF_TOKEN=...` in the shell that starts svd-lab / Jupyter.{mirror}")


def _short_reason(exc: BaseException) -> str:
    """'HTTP 503 Service Unavailable from host:port' for HTTP errors, the first line of the message otherwise."""
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "status_code", None):
        host = urlparse(str(response.request.url)).netloc if response.request is not None else ""
        status = f"HTTP {response.status_code} {response.reason_phrase or ''}".rstrip()
        return status + (f" from {host}" if host else "")
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def modelscope_hint(name: str) -> str:
    """How to get ``name`` from ModelScope, or which release ModelScope has when it lacks this one."""
    if name in MODELSCOPE_REPOS:
        return f"or download it from ModelScope: svd-lab download {name} --source modelscope"
    have = list(MODELSCOPE_REPOS)
    return (f"ModelScope has a copy of {', '.join(have)} only (svd-lab download {have[0]} --source modelscope)"
            if have else "")


def _network_message(endpoint: str, exc: BaseException, partial_note: str = "", name: str = "NAME") -> str:
    return (f"could not download from {endpoint} ({_short_reason(exc)}).{partial_note}\n"
            f"  Check your connection or proxy (HTTPS_PROXY), then run the same command again: it resumes.\n"
            f"  In mainland China the hub is blocked: use the mirror with --endpoint {HF_MIRROR} "
            f"(or export HF_ENDPOINT={HF_MIRROR}); {modelscope_hint(name)}.\n"
            f"  On Huawei ModelArts, copy the files from OBS instead: svd-lab download {name} --from obs://bucket/path")


def _translate(exc: BaseException, spec: CheckpointSpec, endpoint: str, token, revision: str,
               partial_note: str = "") -> CheckpointError | None:
    """A CheckpointError for an exception raised by huggingface_hub or the transport; None if not ours to map."""
    import httpx2
    from huggingface_hub import errors as hf_errors

    if isinstance(exc, hf_errors.OfflineModeIsEnabled):
        return OfflineError(f"offline mode is on (HF_HUB_OFFLINE=1) and {spec.name} is not complete locally: "
                            f"unset HF_HUB_OFFLINE to download it")
    if isinstance(exc, hf_errors.GatedRepoError):
        status = exc.response.status_code if exc.response is not None else None
        return HubAccessError(_gated_message(spec, endpoint, token, status))
    if isinstance(exc, hf_errors.RevisionNotFoundError):
        return HubNotFoundError(f"revision {revision!r} does not exist in {spec.repo_id} on {endpoint}: "
                                f"use --revision main or a commit hash from {spec.repo_url}/commits/main")
    if isinstance(exc, hf_errors.RemoteEntryNotFoundError):
        return HubNotFoundError(f"a file of {spec.name} is missing from {spec.repo_id} on {endpoint} "
                                f"({str(exc).splitlines()[-1][:200]})")
    if isinstance(exc, hf_errors.RepositoryNotFoundError):
        status = exc.response.status_code if exc.response is not None else None
        login = ("" if _token_available(token) else
                 " If it is private or gated, log in first (`hf auth login` or HF_TOKEN).")
        return HubNotFoundError(f"{spec.repo_id} was not found on {endpoint} (HTTP {status}).{login} "
                                f"Check the endpoint: the official hub is {HUB_WEB}, the mirror {HF_MIRROR}.")
    if isinstance(exc, hf_errors.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            return HubAccessError(_gated_message(spec, endpoint, token, status))
        if status == 404:
            return HubNotFoundError(f"{endpoint} answered 404 for {spec.repo_id}: {str(exc).splitlines()[0][:200]}")
        return HubNetworkError(_network_message(endpoint, exc, partial_note, spec.name))
    if isinstance(exc, (httpx2.TransportError, httpx2.HTTPError, ConnectionError, TimeoutError)):
        return HubNetworkError(_network_message(endpoint, exc, partial_note, spec.name))
    if isinstance(exc, OSError) and "Consistency check failed" in str(exc):
        return HubNetworkError(_network_message(endpoint, exc, partial_note, spec.name))
    return None


def _call_hub(fn, spec: CheckpointSpec, endpoint: str, token, revision: str, partial_note: str = ""):
    try:
        return fn()
    except CheckpointError:
        raise
    except Exception as exc:
        mapped = _translate(exc, spec, endpoint, token, revision, partial_note)
        if mapped is None:
            raise
        raise mapped from None  # the hub's own traceback adds nothing for the user
