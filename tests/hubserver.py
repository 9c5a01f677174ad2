"""A small, real Hugging Face hub for the tests: an HTTP server on 127.0.0.1 (free ports, threads) that speaks the
parts of the hub protocol huggingface_hub 2.4.0 uses (pinned in constraints.txt; read from its source:
file_download.py, hf_api.py, utils/_http.py).

Two servers, as on the real hub: the *hub* (API and ``/resolve/``) and a *storage host* for LFS files, on another
port. Being another origin matters: huggingface_hub follows a ``/resolve/`` redirect only on the same origin, and
otherwise takes the file's metadata from the redirect itself and drops the Authorization header for the storage URL.

Hub endpoints:

- ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}`` (``?blobs=True``: ``files_metadata``):
  model info JSON with ``sha`` (the commit), ``gated``, ``cardData`` and ``siblings``
  (``rfilename``, and with blobs ``size``, ``blobId``, ``lfs: {size, sha256, pointerSize}``);
- ``GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=True``: the tree listing ``snapshot_download`` uses;
- ``HEAD``/``GET /{repo}/resolve/{rev}/{path}``: a small (git) file answers 200 with ``ETag`` (its git blob id),
  ``X-Repo-Commit``, ``Content-Length``, ranges; an LFS file answers 302 to the storage host with
  ``X-Linked-Size``, ``X-Linked-Etag`` (its sha256) and ``X-Repo-Commit``.

Storage host: ``HEAD``/``GET /lfs/{sha256}`` with ``Range`` support (206 + ``Content-Range``).

Errors as the hub sends them (``X-Error-Code`` drives huggingface_hub's exception classes): a gated repo answers
401 without a token and 403 with a token that was not granted (``X-Error-Code: GatedRepo``); an unknown repo 401
(no token) or 404 (``RepoNotFound``); an unknown revision 404 ``RevisionNotFound``; a missing file 404
``EntryNotFound`` with ``X-Repo-Commit``.

Faults, set per test on ``server.faults`` (each counts down and then stops; pending cuts come first, then
outages, then corruptions):

- ``cut[path] = [n1, n2, ...]``: the next content GETs of ``path`` send n bytes of the body, then close the socket;
- ``outage[path] = k``: the next k content GETs of ``path`` answer 503;
- ``corrupt[path] = k``: the next k content GETs of ``path`` send a body with one byte flipped (same length);
- ``stall[path] = n``: the next content GET of ``path`` sends n bytes, then hangs until ``faults.released`` is set
  (a transfer stuck mid-file: the test kills the downloading process meanwhile), then closes the socket.

Every request is logged in ``server.requests`` (method, host 'hub'|'lfs', path, Range header, whether an
Authorization header came, the status).
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from svd_lab.svd.layout import FP16
from svd_lab.svd.versions import DEFAULT_VERSION

LFS_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class HubFile:
    """One file of a repo. Its hashes are computed once: to change the bytes, ``repo.add`` a new file."""

    path: str
    data: bytes
    lfs: bool
    sha256: str = field(init=False)

    def __post_init__(self):
        self.sha256 = hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def pointer(self) -> bytes:
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {self.size}\n".encode()

    @property
    def blob_id(self) -> str:
        """git object id: of the LFS pointer for LFS files (what the hub reports), else of the content."""
        return git_blob_id(self.pointer if self.lfs else self.data)


@dataclass
class HubRepo:
    repo_id: str
    files: dict[str, HubFile] = field(default_factory=dict)
    gated: bool = False  # downloads (resolve) need a token in `granted_tokens`
    gate_api: bool = False  # the API answers 401/403 too (private repos; some mirrors)
    granted_tokens: set[str] = field(default_factory=set)
    license: str = "other"
    license_name: str | None = None

    def add(self, path: str, data: bytes, lfs: bool | None = None) -> HubFile:
        f = HubFile(path, data, path.endswith(LFS_SUFFIXES) if lfs is None else lfs)
        self.files[path] = f
        return f

    def add_folder(self, folder: Path | str, prefix: str = "") -> None:
        folder = Path(folder)
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                self.add(prefix + p.relative_to(folder).as_posix(), p.read_bytes())

    @property
    def commit(self) -> str:
        """Deterministic 40-hex commit id of the current content (changes when a file changes)."""
        h = hashlib.sha1(self.repo_id.encode())
        for path in sorted(self.files):
            h.update(path.encode() + b"\0" + self.files[path].sha256.encode())
        return h.hexdigest()


@dataclass
class Faults:
    cut: dict[str, list[int]] = field(default_factory=dict)
    outage: dict[str, int] = field(default_factory=dict)
    corrupt: dict[str, int] = field(default_factory=dict)
    stall: dict[str, int] = field(default_factory=dict)
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, path: str) -> tuple[str, int | None] | None:
        """The fault to apply to this content GET of ``path`` (and count it down), or None."""
        with self.lock:
            if self.cut.get(path):
                return ("cut", self.cut[path].pop(0))
            if path in self.stall:
                return ("stall", self.stall.pop(path))
            if self.outage.get(path, 0) > 0:
                self.outage[path] -= 1
                return ("outage", None)
            if self.corrupt.get(path, 0) > 0:
                self.corrupt[path] -= 1
                return ("corrupt", None)
        return None


@dataclass
class LoggedRequest:
    method: str
    host: str
    path: str
    range: str | None
    authorized: bool
    status: int = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: without this, ~0.1 s per request
    server_version = "svd-lab-test-hub/1"
    hub: HubServer  # set on the subclass
    role: str = "hub"

    def log_message(self, format, *args):  # quiet: the tests read server.requests
        pass

    # ---- plumbing
    def _log(self) -> LoggedRequest:
        entry = LoggedRequest(self.command, self.role, self.path, self.headers.get("Range"),
                              "authorization" in {k.lower() for k in self.headers})
        with self.hub.log_lock:
            self.hub.requests.append(entry)
        return entry

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None

    def _send(self, entry: LoggedRequest, status: int, headers: dict | None = None, body: bytes = b"") -> None:
        entry.status = status
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _error(self, entry: LoggedRequest, status: int, code: str | None, message: str, extra: dict | None = None):
        headers = {"Content-Type": "application/json", "X-Error-Message": message, **(extra or {})}
        if code:
            headers["X-Error-Code"] = code
        self._send(entry, status, headers, json.dumps({"error": message}).encode())

    def _serve_bytes(self, entry: LoggedRequest, hub_file: HubFile, headers: dict) -> None:
        """200 or 206 for ``hub_file``'s bytes, honouring Range, applying this file's pending fault."""
        data, total = hub_file.data, hub_file.size
        start, end = 0, total - 1
        status = 200
        rng = None if self.hub.ignore_range else self.headers.get("Range")
        if rng:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if not m or (not m.group(1) and not m.group(2)):
                return self._error(entry, 416, None, "bad range", {"Content-Range": f"bytes */{total}"})
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), total - 1) if m.group(2) else total - 1
            else:  # suffix range: the last n bytes
                start = max(total - int(m.group(2)), 0)
            if start >= total or start > end:
                return self._error(entry, 416, None, "range not satisfiable", {"Content-Range": f"bytes */{total}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        body = data[start:end + 1]
        headers.update({"Content-Length": str(len(body)), "Accept-Ranges": "bytes",
                        "Content-Type": "application/octet-stream"})
        fault = self.hub.faults.take(hub_file.path) if self.command == "GET" else None
        if fault and fault[0] == "outage":
            return self._error(entry, 503, None, "storage temporarily unavailable")
        if fault and fault[0] == "corrupt" and body:
            mid = len(body) // 2
            body = body[:mid] + bytes([body[mid] ^ 0xFF]) + body[mid + 1:]
        entry.status = status
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return
        if fault and fault[0] in ("cut", "stall"):
            self.wfile.write(body[:fault[1]])
            if fault[0] == "stall":  # hold the connection open, as a stuck transfer does, until the test goes on
                self.wfile.flush()
                self.hub.faults.released.wait(timeout=60)
            self.wfile.flush()
            self.close_connection = True
            try:  # a hard close mid-body: the client sees the peer go away before Content-Length bytes
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(body)

    # ---- routing
    def do_HEAD(self):
        self._route()

    def do_GET(self):
        self._route()

    def _route(self):
        entry = self._log()
        url = urlparse(self.path)
        path = unquote(url.path)
        try:
            if self.role == "lfs":
                return self._lfs(entry, path)
            if path.startswith("/api/models/"):
                return self._api(entry, path[len("/api/models/"):], parse_qs(url.query))
            m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
            if m:
                return self._resolve(entry, m.group(1), m.group(2), m.group(3))
            return self._error(entry, 404, None, "not found")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _repo_or_error(self, entry, repo_id: str, api: bool) -> HubRepo | None:
        repo = self.hub.repos.get(repo_id)
        token = self._token()
        if repo is None:
            status = 404 if token else 401  # like the hub: without a token, a missing repo looks private
            self._error(entry, status, "RepoNotFound", "Repository not found")
            return None
        if repo.gated and (not api or repo.gate_api) and token not in repo.granted_tokens:
            msg = (f"Access to model {repo_id} is restricted. You must have access to it and be authenticated "
                   f"to access it. Please log in." if token is None else
                   f"Access to model {repo_id} is restricted and you are not in the authorized list. Visit "
                   f"https://huggingface.co/{repo_id} to ask for access.")
            self._error(entry, 401 if token is None else 403, "GatedRepo", msg)
            return None
        return repo

    def _revision_ok(self, entry, repo: HubRepo, rev: str) -> bool:
        if rev in ("main", repo.commit):
            return True
        self._error(entry, 404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return False

    def _api(self, entry, rest: str, query: dict):
        m = re.fullmatch(r"([^/]+/[^/]+)(?:/revision/([^/]+)|/tree/([^/]+)(?:/(.*))?)?", rest)
        if not m:
            return self._error(entry, 404, None, "not found")
        repo = self._repo_or_error(entry, m.group(1), api=True)
        if repo is None:
            return
        if m.group(3) is not None:
            return self._tree(entry, repo, m.group(3), m.group(4) or "")
        rev = m.group(2) or "main"
        if not self._revision_ok(entry, repo, rev):
            return
        blobs = query.get("blobs", ["false"])[0].lower() == "true"
        siblings = []
        for f in sorted(repo.files.values(), key=lambda f: f.path):
            s = {"rfilename": f.path}
            if blobs:
                s.update(size=f.size, blobId=f.blob_id)
                if f.lfs:
                    s["lfs"] = {"size": f.size, "sha256": f.sha256, "pointerSize": len(f.pointer)}
            siblings.append(s)
        card = {"license": repo.license}
        if repo.license_name:
            card["license_name"] = repo.license_name
        info = {
            "_id": repo.commit[:24], "id": repo.repo_id, "modelId": repo.repo_id, "author": repo.repo_id.split("/")[0],
            "sha": repo.commit, "lastModified": "2024-01-01T00:00:00.000Z", "createdAt": "2023-11-21T00:00:00.000Z",
            "private": False, "disabled": False, "gated": "manual" if repo.gated else False,
            "downloads": 0, "likes": 0, "library_name": "diffusers", "tags": ["diffusers", "image-to-video"],
            "pipeline_tag": "image-to-video", "cardData": card, "siblings": siblings,
            "usedStorage": sum(f.size for f in repo.files.values()),
        }
        self._send(entry, 200, {"Content-Type": "application/json"}, json.dumps(info).encode())

    def _tree(self, entry, repo: HubRepo, rev: str, prefix: str):
        if not self._revision_ok(entry, repo, rev):
            return
        recursive = "recursive=true" in (urlparse(self.path).query.lower())
        prefix = prefix.strip("/")
        items, dirs = [], set()
        for f in sorted(repo.files.values(), key=lambda f: f.path):
            if prefix and not f.path.startswith(prefix + "/"):
                continue
            rel = f.path[len(prefix) + 1:] if prefix else f.path
            parts = rel.split("/")
            for i in range(1, len(parts)):
                d = "/".join(([prefix] if prefix else []) + parts[:i])
                if d not in dirs and (recursive or i == 1):
                    dirs.add(d)
                    items.append({"type": "directory", "oid": git_blob_id(d.encode()), "size": 0, "path": d})
            if len(parts) > 1 and not recursive:
                continue
            item = {"type": "file", "oid": f.blob_id, "size": f.size, "path": f.path}
            if f.lfs:
                item["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": len(f.pointer)}
            items.append(item)
        self._send(entry, 200, {"Content-Type": "application/json"}, json.dumps(items).encode())

    def _resolve(self, entry, repo_id: str, rev: str, path: str):
        repo = self._repo_or_error(entry, repo_id, api=False)
        if repo is None or not self._revision_ok(entry, repo, rev):
            return
        f = repo.files.get(path)
        if f is None:
            return self._error(entry, 404, "EntryNotFound", f"{path} does not exist on \"{rev}\"",
                               {"X-Repo-Commit": repo.commit})
        common = {"X-Repo-Commit": repo.commit, "Accept-Ranges": "bytes"}
        if f.lfs:
            location = f"{self.hub.lfs_endpoint}/lfs/{f.sha256}?repo={repo_id}&signature=test"
            return self._send(entry, 302, {**common, "Location": location, "X-Linked-Size": str(f.size),
                                           "X-Linked-Etag": f'"{f.sha256}"', "ETag": f'"{f.blob_id}"'})
        self._serve_bytes(entry, f, {**common, "ETag": f'"{f.blob_id}"'})

    def _lfs(self, entry, path: str):
        m = re.fullmatch(r"/lfs/([0-9a-f]{64})", path)
        found = None
        if m:  # the signed URL names the repo: find the object there (two repos may hold the same bytes)
            repo = self.hub.repos.get(parse_qs(urlparse(self.path).query).get("repo", [""])[0])
            candidates = [f for f in repo.files.values() if f.lfs] if repo else []
            found = next((f for f in candidates if f.sha256 == m.group(1)), None)
            found = found or self.hub.lfs_objects().get(m.group(1))
        if found is None:
            return self._error(entry, 404, None, "no such object")
        self._serve_bytes(entry, found, {"ETag": f'"{found.sha256}"'})


class HubServer:
    """``with HubServer() as hub: hub.add_repo(repo); ... hub.endpoint``."""

    def __init__(self):
        self.repos: dict[str, HubRepo] = {}
        self.faults = Faults()
        self.ignore_range = False  # answer 200 with the whole file to a Range request (some proxies and mirrors)
        self.requests: list[LoggedRequest] = []
        self.log_lock = threading.Lock()
        self._servers: list[ThreadingHTTPServer] = []
        self._threads: list[threading.Thread] = []
        self.endpoint = ""
        self.lfs_endpoint = ""

    def add_repo(self, repo: HubRepo) -> HubRepo:
        self.repos[repo.repo_id] = repo
        return repo

    def lfs_objects(self) -> dict[str, HubFile]:
        return {f.sha256: f for r in self.repos.values() for f in r.files.values() if f.lfs}

    def requests_for(self, path_fragment: str, method: str = "GET") -> list[LoggedRequest]:
        with self.log_lock:
            return [r for r in self.requests if r.method == method and path_fragment in r.path]

    handler_class: type = _Handler  # what answers the requests (tests/modelscopeserver.py has another protocol)

    def _serve(self, role: str) -> str:
        handler = type(f"{role.title()}Handler", (self.handler_class,), {"hub": self, "role": role})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self._servers.append(server)
        self._threads.append(thread)
        return f"http://127.0.0.1:{server.server_address[1]}"

    def start(self) -> HubServer:
        self.endpoint = self._serve("hub")
        self.lfs_endpoint = self._serve("lfs")
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def closed_port_endpoint() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connection refused): a network failure."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# ------------------------------------------------------------------------------------------- test repositories


def build_tiny_diffusers_folder(folder: Path | str, variants=(None, FP16), version: str = DEFAULT_VERSION,
                               seed: int = 0) -> Path:
    """The tiny profile saved in the hub's diffusers layout (what stabilityai/stable-video-diffusion-img2vid holds):
    model_index.json, unet/, vae/, image_encoder/ (config + weights per variant), scheduler/, feature_extractor/.

    The networks come from ``svd_lab.svd.components.build_components("tiny")``; fp16 files hold float16 weights, as
    on the hub.
    """
    import torch

    from svd_lab.svd.components import build_components
    from svd_lab.svd.configs import feature_extractor_config, scheduler_config

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    comps = build_components("tiny", version, dtype=torch.float32, seed=seed)
    for variant in variants:
        comps = comps.to(dtype=torch.float16 if variant == FP16 else torch.float32)
        comps.unet.save_pretrained(folder / "unet", safe_serialization=True, variant=variant)
        comps.vae.save_pretrained(folder / "vae", safe_serialization=True, variant=variant)
        comps.image_encoder.save_pretrained(folder / "image_encoder", safe_serialization=True, variant=variant)
    index = {"_class_name": "StableVideoDiffusionPipeline", "_diffusers_version": "0.24.0.dev0",
             "feature_extractor": ["transformers", "CLIPImageProcessor"],
             "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
             "scheduler": ["diffusers", "EulerDiscreteScheduler"],
             "unet": ["diffusers", "UNetSpatioTemporalConditionModel"],
             "vae": ["diffusers", "AutoencoderKLTemporalDecoder"]}
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    (folder / "scheduler").mkdir(exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(
        {"_class_name": "EulerDiscreteScheduler", "_diffusers_version": "0.24.0.dev0", **scheduler_config()},
        indent=2))
    (folder / "feature_extractor").mkdir(exist_ok=True)
    (folder / "feature_extractor" / "preprocessor_config.json").write_text(json.dumps(
        {"feature_extractor_type": "CLIPFeatureExtractor", "image_processor_type": "CLIPImageProcessor",
         **feature_extractor_config()}, indent=2))
    return folder


def build_small_sgm_file(path: Path | str, seed: int = 0, text_tower_values: int = 6 * 2**20) -> Path:
    """A small safetensors file with sgm-style key names (model.diffusion_model.*, first_stage_model.*,
    conditioner.embedders.*): the shape of Stability's single-file checkpoints, 24 MiB instead of 9.5 GB.

    Why 24 MiB: huggingface_hub writes a download in 10 MiB chunks (constants.DOWNLOAD_CHUNK_SIZE), so a transfer
    cut after more than 10 MiB leaves whole chunks to resume from.
    """
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    tensors = {
        "model.diffusion_model.input_blocks.0.0.weight": torch.randn(32, 8, 3, 3, generator=g),
        "model.diffusion_model.input_blocks.0.0.bias": torch.randn(32, generator=g),
        "first_stage_model.decoder.conv_out.weight": torch.randn(3, 32, 3, 3, generator=g),
        "conditioner.embedders.0.open_clip.model.visual.proj": torch.randn(64, 64, generator=g),
        # the text-tower leftovers of the real file, here just bulk
        "conditioner.embedders.0.open_clip.model.token_embedding.weight":
            torch.randn(text_tower_values // 1024, 1024, generator=g),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"format": "pt"})
    return path
