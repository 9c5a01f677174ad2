"""Atomic file writes that leave files with the permissions any other file of the user gets.

A file svd-lab writes (a video, a record, a converted folder) first gets all its bytes under a temporary name in the
same folder, then takes its final name in one ``rename``: a reader (a notebook, a second process, a crash) sees the
old file or the whole new one, never half of one. That is atomic against other processes and against a crash of
this one; it does not ``fsync``, so it makes no promise about a power cut.

Permissions: ``tempfile.mkstemp`` creates its file with mode 0600, whatever the umask, and ``os.replace`` keeps that
mode, so a video written that way is unreadable to the group and to a web server serving the folder. The temporary
files here are created with ``os.open(..., 0o666)`` instead: the kernel applies the umask (and any default ACL of
the folder) exactly as for a file opened with ``open(path, "w")``, so the result is ``0o666 & ~umask``, 0644 under
the usual umask 022. That needs no ``os.umask`` call, which would change the umask of every thread for a moment.
Folders likewise get ``0o777 & ~umask`` where ``tempfile.mkdtemp`` gives 0700.

Use::

    write_bytes_atomic(path, data)                  # refuses an existing path
    write_text_atomic(path, text, overwrite=True)   # replaces it

    tmp = new_temporary_beside(path, suffix=".mp4")  # an empty file to hand to ffmpeg, imageio, a library ...
    try:
        write_into(tmp)
        place(tmp, path, overwrite=False)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

# Random names collide once in 2**48 tries; a few retries only matter when a folder is shared by many writers.
_NAME_ATTEMPTS = 100
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)  # O_BINARY: Windows only


def _hidden_name_beside(path: Path, suffix: str) -> Path:
    """``.<name>.<random>.<suffix>`` in ``path``'s folder: hidden from listings, on the same file system (so a
    rename is atomic) and recognisably the leftover of ``<name>`` should the process be killed."""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}{suffix}")


def new_temporary_beside(path: str | os.PathLike, suffix: str = ".partial") -> Path:
    """Create a new empty file with a unique hidden name in the folder of ``path`` and return its path.

    Its mode is ``0o666 & ~umask``, like any file the user creates; the caller writes it, then :func:`place` s it
    (or deletes it on failure). ``suffix`` lets tools that choose a format by extension (ffmpeg, PIL) see the
    right one, e.g. ``".mp4"``.
    """
    path = Path(path)
    for _ in range(_NAME_ATTEMPTS):
        candidate = _hidden_name_beside(path, suffix)
        try:
            descriptor = os.open(candidate, _FILE_FLAGS, 0o666)  # the kernel applies the umask
        except FileExistsError:
            continue
        os.close(descriptor)
        return candidate
    raise FileExistsError(f"could not create a temporary file beside {path}: every name tried exists")


def new_directory_beside(path: str | os.PathLike, suffix: str = ".partial") -> Path:
    """Create a new empty folder with a unique hidden name beside ``path`` (mode ``0o777 & ~umask``)."""
    path = Path(path)
    for _ in range(_NAME_ATTEMPTS):
        candidate = _hidden_name_beside(path, suffix)
        try:
            os.mkdir(candidate, 0o777)  # the kernel applies the umask
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"could not create a temporary folder beside {path}: every name tried exists")


def _link_without_replacing(source: Path, target: Path) -> bool:
    """Give ``source`` the second name ``target`` unless ``target`` exists (FileExistsError then).

    False where the file system has no hard links (FAT, some network shares): the caller falls back to a rename.
    """
    try:
        os.link(source, target)
    except FileExistsError:
        raise FileExistsError(f"{target} already exists; not overwriting it (choose another name)") from None
    except OSError:
        return False
    return True


def place(temporary: str | os.PathLike, path: str | os.PathLike, overwrite: bool = False) -> None:
    """Give a finished temporary file or folder its final name ``path`` in one step.

    With ``overwrite`` an existing ``path`` is replaced (``os.replace``). Without, an existing ``path`` raises
    FileExistsError and is left alone: a hard link claims the name atomically, so two writers racing for one name
    cannot both win. On failure the temporary file is left for the caller to remove.
    """
    temporary, path = Path(temporary), Path(path)
    if not overwrite:
        if _link_without_replacing(temporary, path):
            temporary.unlink()
            return
        if path.exists():  # no hard links here: check, then rename (a small race, the best this file system allows)
            raise FileExistsError(f"{path} already exists; not overwriting it (choose another name)")
    os.replace(temporary, path)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (a temporary file beside it, then :func:`place`); returns ``path``.

    The file gets mode ``0o666 & ~umask``. Without ``overwrite`` an existing ``path`` raises FileExistsError and is
    left unchanged. The folder must exist. Nothing is left behind on failure.
    """
    path = Path(path)
    temporary = new_temporary_beside(path)
    try:
        with open(temporary, "wb") as f:
            f.write(data)
        place(temporary, path, overwrite=overwrite)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str, overwrite: bool = False, encoding: str = "utf-8") -> Path:
    """:func:`write_bytes_atomic` for text (UTF-8 unless told otherwise)."""
    return write_bytes_atomic(path, text.encode(encoding), overwrite=overwrite)
