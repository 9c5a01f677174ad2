"""What every svd-lab trainer shares (the mini world model, the tiny SVD): bf16 autocast on the CPU and the schedule
of the learning rate."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import torch


@cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX-BF16 instructions).

    Without them oneDNN emulates bf16, and autocast becomes a slowdown, not a speed-up: on an AMD EPYC with AVX2
    only, a mini world model step took 5.3 s in bf16 and 0.54 s in float32 (on an AVX512-BF16 machine bf16 was about
    1.5x faster than float32). Read from /proc/cpuinfo on Linux; elsewhere oneDNN's own check.
    """
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        flags = set()
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
                break
        return bool(flags & {"avx512_bf16", "amx_bf16"})
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def bf16_autocast(enabled: bool = True):
    """bfloat16 autocast on the CPU where the CPU has bf16 instructions (float32 master weights either way);
    float32 elsewhere, where emulated bf16 is ~10x slower (see :func:`cpu_has_native_bf16`)."""
    return torch.autocast("cpu", torch.bfloat16, enabled=enabled and cpu_has_native_bf16())


def lr_factor(progress: float, step: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from 1 to 0.1 as progress goes 0 -> 1."""
    warm = min(1.0, (step + 1) / max(1, warmup))
    progress = min(max(progress, 0.0), 1.0)
    return warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def smooth(values: list[float], rate: float = 0.02) -> list[float]:
    """The exponential moving average every trainer shows beside its raw loss: ``s = (1 - rate) s + rate v``."""
    out, acc = [], None
    for v in values:
        acc = v if acc is None else (1 - rate) * acc + rate * v
        out.append(acc)
    return out


# ------------------------------------------------------------------------------------------- resumable state
def save_state(path: Path, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer | None = None,
               meta: dict | None = None) -> Path:
    """Write networks, the optimiser's state and ``meta`` (JSON) to one safetensors file, atomically (replacing).

    Everything needed to continue a run exactly: the weights, Adam's moments and step counts, and whatever the
    caller keeps in ``meta`` (the step reached, its losses, seconds spent). No pickle: tensors are safetensors,
    the rest JSON in the file's metadata.
    """
    import json

    from safetensors.torch import save

    from svd_lab.atomic import write_bytes_atomic

    tensors = {f"{name}/{key}": value.detach().contiguous()
               for name, module in modules.items() for key, value in module.state_dict().items()}
    groups = []
    if optimizer is not None:
        state = optimizer.state_dict()
        for index, entries in state["state"].items():
            for key, value in entries.items():
                tensors[f"optimizer/{index}/{key}"] = torch.as_tensor(value).detach().contiguous()
        groups = state["param_groups"]
    metadata = {"meta": json.dumps(meta or {}), "param_groups": json.dumps(groups)}
    return write_bytes_atomic(path, save(tensors, metadata=metadata), overwrite=True)


def load_state(path: Path, modules: dict[str, torch.nn.Module],
               optimizer: torch.optim.Optimizer | None = None) -> dict:
    """Restore what :func:`save_state` wrote into ``modules`` (and ``optimizer``); return its ``meta``.

    Values are copied into the modules' own tensors (``load_state_dict``), which sit at aligned addresses: a
    resumed run computes exactly what an uninterrupted one does (see :mod:`svd_lab.alignment`).
    """
    import json

    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (safe_open is not a mapping)
    for name, module in modules.items():
        prefix = f"{name}/"
        module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    if optimizer is not None:
        state: dict = {}
        for key, value in tensors.items():
            if key.startswith("optimizer/"):
                _, index, entry = key.split("/", 2)
                state.setdefault(int(index), {})[entry] = value.clone()
        optimizer.load_state_dict({"state": state, "param_groups": json.loads(metadata["param_groups"])})
    return json.loads(metadata.get("meta", "{}"))
