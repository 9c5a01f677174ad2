"""``svd-lab doctor``: what this machine has, what is missing, and which profile will run.

The report is structured (a list of :class:`Check`), renders as an HTML table in Jupyter and as a text table
in a terminal, and ends with advice: the profile (``full`` needs a CUDA GPU *and* a checkpoint), the dtype, and a
VAE decoding chunk (``decoding_t``) that fits the free VRAM. ``required`` checks that fail make ``ok`` false and
the command exit non-zero; each failing line says how to fix it.
"""

from __future__ import annotations

import html
import platform
import shutil
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from svd_lab.messages import t

OK, WARN, ERROR, INFO = "ok", "warn", "error", "info"
MIN_PYTHON = (3, 10)

# Packages the course imports, with the reason a user would care.
LIBRARIES = {
    "diffusers": "SVD networks",
    "transformers": "CLIP image encoder",
    "huggingface-hub": "checkpoint downloads",
    "safetensors": "weight files",
    "moviepy": "mp4 -> GIF (2.x API)",
    "papermill": "running the notebooks as tests",
    "ipywidgets": "frame scrubber",
}


@dataclass
class Check:
    name: str
    value: str
    status: str = OK  # ok | warn | error | info
    fix: str = ""
    required: bool = False


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)
    advice: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(c.status == ERROR for c in self.checks)

    @property
    def problems(self) -> list[Check]:
        return [c for c in self.checks if c.status == ERROR]

    def __getitem__(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "checks": [c.__dict__ for c in self.checks],
            "advice": dict(self.advice),
        }

    def __str__(self) -> str:
        rows = [(c.name, c.status.upper(), c.value + (t("doctor.fix_arrow", fix=c.fix) if c.fix else ""))
                for c in self.checks]
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows)
        lines = [t("doctor.title"), "=" * 14]
        lines += [f"{a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows]
        lines += ["", t("doctor.advice")]
        wa = max((len(k) for k in self.advice), default=0)
        lines += [f"  {k:<{wa}}  {v}" for k, v in self.advice.items()]
        lines.append("")
        lines.append(t("doctor.all_ok") if self.ok else t("doctor.failed", count=len(self.problems)))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colour = {OK: "#2e7d32", WARN: "#ef6c00", ERROR: "#c62828", INFO: "#555"}
        header = (f"<table><thead><tr><th style='text-align:left'>{t('doctor.check')}</th>"
                  f"<th>{t('doctor.status')}</th><th style='text-align:left'>{t('doctor.value')}</th>"
                  f"<th style='text-align:left'>{t('doctor.fix')}</th></tr></thead><tbody>")
        out = [header]
        for c in self.checks:
            out.append(
                f"<tr><td style='text-align:left'>{html.escape(c.name)}</td>"
                f"<td style='color:{colour.get(c.status, '#000')}'><b>{c.status}</b></td>"
                f"<td style='text-align:left'>{html.escape(c.value)}</td>"
                f"<td style='text-align:left'>{html.escape(c.fix)}</td></tr>"
            )
        out.append(f"</tbody></table><p><b>{t('doctor.advice')}</b></p><ul>")
        out += [f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in self.advice.items()]
        out.append("</ul>")
        return "".join(out)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def check_python() -> Check:
    v = sys.version_info
    value = f"{platform.python_version()} ({sys.executable})"
    if (v.major, v.minor) < MIN_PYTHON:
        return Check("python", value, ERROR, t("fix.python", version=f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]}"),
                     required=True)
    return Check("python", value, required=True)


def check_torch() -> tuple[Check, dict]:
    """torch version and build; returns the check and the device facts used for advice."""
    facts = {"cuda": False, "mps": False, "gpus": []}
    try:
        import torch
    except ImportError:
        return Check("torch", "not installed", ERROR, t("fix.torch"), required=True), facts
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only build"
    facts["cuda"] = bool(torch.cuda.is_available())
    facts["mps"] = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if facts["cuda"]:
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            facts["gpus"].append({"name": torch.cuda.get_device_name(i), "free": free, "total": total,
                                  "bf16": _native_cuda_bf16()})
    return Check("torch", f"{torch.__version__} ({build})", required=True), facts


def _native_cuda_bf16() -> bool:
    """bf16 in hardware (Ampere and newer); torch's default answer also counts the emulation V100 and T4 get."""
    import torch

    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # torch < 2.3 has no including_emulation and counts native support only
        return bool(torch.cuda.is_bf16_supported())


def check_devices(facts: dict) -> Check:
    if facts["gpus"]:
        desc = "; ".join(f"cuda:{i} {g['name']} free {_gib(g['free'])} / {_gib(g['total'])}"
                         for i, g in enumerate(facts["gpus"]))
        return Check("devices", desc)
    if facts["mps"]:
        return Check("devices", "Apple MPS (unified memory)", INFO)
    return Check("devices", f"CPU only ({_cpu_count()} cores): the tiny and small profiles run; real SVD would take "
                 "hours", INFO, t("fix.devices"))


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def check_ascend() -> Check | None:
    """An Ascend NPU (Huawei's 昇腾: torch_npu, or the CANN toolkit in /usr/local/Ascend): not supported; None when
    absent. ModelArts offers Ascend flavours beside the GPU ones, and the course looks like it runs there."""
    import importlib.util
    import os

    found = []
    if importlib.util.find_spec("torch_npu") is not None:
        found.append("torch_npu")
    home = os.environ.get("ASCEND_HOME_PATH") or os.environ.get("ASCEND_TOOLKIT_HOME") or "/usr/local/Ascend"
    if Path(home).is_dir():
        found.append(home)
    if not found:
        return None
    return Check("ascend npu", f"found ({', '.join(found)}): not supported. Full-size SVD needs a CUDA GPU; the "
                 "CPU profiles (tiny, small) run here", WARN, t("fix.ascend"))


# Where the checkpoints come from, probed by the doctor with a short timeout (seconds each, in parallel).
REACH_TIMEOUT = 3.0


def _reachable(url: str, timeout: float = REACH_TIMEOUT) -> str | None:
    """None when an HTTP server answers at ``url`` (any status: it is there), else the reason it does not."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # an answer, even 401/404, means the host is reachable
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{type(reason).__name__}: {reason}"[:120]


def check_sources(hub_endpoint: str | None = None, modelscope_endpoint: str | None = None) -> Check:
    """Whether the Hugging Face hub (or HF_ENDPOINT's mirror) answers, and when it does not, ModelScope too and
    the options that work without it (mirror, ModelScope, OBS)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from svd_lab.checkpoints.registry import HF_MIRROR, MODELSCOPE_REPOS

    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
        return Check("download sources", "not checked: offline mode (HF_HUB_OFFLINE=1)", INFO)
    hub = (hub_endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
    ms = (modelscope_endpoint or os.environ.get("MODELSCOPE_ENDPOINT") or "https://modelscope.cn").rstrip("/")
    with ThreadPoolExecutor(2) as pool:
        hub_problem, ms_problem = pool.map(_reachable, (f"{hub}/api/models", f"{ms}/api/v1/models"))
    if hub_problem is None:
        return Check("download sources", f"{hub} reachable")
    ms_state = "reachable" if ms_problem is None else f"not reachable either ({ms_problem})"
    names = ", ".join(MODELSCOPE_REPOS)
    return Check("download sources", f"{hub} NOT reachable ({hub_problem}); ModelScope {ms} {ms_state}", WARN,
                 t("fix.sources", mirror=HF_MIRROR, names=names))


def check_disk(checkpoints_dir: Path) -> Check:
    probe = checkpoints_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    value = f"{_gib(usage.free)} free at {checkpoints_dir}"
    # One diffusers fp16 checkpoint is ~4.5 GB, an sgm single file ~9.6 GB.
    if usage.free < 5 * 10**9:
        return Check("disk", value, WARN, t("fix.disk"))
    return Check("disk", value)


def check_ffmpeg() -> Check:
    """ffmpeg as moviepy and imageio find it: IMAGEIO_FFMPEG_EXE if set, else the binary bundled in imageio-ffmpeg."""
    import os

    fix = t("fix.ffmpeg")
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()  # returns IMAGEIO_FFMPEG_EXE unchecked when that is set
    except (ImportError, RuntimeError, OSError) as exc:  # not installed, or "no ffmpeg found" (RuntimeError)
        return Check("ffmpeg", f"not found ({type(exc).__name__}: {exc})", ERROR, fix, required=True)
    resolved = shutil.which(exe) or (exe if os.path.isfile(exe) and os.access(exe, os.X_OK) else None)
    if resolved is None:
        origin = "IMAGEIO_FFMPEG_EXE" if os.environ.get("IMAGEIO_FFMPEG_EXE") else "imageio-ffmpeg"
        return Check("ffmpeg", f"{exe} (from {origin}) does not exist or is not executable", ERROR, fix,
                     required=True)
    return Check("ffmpeg", resolved, required=True)


def check_libraries() -> list[Check]:
    checks = []
    for dist, why in LIBRARIES.items():
        v = _version(dist)
        if v is None:
            checks.append(Check(dist, f"missing ({why})", ERROR, t("fix.library", dist=dist), required=True))
        elif dist == "moviepy" and int(v.split(".")[0]) < 2:
            checks.append(Check(dist, f"{v}: the course uses the moviepy 2.x API", ERROR, t("fix.moviepy"),
                                required=True))
        else:
            checks.append(Check(dist, v, required=True))
    return checks


def check_kernel() -> Check:
    from svd_lab.kernel import DISPLAY_NAME, installed_kernel

    path = installed_kernel()
    if path is None:
        return Check("jupyter kernel", f"'{DISPLAY_NAME}' not installed", ERROR, t("fix.kernel"), required=True)
    return Check("jupyter kernel", f"{DISPLAY_NAME} at {path}", required=True)


def check_checkpoints(checkpoints_dir: Path) -> tuple[Check, list]:
    """Checkpoints found locally (through the registry), usable ones and, with their reason, unusable ones."""
    from svd_lab.checkpoints import present_checkpoints

    found = present_checkpoints(checkpoints_dir)
    usable = [c for c in found if c.usable]
    broken = [c for c in found if not c.usable]
    if not found:
        return Check("checkpoints", f"none in {checkpoints_dir}", INFO, t("fix.checkpoints")), found
    value = ", ".join(f"{c.name} ({c.format})" for c in usable) or "no usable checkpoint"
    value += f" in {checkpoints_dir}"
    if broken:
        reasons = "; ".join(f"{c.name}: {c.reason}" for c in broken)
        return Check("checkpoints", value + f"; NOT usable: {', '.join(c.name for c in broken)}", WARN,
                     reasons), found
    return Check("checkpoints", value), found


def advise(facts: dict, checkpoints: list) -> dict[str, str]:
    """Profile, dtype, device and decoding chunk the pipeline will choose on this machine."""
    from svd_lab.memory import plan_for_free_vram

    advice = {}
    fallback = _cpu_profile()
    # Only a usable SVD checkpoint makes the full profile possible (the mini world model's weights do not count).
    has_ckpt = any(getattr(c, "usable", True) and getattr(c, "format", "") not in ("mini", "small")
                   for c in checkpoints)   # the course's own shipped models are not a real SVD checkpoint
    if facts["cuda"]:
        gpu = facts["gpus"][0]
        advice["device"] = f"cuda ({gpu['name']})"
        advice["dtype"] = "float16 (bf16 also works on this GPU)" if gpu["bf16"] else "float16"
        plan = plan_for_free_vram(gpu["free"], num_frames=25)
        advice["decoding_t"] = f"{plan.decoding_t} frames per VAE decode ({plan.reason})"
        advice["cpu_offload"] = "yes" if plan.cpu_offload else "no"
        advice["profile"] = "full" if has_ckpt else f"{fallback} (download a checkpoint for full: svd-lab download svd)"
    else:
        advice["device"] = "mps" if facts["mps"] else "cpu"
        advice["dtype"] = "float32"
        advice["decoding_t"] = f"all frames at once ({fallback.split(' ')[0]} profile)"
        advice["profile"] = (f"{fallback} (full-size SVD needs a CUDA GPU; on this CPU it would take hours)"
                             if not has_ckpt else f"{fallback} by default; --profile full --yes would take hours here")
    return advice


def _cpu_profile() -> str:
    """What ``profile="auto"`` runs without a usable checkpoint (as :mod:`svd_lab.svd.profiles` decides)."""
    from svd_lab.small.model import is_present

    return "small (the small SVD trained by svd-lab)" if is_present() else "tiny (random weights)"


def run_doctor(checkpoints_dir: Path | str | None = None, check_network: bool = True) -> DoctorReport:
    """The report; ``check_network=False`` skips probing the download sources (a few seconds when offline)."""
    from svd_lab.paths import checkpoints_dir as default_checkpoints

    ckpt_dir = Path(checkpoints_dir) if checkpoints_dir else default_checkpoints()
    report = DoctorReport()
    report.checks.append(check_python())
    torch_check, facts = check_torch()
    report.checks.append(torch_check)
    report.checks.append(check_devices(facts))
    ascend = check_ascend()
    if ascend is not None:
        report.checks.append(ascend)
    report.checks.append(check_disk(ckpt_dir))
    report.checks.append(check_ffmpeg())
    report.checks += check_libraries()
    report.checks.append(check_kernel())
    ckpt_check, found = check_checkpoints(ckpt_dir)
    report.checks.append(ckpt_check)
    if check_network:
        report.checks.append(check_sources())
    if torch_check.status != ERROR:
        report.advice = advise(facts, found)
    return report
