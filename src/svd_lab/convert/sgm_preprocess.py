r"""sgm's CLIP preprocessing, written out in torch (no kornia dependency).

Stability's ``FrozenOpenCLIPImageEmbedder.preprocess`` turns the conditioning image ``x`` in [-1, 1],
shaped (B, 3, H, W), into the CLIP input:

1. ``kornia.geometry.resize(x, (224, 224), interpolation="bicubic", align_corners=True, antialias=True)`` --
   no crop, the aspect ratio is not kept;
2. ``(x + 1) / 2`` back to [0, 1];
3. ``(x - mean) / std`` with OpenAI CLIP's mean and std.

kornia's antialiasing (taken from scikit-image) only acts when shrinking: with the shrink factors
``f = (H / 224, W / 224)`` it blurs with a Gaussian of standard deviation ``sigma = max((f - 1) / 2, 0.001)`` per
axis over ``k = int(max(4 sigma, 3))`` taps (made odd), with reflect padding, one axis after the other (x, then
y), and then resamples bicubically. For SVD's 576x1024 input: sigma = (0.786, 1.786), k = (3, 7).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: OpenAI CLIP normalisation (OpenCLIP's OPENAI_DATASET_MEAN / STD), as sgm uses.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_SIZE = (224, 224)


def gaussian_kernel1d(size: int, sigma: torch.Tensor) -> torch.Tensor:
    r"""Normalised Gaussian taps ``g_i \propto exp(-(i - size//2)^2 / (2 sigma^2))``, shape (size,).

    Computed in ``sigma``'s dtype (kornia builds the kernel in the image's dtype).
    """
    x = torch.arange(size, dtype=sigma.dtype, device=sigma.device) - float(size // 2)
    if size % 2 == 0:
        x = x + 0.5
    taps = torch.exp(-x.pow(2.0) / (2 * sigma.pow(2.0)))
    return taps / taps.sum()


def _filter_axis(x: torch.Tensor, taps: torch.Tensor, axis: str) -> torch.Tensor:
    """Depthwise 1-D filtering of (B, C, H, W) along width (``axis="x"``) or height (``"y"``), reflect padding."""
    channels, size = x.shape[1], taps.numel()
    before, after = (size - 1) // 2, (size - 1) - (size - 1) // 2
    if axis == "x":
        kernel = taps.view(1, 1, 1, size)
        padded = F.pad(x, (before, after, 0, 0), mode="reflect")
    else:
        kernel = taps.view(1, 1, size, 1)
        padded = F.pad(x, (0, 0, before, after), mode="reflect")
    return F.conv2d(padded, kernel.expand(channels, 1, *kernel.shape[2:]), groups=channels)


def antialiased_bicubic_resize(x: torch.Tensor, size: tuple[int, int] = CLIP_SIZE, antialias: bool = True) -> torch.Tensor:
    """kornia-style ``resize(x, size, "bicubic", align_corners=True, antialias=antialias)`` of (B, C, H, W).

    Returns (B, C, size[0], size[1]) in x's dtype. Enlarging (or antialias=False) is a plain bicubic resample.
    """
    if x.ndim != 4:
        raise ValueError(f"expected an image batch (B, C, H, W), got shape {tuple(x.shape)}")
    height, width = x.shape[-2:]
    size = (int(size[0]), int(size[1]))
    if (height, width) == size:
        return x
    factors = (height / size[0], width / size[1])
    if antialias and max(factors) > 1:
        sigmas = (max((factors[0] - 1.0) / 2.0, 0.001), max((factors[1] - 1.0) / 2.0, 0.001))
        taps_y, taps_x = (int(max(2.0 * 2 * s, 3)) for s in sigmas)
        taps_y += 1 - taps_y % 2  # odd sizes: a centred kernel
        taps_x += 1 - taps_x % 2
        sigma = torch.tensor(sigmas, dtype=x.dtype, device=x.device)
        x = _filter_axis(x, gaussian_kernel1d(taps_x, sigma[1]), "x")
        x = _filter_axis(x, gaussian_kernel1d(taps_y, sigma[0]), "y")
    return F.interpolate(x, size=size, mode="bicubic", align_corners=True)


def sgm_clip_preprocess(image: torch.Tensor) -> torch.Tensor:
    """sgm's CLIP input from a conditioning image in [-1, 1]: (B, 3, H, W) -> (B, 3, 224, 224), normalised."""
    x = antialiased_bicubic_resize(image, CLIP_SIZE, antialias=True)
    x = (x + 1.0) / 2.0
    mean = torch.tensor(CLIP_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
