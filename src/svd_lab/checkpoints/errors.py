"""Errors of the checkpoint tools. Each message says what happened and what to do next, in a few lines.

They derive from :class:`svd_lab.errors.CheckpointError` (a :class:`~svd_lab.errors.UserError`), so the command
line prints them without a traceback (exit 2), and a notebook shows the same message. ``CheckpointError`` itself is
re-exported here, so ``from svd_lab.checkpoints import CheckpointError`` names the same class as
``svd_lab.errors.CheckpointError``.
"""

from __future__ import annotations

from svd_lab.errors import CheckpointError

__all__ = [
    "CheckpointError",
    "CorruptDownloadError",
    "DiskSpaceError",
    "HubAccessError",
    "HubNetworkError",
    "HubNotFoundError",
    "ObsUnavailableError",
    "OfflineError",
    "UnusableCheckpointError",
]


class UnusableCheckpointError(CheckpointError):
    """A checkpoint on disk is incomplete, truncated or corrupted: nothing may load it."""


class HubAccessError(CheckpointError):
    """The hub (or mirror) refused access: gated repository, missing or insufficient token."""


class HubNotFoundError(CheckpointError):
    """The repository, revision or file does not exist on the endpoint (404)."""


class HubNetworkError(CheckpointError):
    """The endpoint could not be reached or the transfer broke off; partial files are kept for a resume."""


class OfflineError(CheckpointError):
    """Offline mode (HF_HUB_OFFLINE=1) and the files are not all present locally."""


class DiskSpaceError(CheckpointError):
    """Not enough free disk space for the download (checked before it starts)."""


class CorruptDownloadError(CheckpointError):
    """A downloaded file did not match the size or hash the hub published, even after a fresh fetch."""


class ObsUnavailableError(CheckpointError):
    """``--from obs://...`` outside ModelArts (no ``moxing``)."""
