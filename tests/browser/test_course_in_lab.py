"""Every course notebook, run as a user runs it: opened in JupyterLab in headless Chromium, Run All, checked.

What each notebook must show is read from its own cells (labdriver.expectations): a cell that draws a figure
must show a PNG, one that calls show_video/compare must show a playable <video> or a GIF, one that builds a
scrubber must show a slider that changes the frame when moved; and every rich output the kernel sent must have
rendered. A screenshot of each executed notebook goes to outputs/browser/<notebook>.png (with a JSON report).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from . import labdriver
from .labdriver import REPO, RUN_TIMEOUT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def promised(notebook: Path) -> set[str]:
    nb = nbformat.read(notebook, as_version=4)
    return set().union(*(labdriver.expectations(c.source) for c in nb.cells if c.cell_type == "code"))


def test_the_playground_is_in_the_course():
    """The browser test presses Generate where a Playground is built: notebook 03 must build one."""
    nb = nbformat.read(REPO / "notebooks" / "03_svd_sampling.ipynb", as_version=4)
    assert any("Playground(pipe" in c.source for c in nb.cells if c.cell_type == "code")


def test_the_course_exercises_every_kind_of_display():
    """Guards the source-reading rules: if the course stopped matching them, the browser checks would go blind."""
    if not NOTEBOOKS:
        pytest.skip("no notebooks in notebooks/ yet")
    kinds = set().union(*(promised(nb) for nb in NOTEBOOKS))
    assert kinds == {"plot", "media", "slider"}, f"the course promises only {sorted(kinds)}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_runs_in_jupyterlab(notebook: Path, course_lab, browser_context, screenshots_dir):
    session = labdriver.NotebookSession(browser_context, course_lab, notebook.name)
    report: dict = {"notebook": notebook.name}
    shot = screenshots_dir / f"{notebook.stem}.png"
    try:
        session.open()
        report["kernel_shown"] = session.kernel_name_shown()
        assert report["kernel_shown"] == labdriver.KERNEL_DISPLAY_NAME, (
            f"{notebook.name} opens with kernel {report['kernel_shown']!r}; "
            "install it with `svd-lab kernel install --sys-prefix` (make kernel)")
        session.run_all(timeout=RUN_TIMEOUT)
        session.wait_for_media()
        cells = session.cells()
        problems = session.problems(cells)
        # The playground (notebook 03): press Generate once; a video and its measured motion must appear. Its
        # sliders set the next generation's parameters, not a frame, so the slider check below leaves them alone.
        report["generate"] = []
        generate_cells = session.button_cells("Generate")
        for index in generate_cells:
            pressed = session.press_button(index, "Generate")
            report["generate"].append({"cell": index, **pressed})
            if not (pressed["after"]["videos"] > pressed["before"]["videos"]
                    or pressed["after"]["images"] > pressed["before"]["images"]):
                problems.append(labdriver.CellProblem(index, f"pressing Generate showed no video: {pressed}"))
            elif "px per frame" not in pressed["text"]:
                problems.append(labdriver.CellProblem(index, "pressing Generate showed no measured motion"))
        # Move every slider; the frame shown must change, and the callbacks must not fail.
        report["sliders"] = []
        report["play"] = []
        for index in [i for i in session.slider_cells(cells) if i not in generate_cells]:
            played = session.press_play(index)  # a Play widget linked to the slider, if the cell has one
            if played is not None:
                report["play"].append({"cell": index, **played})
                if played["after"] == played["before"]:
                    problems.append(labdriver.CellProblem(index, "pressing Play did not change the frame"))
            moved = session.move_slider(index)
            report["sliders"].append({"cell": index, **moved})
            if moved["after"] == moved["before"]:
                problems.append(labdriver.CellProblem(index, f"moving the slider ({moved['value_before']} -> "
                                                             f"{moved['value_after']}) did not change the frame"))
        if report["sliders"]:
            problems += [p for p in session.problems(session.cells()) if str(p) not in map(str, problems)]
        report["cells"] = [{k: c[k] for k in ("index", "execution_count", "images", "videos", "sliders")}
                           for c in cells if c["type"] == "code"]
        report["problems"] = [str(p) for p in problems]
        assert not problems, f"{notebook.name} in JupyterLab:\n" + "\n".join(report["problems"])
    finally:
        try:
            session.screenshot(shot)
        except Exception as exc:  # noqa: BLE001 -- a failed screenshot must not hide the test's own failure
            report["screenshot_error"] = repr(exc)
        report["browser_console"] = session.console[-50:]
        (screenshots_dir / f"{notebook.stem}.json").write_text(json.dumps(report, indent=1, default=str))
        session.close()
        course_lab.shutdown_kernels()
    assert shot.is_file()
    # Outputs never land in the committed notebook (autosave is off in this server's settings).
    assert notebook.name not in course_lab.saved_files(), f"JupyterLab saved {notebook.name}"
