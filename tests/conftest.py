"""Shared test setup: quiet progress bars, deterministic threads where a test asks for them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """../shared/fixtures, or skip: a fresh user clone does not have it (CI does)."""
    from svd_lab.paths import shared_fixtures as find

    path = find()
    if path is None:
        pytest.skip("../shared/fixtures is absent (reference data beside the checkout; present in CI)")
    return path
