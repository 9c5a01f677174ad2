"""A checkpoint folder while files arrive in it: the staging area, the lock, and moving finished files in.

Whatever brings the files (a hub download, :mod:`svd_lab.checkpoints.hub`; a copy from OBS,
:mod:`svd_lab.checkpoints.obs`) follows the same rules, so a loader never sees an incomplete file::

    checkpoints/<name>/
      .svd-lab/download.lock     one writer per folder at a time
      .svd-lab/staging/          files being fetched or copied; kept across runs, so a download resumes
      unet/...                   only complete, verified files get here, by one rename each

Files in staging are opened with ``open()``, so they (and the final files, which are the same files renamed) have
the permissions of any file the user creates (``0o666 & ~umask``).
"""

from __future__ import annotations

import os
from pathlib import Path

from svd_lab.checkpoints.errors import CheckpointError
from svd_lab.checkpoints.verify import RECORD_DIR

STAGING = "staging"
LOCK_FILE = "download.lock"


def staging_dir(target: Path) -> Path:
    """``<target>/.svd-lab/staging``: where files of ``target`` wait until they are complete and verified."""
    return target / RECORD_DIR / STAGING


def partial_path(target: Path, repo_path: str, digest: str) -> Path:
    """The staging file of ``repo_path``, named after the hash it must end up with.

    Keyed by the expected hash, so a partial file of another revision is never resumed into this one.
    """
    return staging_dir(target) / f"{partial_prefix(repo_path)}.{digest[:16]}.partial"


def partial_prefix(repo_path: str) -> str:
    """What every staging file of ``repo_path`` starts with, whatever its revision (``unet__config.json``)."""
    return repo_path.replace("/", "__")


def move_into_place(source: Path, final: Path) -> None:
    """Move a finished, verified download to its final name in one rename, *replacing* what is there (an older
    revision of the file: the download decided to fetch it). Same file system: staging is inside the folder.
    Compare :func:`svd_lab.atomic.place`, which refuses to overwrite unless told to."""
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, final)


def remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` when it exists and holds nothing (an emptied staging area is not left behind)."""
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


class FolderLock:
    """One writer per checkpoint folder at a time: two notebooks appending to one partial file would corrupt it.

    Refuses at once (no waiting) with a message naming the lock file.
    """

    def __init__(self, target: Path):
        from filelock import FileLock, Timeout  # imported here: listing checkpoints does not need it

        (target / RECORD_DIR).mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(target / RECORD_DIR / LOCK_FILE))
        self._timeout = Timeout
        self._target = target

    def __enter__(self):
        try:
            self._lock.acquire(timeout=0)
        except self._timeout:
            raise CheckpointError(f"another download into {self._target} is running (lock "
                                  f"{self._lock.lock_file}); wait for it to finish") from None
        return self

    def __exit__(self, *exc) -> None:
        self._lock.release()
