"""The shipped recipe: the exact settings that produced ``checkpoints/mini/`` (one place, used by the CLI).

Reproduce the shipped weights with ``tools/train_mini.sh`` (= ``svd-lab mini train --steps SHIPPED_STEPS
--seed SHIPPED_SEED --out checkpoints/mini``).
"""

from __future__ import annotations

from svd_lab.mini.dit import DiTConfig
from svd_lab.mini.train import TrainSettings

SHIPPED_STEPS = 12000
SHIPPED_SEED = 0
#: 8 frames x 8x8x4 latents, spacetime patches 2x4x4 -> 16 tokens of 256 values; 192 wide, 6 blocks (4.0 M
#: parameters, 8 MB in float16). Fewer, wider tokens learned fastest per CPU-second in our trials.
DIT = DiTConfig(hidden=192, depth=6, heads=6, patch_t=2, patch=4)
AUTOENCODER_STEPS = 400


def shipped_settings(seed: int = SHIPPED_SEED, steps: int | None = SHIPPED_STEPS,
                     minutes: float | None = None) -> TrainSettings:
    return TrainSettings(seed=seed, steps=steps, minutes=minutes, autoencoder_steps=AUTOENCODER_STEPS,
                         residual=True, dit=DIT.to_dict())
