"""The shipped recipe: the exact settings that produced ``checkpoints/mini/`` (one place, used by the CLI).

Reproduce the shipped weights with ``tools/train_mini.sh`` (= ``svd-lab mini train --steps SHIPPED_STEPS
--seed SHIPPED_SEED --out checkpoints/mini``).
"""

from __future__ import annotations

from svd_lab.mini.dit import DiTConfig
from svd_lab.mini.train import TrainSettings

SHIPPED_STEPS = 6000
SHIPPED_SEED = 0
DIT = DiTConfig(hidden=128, depth=4, heads=4, patch_t=2, patch=2)


def shipped_settings(seed: int = SHIPPED_SEED, steps: int | None = SHIPPED_STEPS,
                     minutes: float | None = None) -> TrainSettings:
    return TrainSettings(seed=seed, steps=steps, minutes=minutes, dit=DIT.to_dict())
