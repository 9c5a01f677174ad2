"""Execute each course notebook at most once per pytest process; shared by test_notebooks.py and test_regress.py.

The executions are memoised here (not in a fixture: a fixture imported into two test modules is two fixtures),
so the regression comparison reuses the very executions whose success test_notebooks.py checks. Executed
notebooks, their records and the files they wrote go to outputs/test-course/<pid>/ (ignored by git) for inspection;
one folder per pytest process, so two runs at once (a developer and CI, say) do not trample each other, and the
folders of finished processes are removed when a new run starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from svd_lab.notebook_runs import COURSE, KERNEL_NAME, NotebookRun, execute_notebook
from svd_lab.processes import pid_alive

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
OUTPUT_ROOT = REPO / "outputs" / "test-course"
OUTPUT = OUTPUT_ROOT / str(os.getpid())
# Generous per-cell limit (each notebook takes well under 90 s here); finite, so a dead kernel cannot hang pytest.
CELL_TIMEOUT = 300

_runs: dict[tuple[str, str], NotebookRun] = {}


def _remove_finished_runs() -> None:
    if not OUTPUT_ROOT.is_dir():
        return
    for folder in OUTPUT_ROOT.iterdir():
        if folder.is_dir() and folder.name.isdigit() and int(folder.name) != os.getpid() and not pid_alive(int(folder.name)):
            shutil.rmtree(folder, ignore_errors=True)


def check_kernel() -> None:
    """Fail clearly when the svd-lab kernel is missing or runs another Python than the tests."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        pytest.fail(f"Jupyter kernel {KERNEL_NAME!r} is not installed: run `svd-lab kernel install --sys-prefix` "
                    "(or make kernel)", pytrace=False)
    kernel_python = Path(spec.argv[0])
    if kernel_python.name != "python" and kernel_python.resolve() != Path(sys.executable).resolve():
        pytest.fail(f"kernel {KERNEL_NAME!r} runs {kernel_python}, the tests run {sys.executable}: reinstall it "
                    "from this environment with `svd-lab kernel install --sys-prefix`", pytrace=False)


def executed(notebook: str, parameters: dict | None = None) -> NotebookRun:
    """The execution of ``notebook`` (a file name in COURSE) with ``parameters``, run on first request only."""
    assert notebook in COURSE, notebook
    key = (notebook, json.dumps(parameters or {}, sort_keys=True))
    if key not in _runs:
        if not _runs:
            _remove_finished_runs()
        check_kernel()
        folder = OUTPUT if not parameters else OUTPUT / ("params-" + hashlib.sha1(key[1].encode()).hexdigest()[:10])
        _runs[key] = execute_notebook(NOTEBOOKS / notebook, folder, parameters, cell_timeout=CELL_TIMEOUT)
    return _runs[key]


def fail_if_failed(run: NotebookRun) -> None:
    if run.status != "ok":
        pytest.fail(f"{run.notebook} failed at {run.error}\nexecuted notebook with the traceback: {run.output}",
                    pytrace=False)
