"""Is a weight file complete and the one the hub published?

Three levels of evidence, cheapest first:

1. **Recorded verification.** After a download (or an explicit check) svd-lab writes, beside the checkpoint, a record
   ``<root>/.svd-lab/verified.json``: per file its size, modification time and sha256. A later load compares size
   and mtime with the record (one ``stat``), so a 9.5 GB file is hashed once, not on every load.
2. **Structure.** A safetensors file starts with an 8-byte little-endian header length N and an N-byte JSON header
   giving every tensor's byte range; the file must be exactly ``8 + N + max(end offset)`` bytes. That catches a
   truncated download (generative-models #405) from the header alone.
3. **Content hash.** The hub publishes the sha256 of every LFS file (``lfs.sha256`` in the repo info, the
   ``X-Linked-Etag`` header) and the git blob id (sha1 of ``"blob <size>\\0" + bytes``) of small files. Comparing
   it after the download catches corruption that keeps the size (huggingface_hub itself only checks sizes).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from svd_lab.atomic import write_text_atomic

RECORD_DIR = ".svd-lab"
RECORD_FILE = "verified.json"
_CHUNK = 8 * 2**20
_MAX_SAFETENSORS_HEADER = 100 * 2**20


def sha256_file(path: Path | str, chunk_size: int = _CHUNK) -> str:
    """Hex sha256 of a file's bytes (streamed: constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def git_blob_sha1(path: Path | str, chunk_size: int = _CHUNK) -> str:
    """Git's object id of a file: sha1 over ``b"blob <size>\\0"`` followed by the bytes (the hub's ``blobId``)."""
    size = os.path.getsize(path)
    digest = hashlib.sha1(f"blob {size}\0".encode())
    with open(path, "rb") as f:
        while block := f.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def safetensors_problem(path: Path | str) -> str | None:
    """None when ``path`` is a structurally complete safetensors file, else a one-line reason.

    Reads only the header: ``[u64 little-endian N][N bytes of JSON][tensor bytes]``; the JSON maps tensor names to
    ``{"dtype", "shape", "data_offsets": [begin, end]}`` relative to the end of the header.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"{path.name}: {size} bytes, too short to be a safetensors file"
            (header_len,) = struct.unpack("<Q", head)
            if header_len > _MAX_SAFETENSORS_HEADER or 8 + header_len > size:
                return f"{path.name}: not a safetensors file or truncated inside its header"
            header = json.loads(f.read(header_len))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return f"{path.name}: unreadable safetensors header ({type(exc).__name__})"
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            end = max(end, int(entry["data_offsets"][1]))
        except (KeyError, TypeError, IndexError, ValueError):
            return f"{path.name}: malformed safetensors header entry {name!r}"
    expected = 8 + header_len + end
    if size < expected:
        return f"{path.name}: truncated ({size:,} of {expected:,} bytes)"
    if size > expected:
        return f"{path.name}: {size - expected:,} unexpected trailing bytes (expected {expected:,})"
    return None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class FileRecord:
    size: int
    mtime_ns: int
    sha256: str
    source: str = ""  # what the hash was compared with: "hub lfs sha256", "hub git blob id", "none" ...
    verified_at: str = ""

    def matches(self, path: Path) -> bool:
        st = path.stat()
        return st.st_size == self.size and st.st_mtime_ns == self.mtime_ns


class VerificationRecord:
    """``<root>/.svd-lab/verified.json``: which files under ``root`` were hashed, and what they hashed to.

    Keys are POSIX paths relative to ``root``. Written atomically (:func:`svd_lab.atomic.write_text_atomic`) so a
    crash never leaves half a record, with the umask's permissions like any other file of the user.
    """

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.path = self.root / RECORD_DIR / RECORD_FILE
        self.files: dict[str, FileRecord] = {}
        self.meta: dict = {}
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text())
                self.meta = dict(data.get("meta", {}))
                self.files = {k: FileRecord(**v) for k, v in data.get("files", {}).items()}
            except (OSError, ValueError, TypeError):
                self.files, self.meta = {}, {}  # an unreadable record only costs a re-hash

    def key(self, path: Path | str) -> str:
        """The path as the user placed it, relative to ``root``. Symbolic links are not followed: a
        ``checkpoints/svd.safetensors`` that links to a file elsewhere is recorded under its own name."""
        path, root = Path(os.path.abspath(path)), Path(os.path.abspath(self.root))
        try:
            return path.relative_to(root).as_posix()
        except ValueError:  # a file outside root (an explicit --checkpoint path): key it by absolute path
            return path.as_posix()

    def get(self, path: Path | str) -> FileRecord | None:
        return self.files.get(self.key(path))

    def status(self, path: Path | str) -> str:
        """'verified' (record matches size and mtime), 'changed' (size differs from the record: truncated or
        replaced), 'stale' (same size, other mtime: copied or touched; content unknown), 'unrecorded'."""
        path = Path(path)
        rec = self.get(path)
        if rec is None:
            return "unrecorded"
        st = path.stat()
        if st.st_size != rec.size:
            return "changed"
        return "verified" if st.st_mtime_ns == rec.mtime_ns else "stale"

    def add(self, path: Path | str, sha256: str, source: str) -> FileRecord:
        path = Path(path)
        st = path.stat()
        rec = FileRecord(size=st.st_size, mtime_ns=st.st_mtime_ns, sha256=sha256, source=source,
                         verified_at=_now())
        self.files[self.key(path)] = rec
        return rec

    def forget(self, path: Path | str) -> None:
        self.files.pop(self.key(path), None)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"format": 1, "meta": self.meta, "files": {k: vars(v) for k, v in sorted(self.files.items())}}
        write_text_atomic(self.path, json.dumps(data, indent=1) + "\n", overwrite=True)


def file_problem(path: Path, record: VerificationRecord | None) -> tuple[str | None, bool]:
    """(problem or None, verified) for one file about to be loaded, without hashing it.

    A file whose size differs from its recorded verification is refused; safetensors files without a matching
    record must at least be structurally complete.
    """
    if not path.is_file():
        return f"{path.name} is missing", False
    status = record.status(path) if record is not None else "unrecorded"
    if status == "verified":
        return None, True
    if status == "changed":
        return (f"{path.name} changed since it was verified ({path.stat().st_size:,} bytes, recorded "
                f"{record.get(path).size:,}): truncated or replaced"), False
    if path.suffix == ".safetensors":
        return safetensors_problem(path), False
    return None, False


def verify_against_record(path: Path, record: VerificationRecord) -> str | None:
    """Re-hash ``path`` and compare with its record; None when it matches (the record is refreshed)."""
    rec = record.get(path)
    if rec is None:
        return f"{path.name} has no recorded hash"
    actual = sha256_file(path)
    if actual != rec.sha256:
        return f"{path.name}: sha256 {actual[:12]}... differs from the recorded {rec.sha256[:12]}..."
    record.add(path, actual, rec.source)
    return None
