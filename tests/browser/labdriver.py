"""Drive JupyterLab in headless Chromium the way a course user does (issue 10).

Two pieces, both usable outside pytest:

- ``LabServer``: a throw-away ``jupyter lab`` on 127.0.0.1 (free port, random token, its own config, data,
  runtime, settings and workspace folders under one temporary folder) that is stopped by its PID -- politely
  through the REST API first, then its whole process group -- and that can list any process it left behind.
- ``NotebookSession``: one notebook opened in a Playwright page: the kernel name shown, Run All through the
  menu, waiting for the kernel to go idle, a report of every cell (model outputs and what the DOM rendered),
  the expectations a cell's source implies (a plot, a video, a GIF, a slider), moving a slider, screenshots.

The browser is Debian's /usr/bin/chromium (``ensure_chromium.sh`` installs it); Playwright never downloads one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# Seconds a notebook's Run All may take. Generous: the course notebooks take up to ~90 s each on a 2-core CPU,
# more while other jobs share it.
RUN_TIMEOUT = float(os.environ.get("SVD_LAB_BROWSER_TIMEOUT", "900"))
ENSURE_CHROMIUM = HERE / "ensure_chromium.sh"
CHROMIUM = Path(os.environ.get("SVD_LAB_CHROMIUM", "/usr/bin/chromium"))
# No GPU, no network chatter, no first-run UI, no sandbox (CI containers run as root).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KERNEL_DISPLAY_NAME = "Python (svd-lab)"
JUPYTER = Path(sys.executable).parent / "jupyter"

# JupyterLab settings of the throw-away server, written into its own user-settings folder:
# no autosave (the notebooks in the repository must stay as committed: outputs never land in them),
# no windowing (every cell stays in the DOM, so what is checked and screenshot is the whole notebook),
# no news or update checks (no pop-up over the notebook, no network).
LAB_USER_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none", "scrollPastEnd": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}
# The news pop-up ("Would you like to get notified about official Jupyter news?") comes from this plugin.
LAB_PAGE_CONFIG = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}


class HarnessError(RuntimeError):
    """The harness itself could not do its job (server did not start, page did not load, ...)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now (the server is told not to try others)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chromium_problem() -> str | None:
    """Why the browser tests cannot run here, or None. Installs chromium (ensure_chromium.sh) when missing."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return ("Playwright for Python is not installed: pip install -c constraints.txt -e '.[dev]' "
                "(no browser download needed: the tests use Debian's chromium)")
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return None
    if not ENSURE_CHROMIUM.is_file():
        return f"{CHROMIUM} is missing and {ENSURE_CHROMIUM} is not there to install it"
    result = subprocess.run(["sh", str(ENSURE_CHROMIUM)], check=False, capture_output=True, text=True)
    if result.returncode == 3:
        return " ".join(line for line in result.stderr.splitlines() if line.startswith("ensure_chromium:"))
    if result.returncode != 0:
        raise HarnessError(f"{ENSURE_CHROMIUM} failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        raise HarnessError(f"{ENSURE_CHROMIUM} succeeded but {CHROMIUM} is still missing")
    return None


# ----------------------------------------------------------------------------------------------------------
# The server


def _parent_death_signal():
    """A pre-exec hook for Linux: the child gets SIGTERM when the test process dies, even by SIGKILL, so a killed
    pytest leaves no server behind (JupyterLab shuts its kernels down on SIGTERM). None elsewhere.

    libc is loaded here, in the parent: the hook itself only makes one system call (no imports, no locks),
    which is what makes a pre-exec hook safe beside threads."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    set_parent_death_signal, sigterm = 1, int(signal.SIGTERM)  # PR_SET_PDEATHSIG

    def hook() -> None:
        prctl(set_parent_death_signal, sigterm)

    return hook


@dataclass
class LabServer:
    """A private JupyterLab server. ``start()``, use ``url()``/``api()``, always ``stop()`` (or use ``with``).

    Everything it writes outside ``root_dir`` goes under ``workdir`` (removed by ``stop()`` when it created it).
    ``env`` adds environment variables for the server and so for its kernels.
    """

    root_dir: Path
    workdir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    startup_timeout: float = 120.0
    port: int = 0
    token: str = ""
    process: subprocess.Popen | None = None
    _own_workdir: bool = False

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- paths
    @property
    def runtime_dir(self) -> Path:
        return self.workdir / "runtime"

    @property
    def log_path(self) -> Path:
        return self.workdir / "jupyterlab.log"

    def _prepare_dirs(self) -> None:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="svd-lab-browser-"))
            self._own_workdir = True
        for name in ("config/labconfig", "data", "runtime", "settings", "workspaces", "checkpoints"):
            (self.workdir / name).mkdir(parents=True, exist_ok=True)
        (self.workdir / "config" / "labconfig" / "page_config.json").write_text(json.dumps(LAB_PAGE_CONFIG))
        for rel, values in LAB_USER_SETTINGS.items():
            path = self.workdir / "settings" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))

    def command(self) -> list[str]:
        args = [
            str(JUPYTER), "lab", "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",          # fail rather than silently serve elsewhere
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            # checkpoints of opened notebooks go here, not into .ipynb_checkpoints/ beside the course
            f"--FileCheckpoints.checkpoint_dir={self.workdir / 'checkpoints'}",
            f"--LabApp.user_settings_dir={self.workdir / 'settings'}",
            f"--LabApp.workspaces_dir={self.workdir / 'workspaces'}",
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: read the notebook model for the checks
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--allow-root")  # CI containers run as root
        return args

    def start(self) -> LabServer:
        self._prepare_dirs()
        self.port = self.port or free_port()
        self.token = self.token or secrets.token_hex(24)
        env = dict(os.environ)
        # Our own config/data/runtime folders; the svd-lab kernel stays visible because Jupyter always searches
        # sys.prefix/share/jupyter (where `svd-lab kernel install --sys-prefix` puts it). A user's JUPYTER_PATH
        # could shadow it with another spec of the same name, so it is dropped.
        env.pop("JUPYTER_PATH", None)
        env.update(
            JUPYTER_CONFIG_DIR=str(self.workdir / "config"),
            JUPYTER_DATA_DIR=str(self.workdir / "data"),
            JUPYTER_RUNTIME_DIR=str(self.runtime_dir),
            JUPYTERLAB_SETTINGS_DIR=str(self.workdir / "settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(self.workdir / "workspaces"),
            IPYTHONDIR=str(self.workdir / "ipython"),
            MPLCONFIGDIR=str(self.workdir / "matplotlib"),
        )
        env.update(self.env)
        self.log_file = open(self.log_path, "w")  # noqa: SIM115 -- the server writes to it until stop()
        # Its own process group: stop() can end the server and anything it started, and nothing else.
        self.process = subprocess.Popen(
            self.command(), cwd=self.root_dir, env=env, stdout=self.log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=_parent_death_signal(),  # noqa: PLW1509 -- one system call, see its docstring
        )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.process.poll() is not None:
                log = self.log_tail()
                self.stop()
                raise HarnessError(f"jupyter lab exited with status {self.process.returncode} on startup:\n{log}")
            try:
                self.api("GET", "/api/status", timeout=2)
                return self
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                log = self.log_tail()
                self.stop()
                raise HarnessError(f"jupyter lab did not answer within {self.startup_timeout:.0f} s:\n{log}")
            time.sleep(0.25)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def saved_files(self) -> list[str]:
        """Paths (relative to root_dir) that JupyterLab saved through this server, from its log."""
        return re.findall(r"Saving file at /?(\S+)", self.log_tail(chars=10**8))

    def url(self, path: str, **query: str) -> str:
        params = "&".join([f"token={self.token}"] + [f"{k}={v}" if v != "" else k for k, v in query.items()])
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}?{params}"

    def api(self, method: str, path: str, timeout: float = 10) -> object:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Shut down every kernel of this server (between notebooks: CPU and memory are scarce)."""
        for kernel in self.api("GET", "/api/kernels") or []:
            try:
                self.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=30)
            except (OSError, urllib.error.URLError):
                pass

    # -- stopping
    def processes(self) -> list:
        """Live processes of this server: the server's group, plus any process whose command line names this
        server's port, token or temporary folder (its kernels run in their own sessions: they name the
        connection file in the runtime folder)."""
        import psutil

        marks = [self.token, f"--ServerApp.port={self.port}", str(self.workdir)] if self.token else []
        found = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                cmdline = " ".join(proc.info["cmdline"] or [])
                in_group = self.process is not None and os.getpgid(proc.info["pid"]) == self.process.pid
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
            except (psutil.Error, ProcessLookupError, PermissionError):
                continue
            if proc.info["pid"] == os.getpid():
                continue
            if in_group or (marks and any(m in cmdline for m in marks)):
                found.append(proc)
        return found

    def stop(self) -> None:
        """Stop the server and its kernels; never raises. Polite first, then SIGTERM, then SIGKILL by PID."""
        import psutil

        if self.process is not None and self.process.poll() is None:
            try:
                self.shutdown_kernels()
                self.api("POST", "/api/shutdown", timeout=10)
                self.process.wait(timeout=20)
            except (OSError, urllib.error.URLError, subprocess.TimeoutExpired, ValueError):
                pass
        if self.process is not None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if self.process.poll() is not None:
                    break
                try:
                    os.killpg(self.process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        # Kernels are started in their own sessions: end the ones that name our runtime folder, by PID.
        leftovers = self.processes()
        for proc in leftovers:
            try:
                proc.terminate()
            except psutil.Error:
                pass
        psutil.wait_procs(leftovers, timeout=10)
        for proc in self.processes():
            try:
                proc.kill()
            except psutil.Error:
                pass
        if getattr(self, "log_file", None) is not None:
            self.log_file.close()
            self.log_file = None

    def remove_workdir(self) -> None:
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------------
# The browser


def launch_browser(playwright, profile_dir: Path, viewport=(1400, 900)):
    """Headless Debian chromium with a fresh profile folder. Returns a persistent BrowserContext."""
    profile_dir.mkdir(parents=True, exist_ok=True)
    return playwright.chromium.launch_persistent_context(
        str(profile_dir),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_FLAGS,
        viewport={"width": viewport[0], "height": viewport[1]},
    )


def browser_processes(profile_dir: Path) -> list:
    """Live chromium processes started with this profile folder (their command line names it)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and str(profile_dir) in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


# What a cell's source promises to show. Course helpers (svd_lab.display) and the usual Jupyter idioms.
EXPECTATION_PATTERNS = {
    # a matplotlib figure: an <img> with a PNG
    "plot": re.compile(r"\bplt\.(show|subplots|figure|imshow|plot)\(|\bframe_grid\(|\.savefig\(|%matplotlib"),
    # an inline player or a comparison: a <video> or a GIF <img>
    "media": re.compile(r"\bshow_video\(|\bcompare\(|\bIPython\.display\.Video\(|\bVideo\(.*embed|<video|\.gif\b"),
    # a slider that moves the frame shown
    "slider": re.compile(r"\bscrubber\(|\bIntSlider\(|\bFloatSlider\(|\binteract(ive)?\("),
}


def expectations(source: str) -> set[str]:
    """The kinds of rendered output a code cell's source implies (see EXPECTATION_PATTERNS)."""
    code = "\n".join(line.split("#", 1)[0] if not line.lstrip().startswith(("'", '"')) else line
                     for line in source.splitlines())
    found = {kind for kind, pattern in EXPECTATION_PATTERNS.items() if pattern.search(code)}
    # a cell that only writes a .gif file (write_gif / save_gif) does not display one
    if "media" in found and not re.search(r"\bshow_video\(|\bcompare\(|Video\(|<video|display\(|Image\(", code):
        found.discard("media")
    return found


# One JavaScript pass over the open notebook: the model (outputs, execution counts) and the DOM (what rendered).
CELL_REPORT_JS = r"""
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const notebook = panel.content;
  const text = (o) => Array.isArray(o) ? o.join('') : (o || '');
  return notebook.widgets.map((cell, index) => {
    const model = cell.model;
    const report = {index, type: model.type, source: model.sharedModel.getSource(), execution_count: null,
                    prompt: '', outputs: [], images: [], videos: [], sliders: 0, widgets: 0,
                    widget_problems: [], tracebacks: []};
    if (model.type !== 'code') return report;
    report.execution_count = model.executionCount;
    const prompt = cell.node.querySelector('.jp-InputPrompt');
    report.prompt = prompt ? prompt.textContent.trim() : '';
    for (let i = 0; i < model.outputs.length; i++) {
      const o = model.outputs.get(i).toJSON();
      const data = o.data || {};
      report.outputs.push({output_type: o.output_type, name: o.name || null, mimes: Object.keys(data),
                           html_videos: (text(data['text/html']).match(/<video\b/g) || []).length,
                           html_images: (text(data['text/html']).match(/<img\b/g) || []).length,
                           text: text(o.text).slice(-2000),
                           ename: o.ename || null, evalue: o.evalue || null});
    }
    const area = cell.node.querySelector('.jp-Cell-outputArea');
    if (!area) return report;
    for (const img of area.querySelectorAll('img')) {
      const r = img.getBoundingClientRect();
      report.images.push({src: img.src.slice(0, 40), complete: img.complete, width: img.naturalWidth,
                          height: img.naturalHeight, shown: r.width > 0 && r.height > 0,
                          in_widget: !!img.closest('.jupyter-widgets')});
    }
    for (const v of area.querySelectorAll('video')) {
      report.videos.push({ready: v.readyState, width: v.videoWidth, height: v.videoHeight,
                          duration: v.duration, error: v.error ? v.error.code : null});
    }
    report.sliders = area.querySelectorAll('.widget-slider').length;
    report.widgets = area.querySelectorAll('.jupyter-widgets').length;
    for (const out of area.querySelectorAll('.jp-OutputArea-output')) {
      const t = out.textContent || '';
      if (/Error displaying widget|Failed to load model class|Loading widget\.\.\./.test(t))
        report.widget_problems.push(t.slice(0, 300));
      if (out.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr' &&
          /Traceback \(most recent call last\)|-{20,}\s*\n\s*\w+(Error|Exception)/.test(t))
        report.tracebacks.push(t.slice(-1500));
    }
    return report;
  });
}
"""

STATE_JS = r"""
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.sessionContext) return {ready: false};
  const ctx = panel.sessionContext;
  const kernel = ctx.session && ctx.session.kernel;
  const prompts = [...panel.content.node.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
    .map(p => p.textContent.trim());
  return {ready: panel.context.isReady, path: panel.context.path, kernel_name: ctx.kernelDisplayName,
          status: kernel ? kernel.status : 'no kernel', busy_cells: prompts.filter(p => p.includes('*')).length,
          run_cells: prompts.filter(p => /\[\d+\]/.test(p)).length, code_cells: prompts.length,
          dialogs: [...document.querySelectorAll('.jp-Dialog')].map(d => d.textContent.slice(0, 300))};
}
"""

# A fingerprint of the pixels an element shows (img or canvas): changes when the shown frame changes.
PIXELS_JS = r"""
(el) => {
  const w = el.naturalWidth || el.width, h = el.naturalHeight || el.height;
  if (!w || !h) return null;
  const c = document.createElement('canvas'); c.width = w; c.height = h;
  const g = c.getContext('2d'); g.drawImage(el, 0, 0);
  const d = g.getImageData(0, 0, w, h).data;
  let hash = 2166136261;
  for (let i = 0; i < d.length; i++) { hash ^= d[i]; hash = Math.imul(hash, 16777619) >>> 0; }
  return `${w}x${h}:${hash}`;
}
"""


@dataclass
class CellProblem:
    cell: int
    message: str

    def __str__(self) -> str:
        return f"cell {self.cell}: {self.message}"


class NotebookSession:
    """One notebook opened in its own page of ``context`` from ``server``."""

    def __init__(self, context, server: LabServer, notebook: str):
        self.context = context
        self.server = server
        self.notebook = notebook
        self.page = context.new_page()
        self.console: list[str] = []
        self.page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        self.page.on("pageerror", lambda exc: self.console.append(f"pageerror: {exc}"))

    def close(self) -> None:
        # closing a broken page must not hide the real failure
        with contextlib.suppress(Exception):
            self.page.close(run_before_unload=False)

    def state(self) -> dict:
        return self.page.evaluate(STATE_JS)

    def open(self, timeout: float = 120) -> dict:
        """Load the notebook (``?reset``: no workspace restored) and wait for its kernel to be idle."""
        self.page.goto(self.server.url(f"lab/tree/{self.notebook}", reset=""), wait_until="domcontentloaded",
                       timeout=timeout * 1000)
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Notebook", timeout=timeout * 1000)
        deadline = time.monotonic() + timeout
        while True:
            state = self.page.evaluate("() => !!window.jupyterapp") and self.state()
            if state and state.get("ready") and state.get("status") == "idle":
                break
            if state and state.get("dialogs"):
                raise HarnessError(f"a dialog opened instead of the notebook: {state['dialogs']}")
            if time.monotonic() > deadline:
                raise HarnessError(f"{self.notebook}: kernel not idle after {timeout:.0f} s: {state}")
            time.sleep(0.5)
        # Hide the file browser: the screenshot is about the notebook.
        self.page.evaluate("() => { const s = window.jupyterapp.shell;"
                           " if (!s.leftCollapsed) s.collapseLeft(); }")
        return state

    def kernel_name_shown(self) -> str:
        """The kernel name as the notebook toolbar shows it (what a user reads)."""
        return self.page.locator(".jp-NotebookPanel-toolbar .jp-Toolbar-kernelName").inner_text().strip()

    def settings_in_effect(self) -> dict:
        """The composite values of the settings this harness relies on, as JupyterLab loaded them."""
        return self.page.evaluate("""async () => {
          const s = window.jupyterapp.serviceManager.settings;
          const doc = await s.fetch('@jupyterlab/docmanager-extension:plugin');
          const nb = await s.fetch('@jupyterlab/notebook-extension:tracker');
          return {autosave: doc.settings ? doc.settings.autosave : JSON.parse(doc.raw).autosave,
                  windowingMode: nb.settings ? nb.settings.windowingMode : JSON.parse(nb.raw).windowingMode};
        }""")

    def run_all(self, timeout: float) -> dict:
        """Run > Run All Cells through the menu bar, then wait until the kernel is idle and no cell is queued."""
        self.page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        deadline = time.monotonic() + timeout
        started = False
        quiet_polls = 0
        while True:
            state = self.state()
            if state["busy_cells"] or state["status"] == "busy":
                started = True
                quiet_polls = 0
            elif started or state["run_cells"]:
                started = True
                quiet_polls += 1
                if quiet_polls >= 3:  # idle on three polls in a row: Run All is over
                    return state
            if state["dialogs"]:
                raise HarnessError(f"{self.notebook}: dialog during Run All: {state['dialogs']}")
            if state["status"] in ("dead", "unknown", "no kernel"):
                raise HarnessError(f"{self.notebook}: kernel {state['status']} during Run All")
            if time.monotonic() > deadline:
                raise HarnessError(f"{self.notebook}: still running after {timeout:.0f} s: {state}")
            time.sleep(1.0)

    def cells(self) -> list[dict]:
        return self.page.evaluate(CELL_REPORT_JS)

    def wait_for_media(self, timeout: float = 30) -> None:
        """Give images and videos time to decode (GIFs and data-URL mp4s load asynchronously)."""
        self.page.wait_for_function(
            """() => [...document.querySelectorAll('.jp-Cell-outputArea img')].every(i => i.complete)
                  && [...document.querySelectorAll('.jp-Cell-outputArea video')]
                       .every(v => v.readyState >= 1 || v.error)""",
            timeout=timeout * 1000,
        )

    def problems(self, cells: list[dict]) -> list[CellProblem]:
        """Everything wrong with the executed notebook: errors, cells not run, outputs that did not render,
        and promised displays (from the cell's source) that are missing."""
        found = []
        for c in cells:
            if c["type"] != "code" or not c["source"].strip():
                continue
            i = c["index"]
            for out in c["outputs"]:
                if out["output_type"] == "error":
                    found.append(CellProblem(i, f"error output {out['ename']}: {out['evalue']}"))
            for tb in c["tracebacks"]:
                found.append(CellProblem(i, f"traceback shown:\n{tb}"))
            if c["execution_count"] is None:
                found.append(CellProblem(i, f"not executed (prompt {c['prompt']!r})"))
                continue
            for problem in c["widget_problems"]:
                found.append(CellProblem(i, f"widget did not render: {problem}"))
            loaded_images = [im for im in c["images"] if im["complete"] and im["width"] > 0 and im["shown"]]
            for im in c["images"]:
                if not (im["complete"] and im["width"] > 0):
                    found.append(CellProblem(i, f"image did not load: {im['src']}..."))
            playable = [v for v in c["videos"] if v["ready"] >= 1 and v["width"] > 0 and v["error"] is None]
            for v in c["videos"]:
                if v not in playable:
                    found.append(CellProblem(i, f"video not playable: {v}"))
            # Every rich output in the model must have rendered, in the form JupyterLab picks for it
            # (a widget view before HTML, HTML before a PNG/JPEG/GIF).
            image_outputs = html_videos = html_images = widget_outputs = 0
            for o in c["outputs"]:
                if "application/vnd.jupyter.widget-view+json" in o["mimes"]:
                    widget_outputs += 1
                elif "text/html" in o["mimes"]:
                    html_videos += o["html_videos"]
                    html_images += o["html_images"]
                elif any(m in ("image/png", "image/jpeg", "image/gif") for m in o["mimes"]):
                    image_outputs += 1
            plain_images = [im for im in loaded_images if not im["in_widget"]]
            if len(plain_images) < image_outputs + html_images:
                found.append(CellProblem(i, f"{image_outputs} image and {html_images} HTML <img> outputs but "
                                            f"{len(plain_images)} images rendered"))
            if len(playable) < html_videos:
                found.append(CellProblem(i, f"{html_videos} <video> in the output but {len(playable)} playable"))
            if widget_outputs and not c["widgets"]:
                found.append(CellProblem(i, f"{widget_outputs} widget outputs but no widget rendered"))
            # What the source promises.
            wants = expectations(c["source"])
            pngs = [im for im in loaded_images if im["src"].startswith("data:image/png")]
            gifs = [im for im in loaded_images if im["src"].startswith("data:image/gif")]
            if "plot" in wants and not pngs:
                found.append(CellProblem(i, "the source draws a figure but no PNG image rendered"))
            if "media" in wants and not (playable or gifs):
                found.append(CellProblem(i, "the source shows a video but no playable <video> or GIF rendered"))
            if "slider" in wants and not c["sliders"]:
                found.append(CellProblem(i, "the source builds a slider but no slider rendered"))
        return found

    # -- sliders
    def slider_cells(self, cells: list[dict]) -> list[int]:
        return [c["index"] for c in cells if c["type"] == "code" and c["sliders"]]

    def frame_fingerprint(self, cell_index: int) -> list:
        """(src, pixel hash) of every image/canvas in the cell's output that is not part of a slider."""
        cell = self.page.locator(".jp-Notebook .jp-Cell").nth(cell_index)
        shown = []
        for el in cell.locator(".jp-Cell-outputArea img, .jp-Cell-outputArea canvas").all():
            if el.evaluate("e => !!e.closest('.widget-slider')"):
                continue
            src = el.evaluate("e => e.tagName === 'IMG' ? e.src : 'canvas'")
            shown.append((src, el.evaluate(PIXELS_JS)))
        return shown

    def move_slider(self, cell_index: int, timeout: float = 60) -> dict:
        """Move the first slider of the cell to its other end with the keyboard (End, or Home if it is at the
        end already), as a user would, and wait until the frame shown changes. Returns before/after."""
        cell = self.page.locator(".jp-Notebook .jp-Cell").nth(cell_index)
        slider = cell.locator(".widget-slider").first
        slider.scroll_into_view_if_needed()
        handle = slider.locator(".noUi-handle").first
        readout = slider.locator(".widget-readout").first
        value_before = readout.inner_text().strip() if readout.count() else None
        before = self.frame_fingerprint(cell_index)
        at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
        handle.focus()
        handle.press("Home" if at_max else "End")
        deadline = time.monotonic() + timeout
        after = before
        while time.monotonic() < deadline:
            after = self.frame_fingerprint(cell_index)
            if after != before and all(fp[1] for fp in after):
                break
            time.sleep(0.5)
        value_after = readout.inner_text().strip() if readout.count() else None
        return {"value_before": value_before, "value_after": value_after, "before": before, "after": after}

    def press_play(self, cell_index: int, timeout: float = 60) -> dict | None:
        """Click the first Play button of the cell (an ipywidgets Play linked to a slider), as a user would, and
        wait until the frame shown changes. None when the cell has no Play widget. Returns before/after."""
        cell = self.page.locator(".jp-Notebook .jp-Cell").nth(cell_index)
        play = cell.locator(".widget-play button").first
        if not play.count():
            return None
        readout = cell.locator(".widget-slider .widget-readout").first
        value_before = readout.inner_text().strip() if readout.count() else None
        before = self.frame_fingerprint(cell_index)
        play.scroll_into_view_if_needed()
        play.click()
        deadline = time.monotonic() + timeout
        after = before
        while time.monotonic() < deadline:
            after = self.frame_fingerprint(cell_index)
            if after != before and all(fp[1] for fp in after):
                break
            time.sleep(0.2)
        # Pause (ipywidgets 8: the first button toggles play/pause; then stop, repeat) and let the last frame
        # arrive, so that a slider test after this one sees only its own change.
        play.click()
        settled = self.frame_fingerprint(cell_index)
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.frame_fingerprint(cell_index)
            if now == settled:
                break
            settled = now
        value_after = readout.inner_text().strip() if readout.count() else None
        return {"value_before": value_before, "value_after": value_after, "before": before, "after": after}

    # -- buttons (the playground of notebook 03)
    def button_cells(self, label: str) -> list[int]:
        """Indices of the cells whose output holds an ipywidgets button labelled ``label``."""
        cells = self.page.locator(".jp-Notebook .jp-Cell")
        return [i for i in range(cells.count())
                if cells.nth(i).locator(".jp-Cell-outputArea .widget-button", has_text=label).count()]

    def press_button(self, cell_index: int, label: str, timeout: float = 180) -> dict:
        """Click the cell's button ``label`` as a user would and wait until a new video (playable) or image (loaded)
        shows in the cell's output. Returns what the cell shows before and after, and its text after."""
        cell = self.page.locator(".jp-Notebook .jp-Cell").nth(cell_index)
        count_js = """(area) => ({
            videos: [...area.querySelectorAll('video')].filter(v => v.readyState >= 1 && v.videoWidth > 0).length,
            images: [...area.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth > 0).length})"""
        area = cell.locator(".jp-Cell-outputArea").first
        before = area.evaluate(count_js)
        button = cell.locator(".jp-Cell-outputArea .widget-button", has_text=label).first
        button.scroll_into_view_if_needed()
        button.click()
        deadline = time.monotonic() + timeout
        after = before
        while time.monotonic() < deadline:
            after = area.evaluate(count_js)
            if after["videos"] > before["videos"] or after["images"] > before["images"]:
                break
            time.sleep(0.5)
        return {"before": before, "after": after, "text": area.inner_text()[-2000:]}

    # -- screenshots
    def screenshot(self, path: Path, max_height: int = 16000) -> Path:
        """The whole notebook in one image: the viewport is stretched to the notebook's height, then restored."""
        path.parent.mkdir(parents=True, exist_ok=True)
        viewport = self.page.viewport_size
        content_height = self.page.evaluate(
            """() => { const p = window.jupyterapp.shell.currentWidget.content.node;
                       const inner = p.querySelector('.jp-WindowedPanel-outer') || p;
                       return inner.scrollHeight; }""")
        chrome = 200  # menu bar, tab bar, toolbar and status bar around the notebook
        height = min(max_height, max(viewport["height"], int(content_height) + chrome))
        try:
            self.page.set_viewport_size({"width": viewport["width"], "height": height})
            self.page.wait_for_timeout(500)  # let the layout settle
            self.page.evaluate("""() => { const p = window.jupyterapp.shell.currentWidget.content.node;
                                         (p.querySelector('.jp-WindowedPanel-outer') || p).scrollTop = 0; }""")
            self.page.wait_for_timeout(200)
            tmp = path.with_name(path.name + ".tmp.png")
            self.page.screenshot(path=str(tmp))
            os.replace(tmp, path)
        finally:
            self.page.set_viewport_size(viewport)
        return path
