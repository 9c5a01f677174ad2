#!/usr/bin/env python3
"""Which torch build `make setup` installs on this machine: prints the extra pip arguments (one line, maybe empty).

    python3 tools/torch_choice.py 'torch==2.13.0'      # -> '' or '--index-url https://download.pytorch.org/whl/cpu' ...

The Makefile asks it only when neither TORCH_PIP_ARGS nor TORCH_SPEC was given (those win, as they are). Then:

1. a matching torch wheel in one of pip's find-links folders (PIP_FIND_LINKS, pip's config): no extra arguments,
   pip takes that file (this project's build machines and CI have one, and cannot reach the PyTorch index);
2. an NVIDIA GPU (``nvidia-smi`` answers): PyTorch's index of the newest CUDA build of that torch that the driver
   supports (``nvidia-smi`` prints the driver's highest CUDA version) and that still has kernels for the GPU (cu126
   for a P100 or V100, compute capability below 7.5); a driver older than every build is an error that says what
   to do;
3. otherwise the CPU build from PyTorch's CPU index (``TORCH_CPU_INDEX`` overrides it, e.g. a mirror): on Linux,
   PyPI's default torch is the CUDA build plus about 3 GB of NVIDIA libraries, useless without a GPU.

What it chose, and roughly what that downloads, goes to stderr. Standard library only, so any python3 can run it
before the environment exists.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys

PYTORCH_INDEX = "https://download.pytorch.org/whl"
#: CUDA builds PyTorch publishes for each torch release this project pins (docs/modelarts.md, section 6, sources)
CUDA_BUILDS = {"2.13": ("cu126", "cu130")}
SIZES = {"cpu": "about 190 MB to download, 750 MB installed",
         "cuda": "about 900 MB for torch plus about 3 GB of NVIDIA CUDA libraries"}


def pinned_version(spec: str) -> str | None:
    """'torch==2.13.0' -> '2.13.0'; None for an unpinned spec."""
    match = re.fullmatch(r"\s*torch\s*==\s*([0-9][0-9a-z.]*)\s*", spec)
    return match.group(1) if match else None


def find_links() -> list[str]:
    """pip's find-links folders: PIP_FIND_LINKS, then pip's configuration (``pip config list``)."""
    folders = os.environ.get("PIP_FIND_LINKS", "").split()
    try:
        config = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                                timeout=60, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        config = ""
    for line in config.splitlines():
        key, _, value = line.partition("=")
        if key.strip().endswith("find-links"):
            folders += value.strip().strip("'\"").split()
    return [f.removeprefix("file://") for f in dict.fromkeys(folders) if "://" not in f or f.startswith("file://")]


def local_wheel(version: str | None, folders: list[str]) -> str | None:
    """A torch wheel for this Python and machine (and ``version``, if pinned) in one of ``folders``."""
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    machine = platform.machine().lower()
    for folder in folders:
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            match = re.fullmatch(r"torch-([0-9][0-9a-z.]*)(\+[a-z0-9.]+)?-(cp\d+)-(cp\d+t?|abi3)-(.+)\.whl", name)
            if not match or match.group(3) != tag or machine not in match.group(5):
                continue
            if version is None or match.group(1) == version:
                return os.path.join(folder, name)
    return None


def oldest_compute_capability() -> tuple[int, int] | None:
    """The lowest compute capability among the GPUs (``nvidia-smi --query-gpu=compute_cap``), or None."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    caps = [(int(m.group(1)), int(m.group(2))) for m in re.finditer(r"^\s*(\d+)\.(\d+)\s*$", out, re.MULTILINE)]
    return min(caps) if caps else None


def driver_cuda() -> tuple[int, int] | None:
    """The highest CUDA version the NVIDIA driver supports (``nvidia-smi``'s header), or None without a GPU."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else None


def choose(spec: str) -> tuple[str, str]:
    """(pip arguments, what was chosen and why); SystemExit with advice where no build fits the driver."""
    version = pinned_version(spec)
    wheel = local_wheel(version, find_links())
    if wheel:
        return "", f"torch: the local wheel {wheel} (pip's find-links)"
    cuda = driver_cuda()
    release = ".".join(version.split(".")[:2]) if version else None
    if cuda is not None:
        builds = CUDA_BUILDS.get(release, ("cu126", "cu130"))
        fitting = [b for b in builds if (int(b[2:-1]), int(b[-1])) <= cuda]
        capability = oldest_compute_capability()
        old_gpu = capability is not None and capability < (7, 5)
        if old_gpu:
            # CUDA 12.8+ builds dropped Pascal (P100) and, from torch 2.11, Volta (V100); cu126 keeps them
            fitting = [b for b in fitting if b == "cu126"]
        if not fitting:
            raise SystemExit(
                f"torch_choice: this NVIDIA driver supports CUDA {cuda[0]}.{cuda[1]}, older than every CUDA build of "
                f"torch {release or ''} ({', '.join(builds)}). Update the driver (on ModelArts it comes from the "
                "host image: pick a newer image), or choose a build yourself, e.g. make setup "
                f"TORCH_SPEC='torch>=2.4,<2.8' TORCH_PIP_ARGS='--index-url {PYTORCH_INDEX}/cu118' "
                "(docs/modelarts.md, section 6)")
        build = fitting[-1]
        why = f"driver supports CUDA {cuda[0]}.{cuda[1]}"
        if old_gpu:
            why += f"; compute capability {capability[0]}.{capability[1]}: only cu126 still has its kernels"
        return f"--index-url {PYTORCH_INDEX}/{build}", f"torch: the {build} build for this GPU ({why}), {SIZES['cuda']}"
    index = os.environ.get("TORCH_CPU_INDEX", f"{PYTORCH_INDEX}/cpu")
    return f"--index-url {index}", f"torch: the CPU build from {index} (no NVIDIA GPU found), {SIZES['cpu']}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: torch_choice.py TORCH_SPEC   (e.g. 'torch==2.13.0')", file=sys.stderr)
        return 2
    pip_args, why = choose(args[0])
    print(why, file=sys.stderr)
    print(pip_args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
