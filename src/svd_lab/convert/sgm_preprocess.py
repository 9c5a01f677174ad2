r"""sgm's CLIP preprocessing, in torch (no kornia dependency).

Stability's ``FrozenOpenCLIPImageEmbedder.preprocess`` turns the conditioning image ``x`` in [-1, 1],
shaped (B, 3, H, W), into the CLIP input:

1. ``kornia.geometry.resize(x, (224, 224), interpolation="bicubic", align_corners=True, antialias=True)`` --
   no crop, the aspect ratio is not kept;
2. ``(x + 1) / 2`` back to [0, 1];
3. ``(x - mean) / std`` with OpenAI CLIP's mean and std.

The resize is :func:`svd_lab.svd.components.resize_with_antialiasing` with ``reference="kornia"`` (the one
implementation; it documents how kornia's differs from diffusers'). For SVD's 576x1024 input the Gaussian has
sigma = (0.786, 1.786) and (3, 7) taps. The mean and std are :data:`svd_lab.svd.configs.CLIP_MEAN` / ``CLIP_STD``.
"""

from __future__ import annotations

import torch

from svd_lab.svd.components import resize_with_antialiasing
from svd_lab.svd.configs import CLIP_MEAN, CLIP_STD

#: OpenCLIP ViT-H/14's input size (height, width)
CLIP_SIZE = (224, 224)


def sgm_clip_preprocess(image: torch.Tensor) -> torch.Tensor:
    """sgm's CLIP input from a conditioning image in [-1, 1]: (B, 3, H, W) -> (B, 3, 224, 224), normalised."""
    x = resize_with_antialiasing(image, CLIP_SIZE, reference="kornia")
    x = (x + 1.0) / 2.0
    mean = torch.tensor(CLIP_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
