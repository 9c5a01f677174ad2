"""Where things live: the project root, the checkpoints folder and the outputs folder.

Rules (most specific first):
- ``SVD_LAB_CHECKPOINTS`` / ``SVD_LAB_OUTPUTS`` environment variables, when set;
- inside a source checkout of svd-lab (the layout of this repository), ``<checkout>/checkpoints`` and
  ``<checkout>/outputs`` -- what the course and the seed article expect;
- otherwise ``./checkpoints`` and ``./outputs`` relative to the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path


def source_checkout() -> Path | None:
    """The repository root when svd_lab is imported from a source checkout (editable install), else None."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "src" / "svd_lab").is_dir():
        return root
    return None


def project_root() -> Path:
    return source_checkout() or Path.cwd()


def checkpoints_dir() -> Path:
    env = os.environ.get("SVD_LAB_CHECKPOINTS")
    return Path(env).expanduser() if env else project_root() / "checkpoints"


def shipped_checkpoints_dir() -> Path:
    """``<checkout>/checkpoints``: where the course's own trained weights ship (the small SVD, the mini world
    model). Always this folder, whatever ``SVD_LAB_CHECKPOINTS`` says: a user's own weights folder adds to the
    shipped weights, it does not hide them."""
    return project_root() / "checkpoints"


def outputs_dir() -> Path:
    env = os.environ.get("SVD_LAB_OUTPUTS")
    return Path(env).expanduser() if env else project_root() / "outputs"


def shared_fixtures() -> Path | None:
    """``../shared/fixtures`` beside the checkout (reference data for tests), or None when absent."""
    env = os.environ.get("SVD_LAB_SHARED")
    candidates = [Path(env)] if env else []
    root = source_checkout()
    if root is not None:
        candidates.append(root.parent / "shared")
    for c in candidates:
        if (c / "fixtures").is_dir():
            return c / "fixtures"
    return None
