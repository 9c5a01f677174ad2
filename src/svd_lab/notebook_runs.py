"""Execute the course notebooks with papermill and compare what they record with committed baselines.

Layout of one course run (``svd-lab course run``, default ``outputs/course/``)::

    outputs/course/02_latent_diffusion.ipynb            the executed notebook (records in its metadata)
    outputs/course/02_latent_diffusion.records.json     the same records, beside it
    outputs/course/02_latent_diffusion/                 what the notebook wrote (videos, GIFs, figures)

Each notebook runs with the ``svd-lab`` kernel, its working directory set to ``notebooks/`` (so relative paths in
a notebook mean the same thing as when a user opens it in JupyterLab), an execution timeout per cell, progress
bars off, and ``SVD_LAB_RECORD_FILE`` pointing at its records file (see :mod:`svd_lab.record`). Re-running the
course replaces that run's own files; nothing outside the output folder is written.

Regression baselines (``tests/baselines/<notebook>.json`` in a source checkout) hold the records of a CPU run
(tiny/small profiles) with one tolerance per value; :mod:`svd_lab.baselines` compares them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svd_lab.errors import CourseError  # a UserError: the CLI shows it as one line
from svd_lab.kernel import KERNEL_NAME
from svd_lab.record import RECORD_FILE_ENV, read_records

COURSE = (
    "00_setup.ipynb",
    "01_sora_and_dit.ipynb",
    "02_latent_diffusion.ipynb",
    "03_svd_sampling.ipynb",
    "04_gif_display.ipynb",
    "05_finetune.ipynb",
    "06_wan_flow_matching.ipynb",
)
# Profiles that run on a CPU and therefore have committed baselines.
DEFAULT_CELL_TIMEOUT = 600  # seconds per cell: generous for a slow CPU, finite so a dead kernel cannot hang a run
# Environment of the kernel: quiet progress bars, no hub progress spam.
QUIET_ENV = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


def checkout_root() -> Path:
    from svd_lab.paths import source_checkout

    root = source_checkout()
    if root is None or not (root / "notebooks").is_dir():
        raise CourseError(
            "the course notebooks live in a source checkout of svd-lab: git clone the repository "
            "(see pyproject's Repository URL) and run `make run` there"
        )
    return root


#: the course's editions: English in notebooks/, Simplified Chinese in notebooks/zh-CN/ (same code, text translated)
EDITIONS = ("en", "zh-CN")


def notebooks_dir(edition: str = "en") -> Path:
    if edition not in EDITIONS:
        raise CourseError(f"no {edition!r} edition of the course; choose from: {', '.join(EDITIONS)}")
    root = checkout_root() / "notebooks"
    return root if edition == "en" else root / edition


def baselines_dir() -> Path:
    return checkout_root() / "tests" / "baselines"


def course_notebooks(only: list[str] | None = None, edition: str = "en") -> list[Path]:
    """The course's notebooks in order; ``only`` selects by file name, stem or numeric prefix ("02"); ``edition``
    "zh-CN" gives the Simplified Chinese ones."""
    folder = notebooks_dir(edition)
    paths = [folder / name for name in COURSE]
    if only:
        chosen = []
        for key in only:
            match = [p for p in paths if key in (p.name, p.stem) or p.name.startswith(f"{key}_")]
            if not match:
                raise CourseError(f"no notebook {key!r} in the course; choose from: {', '.join(COURSE)}")
            chosen += [p for p in match if p not in chosen]
        paths = [p for p in paths if p in chosen]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise CourseError(f"notebook(s) missing from {folder}: {', '.join(missing)}")
    return paths


def require_kernel(name: str = KERNEL_NAME) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        raise CourseError(f"Jupyter kernel {name!r} is not installed: run `svd-lab kernel install --sys-prefix` "
                          "(or `make kernel`)") from None


@contextlib.contextmanager
def patched_environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the kernel papermill starts (it inherits ours), then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class NotebookRun:
    """Outcome of executing one notebook."""

    notebook: str                      # file name, e.g. "02_latent_diffusion.ipynb"
    status: str                        # "ok" | "failed"
    seconds: float
    output: Path                       # the executed notebook
    artifacts: list[Path] = field(default_factory=list)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None           # "cell 7 (`sample = ...`): ValueError: ..." when failed
    cell_index: int | None = None      # index of the failing cell in the committed notebook (0-based, all cells)

    @property
    def stem(self) -> str:
        return Path(self.notebook).stem

    @property
    def profile(self) -> str | None:
        entry = self.records.get("profile")
        return entry["value"] if entry else None


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.strip()[:60]
    return ""


def _failure(output_path: Path, exc: BaseException) -> tuple[int | None, str]:
    """Locate the failing cell in the executed notebook and describe the error with the committed cell index."""
    import nbformat

    ename = getattr(exc, "ename", None) or type(exc).__name__
    evalue = getattr(exc, "evalue", None) or str(exc).strip().splitlines()[-1:] and str(exc).strip().splitlines()[-1]
    try:
        nb = nbformat.read(output_path, as_version=4)
    except Exception:  # noqa: BLE001 -- the output may be missing or half-written when the kernel died
        return None, f"{ename}: {evalue}"
    index, injected_before = None, 0
    for i, cell in enumerate(nb.cells):
        tags = cell.get("metadata", {}).get("tags", [])
        # papermill adds the injected parameters and red "error" banners: not cells of the committed notebook
        if "injected-parameters" in tags or "papermill-error-cell-tag" in tags:
            injected_before += 1
            continue
        status = cell.get("metadata", {}).get("papermill", {}).get("status")
        if status in ("failed", "running"):
            index = i - injected_before
            where = f"cell {index} (`{_first_line(cell.source)}`)"
            return index, f"{where}: {ename}: {evalue}"
    return index, f"{ename}: {evalue}"


def execute_notebook(
    notebook: Path,
    output_dir: Path,
    parameters: dict[str, Any] | None = None,
    *,
    cell_timeout: int = DEFAULT_CELL_TIMEOUT,
    kernel_name: str = KERNEL_NAME,
    cwd: Path | None = None,
) -> NotebookRun:
    """Execute ``notebook`` into ``output_dir`` with papermill; never raises for a failing cell (see ``status``).

    The notebook receives ``output_dir`` (its own artifacts folder) as a parameter besides ``parameters``.
    """
    import nbformat
    import papermill

    notebook = Path(notebook)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    stem = notebook.stem
    final = output_dir / notebook.name
    artifacts_dir = output_dir / stem
    records_path = output_dir / f"{stem}.records.json"
    running = output_dir / f".{stem}.running.ipynb"
    # This run's files replace the previous run's: stale artifacts would be reported as this run's.
    if artifacts_dir.exists():
        shutil.rmtree(artifacts_dir)
    artifacts_dir.mkdir()
    records_path.unlink(missing_ok=True)
    params = {"output_dir": str(artifacts_dir.resolve())}
    params.update(parameters or {})
    env = dict(QUIET_ENV)
    env[RECORD_FILE_ENV] = str(records_path.resolve())
    start = time.perf_counter()
    status, error, cell_index = "ok", None, None
    with patched_environ(env):
        try:
            papermill.execute_notebook(
                str(notebook), str(running), parameters=params, kernel_name=kernel_name,
                cwd=str(cwd or notebook.parent), progress_bar=False, log_output=False,
                execution_timeout=cell_timeout, start_timeout=120,
                # The kernel's own log is noise here (ipykernel 7 warns at every start that its local TCP sockets
                # are unencrypted, and logs the interrupt it gets at shutdown); errors in cells still come through
                # papermill into the table and the executed notebook.
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
            )
        except Exception as exc:  # noqa: BLE001 -- PapermillExecutionError, CellTimeoutError, DeadKernelError, ...
            status = "failed"
            cell_index, error = _failure(running, exc)
    seconds = time.perf_counter() - start
    records = read_records(records_path)
    if running.is_file():
        nb = nbformat.read(running, as_version=4)
        nb.metadata.setdefault("svd_lab", {})["records"] = records
        nb.metadata["svd_lab"]["status"] = status
        for cell in nb.cells:   # papermill's injected parameters are scaffolding: shown collapsed, like the bootstrap
            if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
                cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
        nbformat.write(nb, running)
        os.replace(running, final)
    artifacts = sorted(p for p in artifacts_dir.rglob("*") if p.is_file())
    return NotebookRun(notebook.name, status, seconds, final, artifacts, records, error, cell_index)


def run_course(
    output_dir: Path | None = None,
    only: list[str] | None = None,
    parameters: dict[str, Any] | None = None,
    *,
    cell_timeout: int = DEFAULT_CELL_TIMEOUT,
    on_result=None,
    edition: str = "en",
) -> list[NotebookRun]:
    """Execute the course (or the notebooks in ``only``) in order; ``on_result(run)`` is called after each."""
    from svd_lab.paths import outputs_dir

    paths = course_notebooks(only, edition)
    require_kernel()
    out = Path(output_dir) if output_dir else outputs_dir() / "course"
    results = []
    for path in paths:
        result = execute_notebook(path, out, parameters, cell_timeout=cell_timeout)
        results.append(result)
        if on_result:
            on_result(result)
    return results


def format_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*header), line.format(*("-" * w for w in widths))]
    out += [line.format(*map(str, r)) for r in rows]
    return "\n".join(s.rstrip() for s in out)


def describe_artifacts(run: NotebookRun, limit: int = 4) -> str:
    if not run.artifacts:
        return "-"
    names = [p.name for p in run.artifacts]
    shown = ", ".join(names[:limit]) + (f", ... (+{len(names) - limit})" if len(names) > limit else "")
    return f"{len(names)}: {shown}"


def course_table(results: list[NotebookRun]) -> str:
    rows = [[r.notebook, r.status if r.status == "ok" else "FAILED", f"{r.seconds:.1f}", describe_artifacts(r)]
            for r in results]
    table = format_table(["notebook", "status", "seconds", "artifacts"], rows)
    failures = [f"{r.notebook}: {r.error}  (executed notebook: {r.output})" for r in results if r.status != "ok"]
    return table + ("\n\n" + "\n".join(failures) if failures else "")
