"""The frame of the project: layout, dependencies declared once, kernel, doctor, CLI."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement

import svd_lab
from conftest import REPO, VENV_BIN
from svd_lab import diagnostics as doctor_mod
from svd_lab.cli import main as cli_main
from svd_lab.kernel import DISPLAY_NAME, KERNEL_NAME, install_kernel, kernel_spec


def test_layout():
    for name in ["notebooks", "environment.yml", "kernels/svd-lab/kernel.json", "src/svd_lab", "checkpoints",
                 "assets", "tests", "benchmarks", "Makefile", "README.md", "pyproject.toml", ".ci/run"]:
        assert (REPO / name).exists(), name
    assert "make test" in (REPO / ".ci/run").read_text()


def _pyproject():
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_environment_yml_agrees_with_pyproject():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert "-e .[dev]" in pip_section, "the conda env must install this package"
    from_env = {Requirement(r).name: str(Requirement(r).specifier) for r in pip_section if not r.startswith("-")}
    declared = {Requirement(r).name: str(Requirement(r).specifier) for r in _pyproject()["project"]["dependencies"]}
    assert from_env == declared, "environment.yml's pip list drifted from pyproject.toml's dependencies"


def test_constraints_pin_only_declared_packages_or_their_known_dependencies():
    declared = {Requirement(r).name.lower() for r in _pyproject()["project"]["dependencies"]}
    declared |= {Requirement(r).name.lower() for extra in _pyproject()["project"]["optional-dependencies"].values()
                 for r in extra}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert "==" in line, f"constraints.txt pins exact versions: {line}"
            assert Requirement(line).name.lower() != "torch", "torch is chosen by the Makefile's TORCH_SPEC"


def test_repo_kernel_spec_is_portable_and_matches_packaged_copy():
    repo_spec = json.loads((REPO / "kernels/svd-lab/kernel.json").read_text())
    assert repo_spec["argv"] == ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    assert repo_spec["display_name"] == DISPLAY_NAME
    packaged = json.loads((REPO / "src/svd_lab/data/kernel.json").read_text())
    assert packaged == repo_spec


def test_kernel_install_prefix_is_idempotent(tmp_path, capsys):
    assert cli_main(["kernel", "install", "--prefix", str(tmp_path)]) == 0
    first = capsys.readouterr().out
    target = tmp_path / "share/jupyter/kernels" / KERNEL_NAME / "kernel.json"
    assert "installed in" in first and str(target.parent) in first
    spec = json.loads(target.read_text())
    assert spec["argv"][0] == sys.executable and spec["display_name"] == DISPLAY_NAME
    mtime = target.stat().st_mtime_ns
    assert cli_main(["kernel", "install", "--prefix", str(tmp_path)]) == 0
    assert "already installed" in capsys.readouterr().out
    assert target.stat().st_mtime_ns == mtime


def test_kernel_install_rejects_two_locations(tmp_path):
    with pytest.raises(ValueError, match="one of"):
        install_kernel(user=True, prefix=str(tmp_path))
    with pytest.raises(SystemExit):
        cli_main(["kernel", "install", "--user", "--sys-prefix"])


def test_kernelspec_list_in_venv_shows_svd_lab():
    out = subprocess.run([str(VENV_BIN / "jupyter"), "kernelspec", "list", "--json"], capture_output=True,
                         text=True, check=True).stdout
    specs = json.loads(out)["kernelspecs"]
    assert KERNEL_NAME in specs, "make setup installs the kernel into the venv (svd-lab kernel install --sys-prefix)"
    assert specs[KERNEL_NAME]["spec"]["display_name"] == DISPLAY_NAME


def test_notebook_runs_in_the_venv_through_the_svd_lab_kernel(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("import sys, svd_lab; print(sys.executable); print(sys.prefix)"))
    NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    executable, prefix = nb.cells[0].outputs[0]["text"].split()
    assert prefix == sys.prefix
    assert Path(executable) == Path(kernel_spec()["argv"][0]) == Path(sys.executable)


def test_doctor_report_on_this_machine(tmp_path):
    report = doctor_mod.run_doctor(checkpoints_dir=tmp_path / "checkpoints")
    names = [c.name for c in report.checks]
    for expected in ["python", "torch", "devices", "disk", "ffmpeg", "diffusers", "transformers", "papermill",
                     "moviepy", "jupyter kernel", "checkpoints"]:
        assert expected in names
    assert report.ok, str(report)
    assert report.advice["profile"].startswith(doctor_mod._cpu_profile())   # what profile="auto" runs here
    assert "<table>" in report._repr_html_() and "svd-lab doctor" in str(report)


def test_doctor_reports_missing_ffmpeg_with_fix(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-such-ffmpeg"))
    assert cli_main(["doctor", "--checkpoints", str(tmp_path)]) == 1
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("ffmpeg"))
    assert "ERROR" in line and "IMAGEIO_FFMPEG_EXE" in line and "fix:" in line


def test_doctor_reports_missing_kernel_with_fix(monkeypatch, capsys, tmp_path):
    from jupyter_client.kernelspec import KernelSpecManager

    monkeypatch.setattr(KernelSpecManager, "find_kernel_specs", lambda self: {})
    assert cli_main(["doctor", "--json", "--checkpoints", str(tmp_path)]) == 1
    report = json.loads(capsys.readouterr().out)
    kernel = next(c for c in report["checks"] if c["name"] == "jupyter kernel")
    assert kernel["status"] == "error" and "svd-lab kernel install" in kernel["fix"]
    assert report["ok"] is False


def test_doctor_cli_exit_zero_when_all_is_there(capsys, tmp_path):
    assert cli_main(["doctor", "--checkpoints", str(tmp_path)]) == 0
    assert "All required checks passed." in capsys.readouterr().out


def test_advice_full_profile_needs_gpu_and_checkpoint():
    gpu = {"cuda": True, "mps": False, "gpus": [{"name": "Fake GPU", "free": 40 * 2**30, "total": 80 * 2**30,
                                                  "bf16": True}]}
    with_ckpt = doctor_mod.advise(gpu, ["svd"])
    assert with_ckpt["profile"] == "full" and with_ckpt["dtype"].startswith("float16")
    assert with_ckpt["cpu_offload"] == "no"
    fallback = doctor_mod._cpu_profile().split(" ")[0]       # small where its weights ship, else tiny
    assert doctor_mod.advise(gpu, [])["profile"].startswith(fallback)
    cpu = {"cuda": False, "mps": False, "gpus": []}
    assert doctor_mod.advise(cpu, ["svd"])["profile"].startswith(fallback)
    assert doctor_mod.advise(cpu, [])["dtype"] == "float32"


def test_memory_plan_shrinks_with_vram():
    from svd_lab.memory import plan_for_free_vram

    big = plan_for_free_vram(80 * 2**30, num_frames=25)
    small = plan_for_free_vram(10 * 2**30, num_frames=25)
    tiny = plan_for_free_vram(4 * 2**30, num_frames=25)
    assert big.decoding_t >= small.decoding_t >= tiny.decoding_t >= 1
    assert not big.cpu_offload and small.cpu_offload
    assert big.decoding_t <= 25


def test_cli_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "doctor" in out and "kernel" in out


def test_assets_are_native_size_with_licences():
    from PIL import Image

    pngs = sorted((REPO / "assets").glob("*.png"))
    assert len(pngs) >= 2
    licences = (REPO / "assets/LICENSES.md").read_text()
    for p in pngs:
        with Image.open(p) as im:
            assert im.size == (1024, 576) and im.mode == "RGB"
        assert f"`{p.name}`" in licences, f"{p.name} has no licence entry"


def test_svd_lab_doctor_function_returns_report():
    report = svd_lab.doctor()
    assert isinstance(report, doctor_mod.DoctorReport)
    importlib.import_module("svd_lab.diagnostics")  # importing the module must not shadow the function

    assert callable(svd_lab.doctor)


def test_doctor_names_an_unusable_checkpoint_and_why(tmp_path):
    """A truncated hand-placed file (generative-models #405) is reported with its reason, and never makes the
    doctor advise the full profile."""
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "svd.safetensors"
    save_file({"model.diffusion_model.w": torch.zeros(1000)}, str(path))
    path.write_bytes(path.read_bytes()[:-100])  # truncated download
    check, found = doctor_mod.check_checkpoints(tmp_path)
    assert check.status == doctor_mod.WARN and "NOT usable: svd" in check.value and check.fix
    gpu = {"cuda": True, "mps": False, "gpus": [{"name": "Fake", "free": 40 * 2**30, "total": 80 * 2**30,
                                                  "bf16": True}]}
    assert doctor_mod.advise(gpu, found)["profile"].startswith(doctor_mod._cpu_profile())


def test_doctor_download_sources_name_mirror_modelscope_and_obs_when_the_hub_is_unreachable(monkeypatch):
    import http.server
    import threading

    sys.path.insert(0, str(Path(__file__).parent))
    from hubserver import closed_port_endpoint

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    dead = doctor_mod.check_sources(closed_port_endpoint(), closed_port_endpoint())
    assert dead.status == "warn" and "NOT reachable" in dead.value and "not reachable either" in dead.value
    assert "HF_ENDPOINT=https://hf-mirror.com" in dead.fix and "svd-lab download svd_xt --source modelscope" in dead.fix
    assert "--from obs://" in dead.fix

    class Answer404(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer404)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        alive = f"http://127.0.0.1:{server.server_address[1]}"
        assert doctor_mod.check_sources(alive, closed_port_endpoint()).status == "ok"  # any answer: reachable
        only_ms = doctor_mod.check_sources(closed_port_endpoint(), alive)
        assert only_ms.status == "warn" and f"ModelScope {alive} reachable" in only_ms.value
    finally:
        server.shutdown()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert doctor_mod.check_sources().status == "info"


def test_doctor_says_an_ascend_npu_is_not_supported(monkeypatch, tmp_path):
    monkeypatch.setenv("ASCEND_HOME_PATH", str(tmp_path))
    check = doctor_mod.check_ascend()
    assert check.status == "warn" and "not supported" in check.value and "CUDA GPU" in check.value
    assert "GPU flavour" in check.fix
    report = doctor_mod.run_doctor(checkpoints_dir=tmp_path / "checkpoints", check_network=False)
    assert "ascend npu" in [c.name for c in report.checks] and report.ok  # the CPU profiles still run
    monkeypatch.setenv("ASCEND_HOME_PATH", str(tmp_path / "absent"))
    if not Path("/usr/local/Ascend").is_dir():
        assert doctor_mod.check_ascend() is None
