"""The browser harness checked on small notebooks written here: it sees what renders, it catches errors and
missing displays, and it leaves no server, kernel or browser process behind."""

from __future__ import annotations

import hashlib
import socket
import struct
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from . import labdriver

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KERNELSPEC = {"name": "svd-lab", "display_name": "Python (svd-lab)", "language": "python"}

# A plot, a GIF, an inline mp4, and a frame scrubber built from plain ipywidgets (not svd_lab.display: the harness
# is tested on its own). Frames differ in colour so moving the slider must change the pixels shown.
DEMO_CELLS = [
    new_markdown_cell("# Harness demo"),
    new_code_cell("import numpy as np\nimport matplotlib.pyplot as plt\n"
                  "fig, ax = plt.subplots(figsize=(3, 2))\nax.plot(np.arange(10) ** 2)\nplt.show()"),
    new_code_cell(
        "import base64, io\nfrom PIL import Image\nfrom IPython.display import HTML\n"
        "frames = [Image.new('RGB', (64, 48), (40 * i, 255 - 40 * i, 90)) for i in range(6)]\n"
        "buf = io.BytesIO()\n"
        "frames[0].save(buf, format='GIF', save_all=True, append_images=frames[1:], duration=100, loop=0)\n"
        "HTML(f'<img src=\"data:image/gif;base64,{base64.b64encode(buf.getvalue()).decode()}\"/>')"),
    new_code_cell(
        "import os, tempfile\nimport imageio\nfrom IPython.display import Video\n"
        "path = os.path.join(tempfile.mkdtemp(), 'clip.mp4')\n"
        "with imageio.get_writer(path, fps=4, codec='libx264', pixelformat='yuv420p', macro_block_size=16) as w:\n"
        "    for i in range(8):\n        w.append_data(np.full((64, 64, 3), 30 * i, np.uint8))\n"
        "Video(path, embed=True, width=128)"),
    new_code_cell(
        "import ipywidgets as widgets\n"
        "def png(i):\n    b = io.BytesIO(); frames[i].save(b, format='PNG'); return b.getvalue()\n"
        "image = widgets.Image(value=png(0), format='png', width=128)\n"
        "slider = widgets.IntSlider(value=0, min=0, max=5, description='frame')\n"
        "slider.observe(lambda change: setattr(image, 'value', png(change['new'])), names='value')\n"
        "play = widgets.Play(value=0, min=0, max=5, interval=1000)\n"
        "widgets.jslink((play, 'value'), (slider, 'value'))\n"
        "widgets.VBox([widgets.HBox([play, slider]), image])"),
    new_code_cell("print('done')"),
]

BROKEN_CELLS = [
    new_code_cell("print('before the error')"),
    new_code_cell("raise ValueError('deliberate failure for the harness test')"),
    new_code_cell("print('never runs')"),
]

# Promises a figure (plt.show) but draws on a non-interactive backend: nothing is shown in the notebook.
SILENT_PLOT_CELLS = [
    new_code_cell("import matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\n"
                  "plt.plot([1, 2, 3])\nplt.show()"),
]


def write_notebook(folder: Path, name: str, cells) -> Path:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = KERNELSPEC
    path = folder / name
    nbformat.write(nb, path)
    return path


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_expectations_read_from_the_source():
    assert labdriver.expectations("display.frame_grid(video)") == {"plot"}
    assert labdriver.expectations("fig, ax = plt.subplots()\nplt.show()") == {"plot"}
    assert labdriver.expectations("display.show_video(video, 'gif')") == {"media"}
    assert labdriver.expectations("display.scrubber(video)") == {"slider"}
    assert labdriver.expectations("video.save_gif(out / 'x.gif')") == set()  # writes a file, shows nothing
    assert labdriver.expectations("# display.scrubber(video) is commented out\nx = 1") == set()


def fake_installer(tmp_path: Path, status: int, message: str) -> Path:
    script = tmp_path / "ensure_chromium.sh"
    script.write_text(f"#!/bin/sh\necho 'apt noise' >&2\necho 'ensure_chromium: {message}' >&2\nexit {status}\n")
    return script


def test_missing_chromium_that_cannot_be_installed_gives_the_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(labdriver, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setattr(labdriver, "ENSURE_CHROMIUM", fake_installer(tmp_path, 3, "not root and no sudo."))
    assert labdriver.chromium_problem() == "ensure_chromium: not root and no sudo."


def test_a_broken_installer_is_an_error_not_a_skip(tmp_path, monkeypatch):
    monkeypatch.setattr(labdriver, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setattr(labdriver, "ENSURE_CHROMIUM", fake_installer(tmp_path, 0, "installed (not really)"))
    with pytest.raises(labdriver.HarnessError, match="still missing"):
        labdriver.chromium_problem()
    monkeypatch.setattr(labdriver, "ENSURE_CHROMIUM", fake_installer(tmp_path, 1, "crashed"))
    with pytest.raises(labdriver.HarnessError, match="exit 1"):
        labdriver.chromium_problem()


def test_harness_runs_a_notebook_and_leaves_nothing_behind(playwright_driver, tmp_path, screenshots_dir):
    import psutil

    children_before = {c.pid for c in psutil.Process().children(recursive=True)}
    root = tmp_path / "notebooks"
    root.mkdir()
    notebook = write_notebook(root, "demo.ipynb", DEMO_CELLS)
    digest = hashlib.sha256(notebook.read_bytes()).hexdigest()
    server = labdriver.LabServer(root_dir=root, workdir=tmp_path / "lab")
    profile = tmp_path / "chromium-profile"
    context = None
    try:
        server.start()
        assert port_open(server.port)
        # the server's command line carries the token and port the leftover check looks for
        assert server.token in " ".join(server.command()) and server.processes()
        context = labdriver.launch_browser(playwright_driver, profile)
        assert labdriver.browser_processes(profile), "chromium not found by its profile folder"
        session = labdriver.NotebookSession(context, server, notebook.name)
        session.open()
        assert session.kernel_name_shown() == "Python (svd-lab)"
        assert session.settings_in_effect() == {"autosave": False, "windowingMode": "none"}
        session.run_all(timeout=300)
        session.wait_for_media()
        cells = session.cells()
        problems = session.problems(cells)
        assert not problems, "\n".join(map(str, problems))
        by_index = {c["index"]: c for c in cells}
        assert any(im["src"].startswith("data:image/png") for im in by_index[1]["images"])   # matplotlib
        assert any(im["src"].startswith("data:image/gif") for im in by_index[2]["images"])   # GIF
        assert by_index[3]["videos"] and by_index[3]["videos"][0]["width"] == 64          # mp4 decoded
        assert session.slider_cells(cells) == [4]
        played = session.press_play(4)
        assert played["value_before"] == "0" and played["value_after"] != "0", played
        assert played["after"] != played["before"], "pressing Play did not change the frame shown"
        moved = session.move_slider(4)  # to the end (End), or back to the start (Home) if Play got there
        assert moved["value_before"] == played["value_after"], moved
        assert moved["value_after"] == ("0" if played["value_after"] == "5" else "5"), moved
        assert moved["after"] != moved["before"], "moving the slider did not change the frame shown"
        assert not session.problems(session.cells())
        shot = session.screenshot(screenshots_dir / "harness-demo.png")
        width, height = png_size(shot)
        assert width == 1400 and height > 900  # the whole notebook, taller than the window
        session.close()
    finally:
        if context is not None:
            context.close()
        server.stop()
    # No autosave, no checkpoint beside the notebook: the file is exactly as written.
    assert hashlib.sha256(notebook.read_bytes()).hexdigest() == digest
    assert server.saved_files() == []
    assert not (root / ".ipynb_checkpoints").exists()
    # Nothing left: no server, kernel or chromium process, and the port is free again.
    assert server.processes() == []
    assert labdriver.browser_processes(profile) == []
    assert not port_open(server.port)
    # (chromium helpers, "--type=...", may come and go under the session's own browser: ours are gone with
    # our browser's main process, checked above by its profile folder)
    new_children = [c for c in psutil.Process().children(recursive=True)
                    if c.pid not in children_before and c.status() != psutil.STATUS_ZOMBIE
                    and "--type=" not in " ".join(c.cmdline())]
    assert new_children == [], f"processes left behind: {[(c.pid, c.cmdline()) for c in new_children]}"


@pytest.fixture(scope="module")
def scratch_lab(chromium_ready, tmp_path_factory):
    root = tmp_path_factory.mktemp("scratch-notebooks")
    write_notebook(root, "broken.ipynb", BROKEN_CELLS)
    write_notebook(root, "silent_plot.ipynb", SILENT_PLOT_CELLS)
    write_notebook(root, "saved.ipynb", [new_code_cell("1 + 1")])
    server = labdriver.LabServer(root_dir=root, workdir=tmp_path_factory.mktemp("scratch-lab"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        assert server.processes() == []


def run_and_report(context, server, name):
    session = labdriver.NotebookSession(context, server, name)
    try:
        session.open()
        session.run_all(timeout=300)
        cells = session.cells()
        return cells, [str(p) for p in session.problems(cells)]
    finally:
        session.close()
        server.shutdown_kernels()


def test_harness_reports_an_error_and_the_cells_it_stopped(scratch_lab, browser_context):
    cells, problems = run_and_report(browser_context, scratch_lab, "broken.ipynb")
    assert cells[0]["execution_count"] is not None
    assert any(p.startswith("cell 1: error output ValueError: deliberate failure") for p in problems), problems
    assert any(p.startswith("cell 1: traceback shown") for p in problems), problems
    assert any(p.startswith("cell 2: not executed") for p in problems), problems
    assert not any(p.startswith("cell 0") for p in problems), problems


def test_harness_reports_a_promised_figure_that_did_not_show(scratch_lab, browser_context):
    _, problems = run_and_report(browser_context, scratch_lab, "silent_plot.ipynb")
    assert problems == ["cell 0: the source draws a figure but no PNG image rendered"]


def test_harness_notices_a_notebook_saved_by_the_browser(scratch_lab, browser_context):
    """The course test asserts JupyterLab never saved a course notebook; that check must be able to fail."""
    assert scratch_lab.saved_files() == []
    session = labdriver.NotebookSession(browser_context, scratch_lab, "saved.ipynb")
    try:
        session.open()
        session.page.keyboard.press("Control+s")
        session.page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty")
    finally:
        session.close()
        scratch_lab.shutdown_kernels()
    assert scratch_lab.saved_files() == ["saved.ipynb"]
