"""Checkpoints: the registry of known SVD releases, what is present locally, and downloads that either succeed
completely (every file verified) or say exactly what to do.

Quick tour::

    from svd_lab.checkpoints import REGISTRY, present_checkpoints, find_checkpoint, download
    present_checkpoints()                 # what is in checkpoints/ (usable or not, and why)
    find_checkpoint("svd")                # the usable checkpoint for a version, or None
    download("svd")                       # diffusers layout, fp16 weights (~4.5 GB) into checkpoints/svd/

The download functions import huggingface_hub on first use, so listing local checkpoints stays fast.
"""

from __future__ import annotations

from svd_lab.checkpoints.errors import (
    CheckpointError,
    CorruptDownloadError,
    DiskSpaceError,
    HubAccessError,
    HubNetworkError,
    HubNotFoundError,
    ObsUnavailableError,
    OfflineError,
    UnusableCheckpointError,
)
from svd_lab.checkpoints.local import (
    LocalCheckpoint,
    find_checkpoint,
    inspect_path,
    present_checkpoints,
    require_usable,
)
from svd_lab.checkpoints.registry import (
    DIFFUSERS,
    FORMATS,
    HF_MIRROR,
    MINI,
    REGISTRY,
    SGM,
    CheckpointSpec,
    get_spec,
)

# Imported on first use (they import huggingface_hub): name -> the module that defines it.
_LAZY = {
    "download": "hub",
    "plan_download": "hub",
    "DownloadPlan": "hub",
    "DownloadResult": "hub",
    "verify_checkpoint": "hub",
    "copy_from_obs": "obs",
}

__all__ = [
    "DIFFUSERS",
    "FORMATS",
    "HF_MIRROR",
    "MINI",
    "REGISTRY",
    "SGM",
    "CheckpointError",
    "CheckpointSpec",
    "CorruptDownloadError",
    "DiskSpaceError",
    "DownloadPlan",
    "DownloadResult",
    "HubAccessError",
    "HubNetworkError",
    "HubNotFoundError",
    "LocalCheckpoint",
    "ObsUnavailableError",
    "OfflineError",
    "UnusableCheckpointError",
    "copy_from_obs",
    "download",
    "find_checkpoint",
    "get_spec",
    "inspect_path",
    "plan_download",
    "present_checkpoints",
    "require_usable",
    "verify_checkpoint",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"svd_lab.checkpoints.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'svd_lab.checkpoints' has no attribute {name!r}")
