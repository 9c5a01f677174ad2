"""Fixtures of the browser tests: Debian chromium (installed when missing), Playwright, throw-away JupyterLab.

Every test here carries the ``browser`` marker (``make test-browser`` runs ``pytest -m browser``). They skip,
with the reason, where chromium cannot be installed (no apt-get, not root, no network) or Playwright is missing.
The server and the browser are package-scoped: they stop as soon as the last browser test is done, not at the
end of a whole `make test`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from . import labdriver

REPO = labdriver.REPO


@pytest.fixture(scope="session")
def chromium_ready() -> None:
    reason = labdriver.chromium_problem()
    if reason:
        message = f"browser tests need Debian's chromium and Playwright: {reason}"
        if os.environ.get("SVD_LAB_REQUIRE_BROWSER", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(message + " (SVD_LAB_REQUIRE_BROWSER is set: not skipping)", pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="session")
def screenshots_dir() -> Path:
    from svd_lab.paths import outputs_dir

    path = outputs_dir() / "browser"  # outputs/ is git-ignored
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="package")
def browser_workdir():
    path = Path(tempfile.mkdtemp(prefix="svd-lab-browser-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="package")
def playwright_driver(chromium_ready):
    """The one Playwright driver of the session (the sync API allows one per thread); stopped, and checked
    gone, at the end."""
    import psutil
    from playwright.sync_api import sync_playwright

    before = {c.pid for c in psutil.Process().children(recursive=True)}
    playwright = sync_playwright().start()
    try:
        yield playwright
    finally:
        playwright.stop()
        left = [c for c in psutil.Process().children(recursive=True)
                if c.pid not in before and "run-driver" in " ".join(c.cmdline())]
        psutil.wait_procs(left, timeout=10)
        left = [c for c in left if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        for proc in left:
            proc.kill()
        assert not left, f"Playwright driver left behind: {[p.pid for p in left]}"


@pytest.fixture(scope="package")
def browser_context(playwright_driver, browser_workdir):
    """One headless chromium (fresh profile) for the session; closed, and checked gone, at the end."""
    profile = browser_workdir / "chromium-profile"
    context = labdriver.launch_browser(playwright_driver, profile)
    try:
        yield context
    finally:
        context.close()
        left = labdriver.browser_processes(profile)
        for proc in left:
            proc.kill()
        assert not left, f"chromium processes left behind: {[p.pid for p in left]}"


@pytest.fixture(scope="package")
def course_lab(chromium_ready, browser_workdir, screenshots_dir):
    """JupyterLab serving a copy of notebooks/ at the quick settings of tests/course_runs.QUICK (appended to each
    parameters cell, as a user would edit it), with the kernels' outputs in a temporary folder; stopped by PID at the
    end. The browser run checks what a user sees rendered; the default settings' results are the papermill run's."""
    import nbformat

    from course_runs import QUICK

    served = browser_workdir / "notebooks"
    served.mkdir(exist_ok=True)
    for source in sorted((REPO / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(source, as_version=4)
        for cell in nb.cells:
            if "parameters" in cell.metadata.get("tags", []):
                cell.source += "".join(f"\n{k} = {v!r}" for k, v in QUICK.get(source.name, {}).items())
        nbformat.write(nb, served / source.name)
    server = labdriver.LabServer(
        root_dir=served,
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
