"""A small, real ModelScope for the tests: HTTP servers on 127.0.0.1 that speak the parts of the ModelScope protocol
the pinned client uses (modelscope 1.40.2, whose downloads are modelscope-hub 0.5.1: read from its source,
``_legacy_api.py``, ``_download.py``, ``errors.py``, ``config.py``; pinned in constraints.txt).

Two servers, like ModelScope's API host and the object storage its large files are served from:

- ``GET /api/v1/repos/internalAccelerationInfo``: the client's region probe (answered: no internal region);
- ``GET /api/v1/models/{owner}/{name}/repo/files?Revision=R&Recursive=True``: the file listing,
  ``{"Code": 200, "Success": true, "Data": {"Files": [{"Name", "Path", "Type": "blob"|"tree", "Size", "Sha256",
  "Revision", "IsLFS", "CommittedDate"}]}}`` (directories are listed as ``tree`` entries);
- ``GET /api/v1/models/{owner}/{name}/repo?Revision=R&FilePath=P``: a file's bytes. Small (git) files are answered
  directly (200/206 with ``Range``); LFS files with a 302 to the storage host, whose ``GET /lfs/{sha256}`` honours
  ``Range``;
- errors with ModelScope's JSON body ``{"Code": <http status>, "Message": ..., "Success": false, "RequestId"}``:
  404 for an unknown repository, revision or file; a private repository answers 401 without a token and 403 with a
  token it does not know (the client sends it as ``Authorization: Bearer`` and the ``m_session_id`` cookie).

Faults and the request log are :mod:`hubserver`'s (``server.faults.cut/outage/corrupt[path]``,
``server.requests``), keyed by the repository path of the file.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlparse

from hubserver import HubFile, HubRepo, HubServer, LoggedRequest, _Handler

COMMITTED = 1_700_000_000  # seconds since the epoch: the listing's CommittedDate of every file


@dataclass
class ModelScopeRepo(HubRepo):
    """A ModelScope model repository; ``private`` ones need a token in ``granted_tokens``."""

    private: bool = False
    revisions: set[str] = field(default_factory=lambda: {"master"})


class _ModelScopeHandler(_Handler):
    server_version = "svd-lab-test-modelscope/1"

    def _ms_error(self, entry: LoggedRequest, status: int, message: str) -> None:
        body = {"Code": status, "Message": message, "Success": False, "RequestId": uuid.uuid4().hex}
        self._send(entry, status, {"Content-Type": "application/json"}, json.dumps(body).encode())

    def _ms_json(self, entry: LoggedRequest, data) -> None:
        body = {"Code": 200, "Message": "success", "Success": True, "RequestId": uuid.uuid4().hex, "Data": data}
        self._send(entry, 200, {"Content-Type": "application/json"}, json.dumps(body).encode())

    def _token(self) -> str | None:
        bearer = super()._token()
        if bearer:
            return bearer
        for part in self.headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "m_session_id" and value:
                return value
        return None

    def _route(self):
        entry = self._log()
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = unquote(url.path)
        if self.role == "lfs":
            return self._lfs(entry, path)
        if path == "/api/v1/repos/internalAccelerationInfo":
            return self._ms_json(entry, {"InternalRegionQueryAddress": ""})
        prefix = "/api/v1/models/"
        if not path.startswith(prefix):
            return self._ms_error(entry, 404, f"no route {path}")
        rest = path[len(prefix):]
        for suffix, handler in (("/repo/files", self._files), ("/repo", self._file)):
            if rest.endswith(suffix):
                repo = self._repo(entry, rest[:-len(suffix)], query.get("Revision", "master"))
                if repo is not None:
                    handler(entry, repo, query)
                return None
        return self._ms_error(entry, 404, f"no route {path}")

    def _repo(self, entry: LoggedRequest, repo_id: str, revision: str) -> ModelScopeRepo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._ms_error(entry, 404, f"model {repo_id} not exists")
            return None
        if repo.private and self._token() not in repo.granted_tokens:
            status = 403 if self._token() else 401
            self._ms_error(entry, status, "permission denied" if self._token() else "login required")
            return None
        if revision not in repo.revisions and revision != repo.commit:
            self._ms_error(entry, 404, f"revision {revision} not exists")
            return None
        return repo

    def _files(self, entry: LoggedRequest, repo: ModelScopeRepo, query: dict) -> None:
        entries = []
        folders = sorted({"/".join(p.split("/")[:i]) for p in repo.files for i in range(1, p.count("/") + 1)})
        for folder in folders:
            entries.append({"Name": folder.rsplit("/", 1)[-1], "Path": folder, "Type": "tree", "Size": 0,
                            "Sha256": "", "Revision": repo.commit, "IsLFS": False, "CommittedDate": COMMITTED})
        for f in sorted(repo.files.values(), key=lambda f: f.path):
            entries.append({"Name": f.path.rsplit("/", 1)[-1], "Path": f.path, "Type": "blob", "Size": f.size,
                            "Sha256": f.sha256, "Revision": repo.commit, "IsLFS": f.lfs,
                            "CommittedDate": COMMITTED})
        self._ms_json(entry, {"Files": entries})

    def _file(self, entry: LoggedRequest, repo: ModelScopeRepo, query: dict) -> None:
        f: HubFile | None = repo.files.get(query.get("FilePath", ""))
        if f is None:
            return self._ms_error(entry, 404, f"file {query.get('FilePath')} not exists")
        if f.lfs:
            return self._send(entry, 302, {"Location": f"{self.hub.lfs_endpoint}/lfs/{f.sha256}"})
        return self._serve_bytes(entry, f, {})

    def _lfs(self, entry: LoggedRequest, path: str) -> None:
        sha = path.rsplit("/", 1)[-1]
        f = self.hub.lfs_objects().get(sha)
        if f is None:
            return self._ms_error(entry, 404, "object not found")
        return self._serve_bytes(entry, f, {})


class ModelScopeServer(HubServer):
    """``with ModelScopeServer() as ms: ms.add_repo(ModelScopeRepo(...)); ... ms.endpoint``."""

    handler_class = _ModelScopeHandler
