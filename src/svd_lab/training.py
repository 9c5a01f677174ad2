"""What every svd-lab trainer shares (the mini world model, the tiny SVD): bf16 autocast on the CPU and the schedule
of the learning rate."""

from __future__ import annotations

import math

import torch


def bf16_autocast(enabled: bool = True):
    """bfloat16 autocast on the CPU: about 1.5x faster steps on this project's 2-core machine, float32 master weights."""
    return torch.autocast("cpu", torch.bfloat16, enabled=enabled)


def lr_factor(progress: float, step: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from 1 to 0.1 as progress goes 0 -> 1."""
    warm = min(1.0, (step + 1) / max(1, warmup))
    progress = min(max(progress, 0.0), 1.0)
    return warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
