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
from svd_lab.messages import t


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
    why = t("download.gated_403") if status == 403 or sent else t("download.gated_401")
    mirror = t("download.gated_mirror", endpoint=endpoint, hub=HUB_WEB) if not endpoint.startswith(HUB_WEB) else ""
    return t("download.gated", repo=spec.repo_id, why=why, url=spec.repo_url, licence=spec.licence, hub=HUB_WEB,
             mirror=mirror)


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
        return t("download.modelscope", name=name)
    have = list(MODELSCOPE_REPOS)
    return t("download.modelscope_other", have=", ".join(have), first=have[0]) if have else ""


def _network_message(endpoint: str, exc: BaseException, partial_note: str = "", name: str = "NAME") -> str:
    return t("download.network", endpoint=endpoint, reason=_short_reason(exc), partial=partial_note,
             mirror=HF_MIRROR, modelscope=modelscope_hint(name), name=name)


def _translate(exc: BaseException, spec: CheckpointSpec, endpoint: str, token, revision: str,
               partial_note: str = "") -> CheckpointError | None:
    """A CheckpointError for an exception raised by huggingface_hub or the transport; None if not ours to map."""
    import httpx2
    from huggingface_hub import errors as hf_errors

    if isinstance(exc, hf_errors.OfflineModeIsEnabled):
        return OfflineError(t("download.offline", name=spec.name))
    if isinstance(exc, hf_errors.GatedRepoError):
        status = exc.response.status_code if exc.response is not None else None
        return HubAccessError(_gated_message(spec, endpoint, token, status))
    if isinstance(exc, hf_errors.RevisionNotFoundError):
        return HubNotFoundError(t("download.no_revision", revision=repr(revision), repo=spec.repo_id,
                                  endpoint=endpoint, url=spec.repo_url))
    if isinstance(exc, hf_errors.RemoteEntryNotFoundError):
        return HubNotFoundError(t("download.missing_file", name=spec.name, repo=spec.repo_id, endpoint=endpoint,
                                  detail=str(exc).splitlines()[-1][:200]))
    if isinstance(exc, hf_errors.RepositoryNotFoundError):
        status = exc.response.status_code if exc.response is not None else None
        login = "" if _token_available(token) else t("download.login_first")
        return HubNotFoundError(t("download.no_repo", repo=spec.repo_id, endpoint=endpoint, status=status,
                                  login=login, hub=HUB_WEB, mirror=HF_MIRROR))
    if isinstance(exc, hf_errors.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            return HubAccessError(_gated_message(spec, endpoint, token, status))
        if status == 404:
            return HubNotFoundError(t("download.answered_404", endpoint=endpoint, repo=spec.repo_id,
                                      detail=str(exc).splitlines()[0][:200]))
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
