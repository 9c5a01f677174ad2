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

#: The smallest settings that still prove each notebook, for the runs whose point is not the default result: the
#: solutions run (its exercise checks) and the browser run (its displays). The default run (no parameters) is the one
#: compared with the baselines. 02's quick run also raises the guidance ramp's end by 0.5 (its default is 2.0): the
#: regression harness must see that change (tests/test_regress.py), and 02's exercises do not depend on it, so one
#: execution serves both.
QUICK = {
    "01_sora_and_dit.ipynb": {"live_steps": 20, "num_steps": 8},
    "02_latent_diffusion.ipynb": {"max_guidance": 2.5},
    "03_svd_sampling.ipynb": {"num_steps": 8},
    "04_gif_display.ipynb": {"num_steps": 8},
    "05_finetune.ipynb": {"steps": 16},
    "06_wan_flow_matching.ipynb": {"train_steps": 5, "compare_videos": 8},
}


def solutions_run(notebook: str) -> NotebookRun:
    """The execution with the exercises' solutions filled in, at the notebook's :data:`QUICK` settings."""
    return executed(notebook, {"solutions": True, **QUICK.get(notebook, {})})


def _remove_finished_runs() -> None:
    if not OUTPUT_ROOT.is_dir():
        return
    for folder in OUTPUT_ROOT.iterdir():
        if (folder.is_dir() and folder.name.isdigit() and int(folder.name) != os.getpid()
                and not pid_alive(int(folder.name))):
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
        _log_run(_runs[key], parameters)
    return _runs[key]


def _log_run(run: NotebookRun, parameters: dict | None) -> None:
    """One line per execution in outputs/test-course/<pid>/runs.jsonl: what tools/test_times.py tabulates."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with open(OUTPUT / "runs.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"notebook": run.notebook, "parameters": parameters or {}, "status": run.status,
                            "seconds": round(run.seconds, 1)}) + "\n")


def fail_if_failed(run: NotebookRun) -> None:
    if run.status != "ok":
        pytest.fail(f"{run.notebook} failed at {run.error}\nexecuted notebook with the traceback: {run.output}",
                    pytrace=False)
