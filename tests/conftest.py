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


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's models on one CPU thread, then restore the count.

    Tiny networks: thread hand-offs cost more than the arithmetic (x30 slower with 2 threads on a busy CPU), and
    bitwise comparisons with reference outputs need a fixed thread count (1 vs 2 threads differ by ~5e-6).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def sgm_tiny_dir(shared_fixtures) -> Path:
    """The tiny sgm model and its reference outputs (../shared/fixtures/sgm/tiny)."""
    return shared_fixtures / "sgm" / "tiny"


@pytest.fixture(scope="module")
def sgm_reference(sgm_tiny_dir) -> dict:
    """sgm's reference tensors, cloned out of the file (aligned storage picks the same SIMD paths)."""
    from safetensors.torch import load_file

    return {k: v.clone() for k, v in load_file(sgm_tiny_dir / "reference.safetensors").items()}


def max_abs_diff(a, b) -> float:
    """max |a - b| in float32, after checking the shapes agree."""
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.float() - b.float()).abs().max().item()


@pytest.fixture
def ckpt_dir(tmp_path) -> Path:
    """An empty checkpoints folder of the test's own (the download tests fill it)."""
    d = tmp_path / "checkpoints"
    d.mkdir()
    return d
