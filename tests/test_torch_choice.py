"""`make setup`'s torch: a local wheel first, else the CUDA build the driver supports, else the CPU build -- checked
with a fake ``nvidia-smi`` on PATH, and with pip really installing from a loopback index (tools/torch_choice.py)."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "torch_choice.py"
SPEC = "torch==2.13.0"


def _choose(tmp_path: Path, *, cuda: str | None = None, capability: str = "7.5", wheels: list[str] = (),
            **env) -> subprocess.CompletedProcess:
    """Run the script as `make setup` does, with pip's configuration off and only the given find-links folder."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    smi = bin_dir / "nvidia-smi"
    if cuda is not None:
        smi.write_text(f"#!/bin/sh\ncase \"$1\" in --query-gpu=compute_cap) echo {capability};;\n"
                       "*) echo '| NVIDIA-SMI 570.86.15   Driver Version: 570.86.15   CUDA Version: "
                       f"{cuda}     |';;\nesac\n")
        smi.chmod(0o755)
    elif smi.exists():
        smi.unlink()
    links = tmp_path / "wheels"
    links.mkdir(exist_ok=True)
    for name in wheels:
        (links / name).write_bytes(b"")
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "TORCH_CPU_INDEX"},
                   "PATH": f"{bin_dir}:/usr/bin:/bin", "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": str(links),
                   **env}
    return subprocess.run([sys.executable, str(SCRIPT), SPEC], capture_output=True, text=True, env=environment,
                          timeout=120, check=False)


def _this_wheel(version: str = "2.13.0") -> str:
    import platform

    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    return f"torch-{version}+cpu-{tag}-{tag}-manylinux_2_28_{platform.machine()}.whl"


def test_no_gpu_and_no_local_wheel_is_the_cpu_index(tmp_path):
    run = _choose(tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "--index-url https://download.pytorch.org/whl/cpu"
    assert "CPU build" in run.stderr and "MB" in run.stderr
    mirror = _choose(tmp_path, TORCH_CPU_INDEX="https://mirror.example/whl/cpu")
    assert mirror.stdout.strip() == "--index-url https://mirror.example/whl/cpu"


@pytest.mark.parametrize(("driver", "build"), [("12.8", "cu126"), ("12.6", "cu126"), ("13.0", "cu130"),
                                               ("13.1", "cu130")])
def test_a_gpu_gets_the_newest_cuda_build_its_driver_supports(tmp_path, driver, build):
    run = _choose(tmp_path, cuda=driver)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"--index-url https://download.pytorch.org/whl/{build}"
    assert f"CUDA {driver}" in run.stderr and "for this GPU" in run.stderr


def test_a_p100_or_v100_gets_cu126_even_on_a_cuda_13_driver(tmp_path):
    run = _choose(tmp_path, cuda="13.0", capability="7.0")
    assert run.stdout.strip() == "--index-url https://download.pytorch.org/whl/cu126", run.stderr
    assert "compute capability 7.0" in run.stderr


def test_a_driver_older_than_every_build_is_a_clear_error(tmp_path):
    run = _choose(tmp_path, cuda="11.8")
    assert run.returncode != 0 and run.stdout == ""
    assert "CUDA 11.8" in run.stderr and "Update the driver" in run.stderr and "TORCH_PIP_ARGS" in run.stderr


def test_a_matching_local_wheel_wins_over_gpu_and_index(tmp_path):
    run = _choose(tmp_path, cuda="12.8", wheels=[_this_wheel()])
    assert run.returncode == 0 and run.stdout.strip() == "", run.stderr
    assert "local wheel" in run.stderr
    other = tmp_path / "other"
    other.mkdir()
    # another torch version, or another Python's wheel, is not taken
    run = _choose(other, wheels=[_this_wheel("2.12.0"), "torch-2.13.0+cpu-cp37-cp37m-manylinux_2_28_x86_64.whl"])
    assert run.stdout.strip() == "--index-url https://download.pytorch.org/whl/cpu"


def _fake_torch_wheel(folder: Path) -> Path:
    """A minimal valid wheel named torch 2.13.0+cpu (pure Python), for pip to fetch from the loopback index."""
    wheel = folder / "torch-2.13.0+cpu-py3-none-any.whl"
    info = "torch-2.13.0+cpu.dist-info"
    files = {"torch/__init__.py": "__version__ = '2.13.0+cpu'\n",
             f"{info}/METADATA": "Metadata-Version: 2.1\nName: torch\nVersion: 2.13.0+cpu\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{name},,\n" for name in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
        z.writestr(f"{info}/RECORD", record)
    return wheel


def test_pip_installs_from_the_chosen_cpu_index_on_loopback(tmp_path):
    """The arguments are real pip arguments: pip fetches torch from the (loopback) CPU index they name."""
    index = tmp_path / "index"
    (index / "torch").mkdir(parents=True)
    wheel = _fake_torch_wheel(index / "torch")
    (index / "torch" / "index.html").write_text(f'<html><body><a href="{wheel.name}">{wheel.name}</a></body></html>')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(index))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    requests = []
    original = handler.func.log_message

    def log(self, fmt, *args):
        requests.append(self.path)
        return original(self, fmt, *args)

    handler.func.log_message = log
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        run = _choose(tmp_path, TORCH_CPU_INDEX=url)
        args = run.stdout.split()
        assert args == ["--index-url", url], run.stderr
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull
        download = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
                                   "--disable-pip-version-check", "-d", str(tmp_path / "got"), *args, SPEC],
                                  capture_output=True, text=True, env=env, timeout=120, check=False)
    finally:
        handler.func.log_message = original
        server.shutdown()
    assert download.returncode == 0, download.stdout + download.stderr
    assert (tmp_path / "got" / wheel.name).is_file()
    assert any(path.startswith("/torch") for path in requests)


def test_the_makefile_asks_it_only_when_nothing_was_given():
    text = (ROOT / "Makefile").read_text()
    assert "tools/torch_choice.py '$(TORCH_SPEC)'" in text
    assert '[ "$(origin TORCH_SPEC)" = file ] && [ -z \'$(TORCH_PIP_ARGS)\' ]' in text
    dry = subprocess.run(["make", "-n", "-W", "pyproject.toml", "setup", "TORCH_SPEC=torch==2.13.0",
                          "TORCH_PIP_ARGS=--index-url https://x/cu126", "VENV=/nonexistent-venv"],
                         capture_output=True, text=True, cwd=ROOT, check=False)
    assert "if [ \"command line\" = file ]" in dry.stdout, dry.stdout + dry.stderr
