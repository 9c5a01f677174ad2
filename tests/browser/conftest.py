"""Fixtures of the browser tests: Debian chromium (installed when missing), Playwright, throw-away JupyterLab.

Every test here carries the ``browser`` marker (``make test-browser`` runs ``pytest -m browser``). They skip,
with the reason, where chromium cannot be installed (no apt-get, not root, no network) or Playwright is missing.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import labdriver
import pytest

REPO = labdriver.REPO


@pytest.fixture(scope="session")
def chromium_ready() -> None:
    reason = labdriver.chromium_problem()
    if reason:
        pytest.skip(f"browser tests need Debian's chromium and Playwright: {reason}")


@pytest.fixture(scope="session")
def screenshots_dir() -> Path:
    from svd_lab.paths import outputs_dir

    path = outputs_dir() / "browser"  # outputs/ is git-ignored
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def browser_workdir():
    path = Path(tempfile.mkdtemp(prefix="svd-lab-browser-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def browser_context(chromium_ready, browser_workdir):
    """One headless chromium (fresh profile) for the session; closed, and checked gone, at the end."""
    from playwright.sync_api import sync_playwright

    profile = browser_workdir / "chromium-profile"
    playwright = sync_playwright().start()
    context = None
    try:
        context = labdriver.launch_browser(playwright, profile)
        yield context
    finally:
        if context is not None:
            context.close()
        playwright.stop()
        left = labdriver.browser_processes(profile)
        for proc in left:
            proc.kill()
        assert not left, f"chromium processes left behind: {[p.pid for p in left]}"


@pytest.fixture(scope="session")
def course_lab(chromium_ready, browser_workdir, screenshots_dir):
    """JupyterLab serving notebooks/ with the kernels' outputs in a temporary folder; stopped by PID at the end."""
    server = labdriver.LabServer(
        root_dir=REPO / "notebooks",
        workdir=browser_workdir / "lab",
        env={"SVD_LAB_OUTPUTS": str(browser_workdir / "outputs")},
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.copyfile(server.log_path, screenshots_dir / "jupyterlab.log")
        left = server.processes()
        assert not left, f"JupyterLab processes left behind: {[(p.pid, p.cmdline()) for p in left]}"
