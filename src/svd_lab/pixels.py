"""Comparing images in pixel space, where a viewer sees them: PSNR, the thumbnail baseline, colour error.

Every image here is a float tensor in [0, 1] with channels first, (3, H, W) or (T, 3, H, W).
"""

from __future__ import annotations

import math

import numpy as np
import torch


def psnr(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB for intensities in [0, 1]: ``10 log10(1 / MSE)``; ``inf`` when equal.

    The estimate is clamped to [0, 1] first: a viewer never sees values outside it.
    """
    mse = torch.mean((reference.float() - estimate.float().clamp(0, 1)) ** 2).item()
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


def thumbnail_side(values: int, channels: int = 3) -> int:
    """The side of the largest square thumbnail with ``channels`` channels and no more than ``values`` numbers."""
    side = math.isqrt(values // channels)
    if side < 1:
        raise ValueError(f"{values} values cannot hold a {channels}-channel thumbnail")
    return side


def thumbnail(image: torch.Tensor, values: int) -> torch.Tensor:
    """The thumbnail baseline of a compressed representation with ``values`` numbers: the image (3, H, W) shrunk
    with Lanczos to the largest square RGB thumbnail that has no more values, then enlarged back with bicubic
    interpolation (PIL, 8-bit like any picture file). What an autoencoder with that many latent values must beat.
    """
    from PIL import Image

    side = thumbnail_side(values)
    pixels = (image.detach().float().clamp(0, 1).permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    picture = Image.fromarray(pixels)
    restored = picture.resize((side, side), Image.LANCZOS).resize(picture.size, Image.BICUBIC)
    return torch.from_numpy(np.array(restored)).permute(2, 0, 1).float() / 255


def colour_error(frames: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per frame, |mean colour of the frame - mean colour of the true frame| averaged over the channels: (T,).

    ``frames`` and ``truth`` are (T, 3, H, W) (or (3, H, W): one value). A static or panning video keeps its
    colours; a flash, a tint or a washed-out decode shows up here even where PSNR is ambiguous.
    """
    return (frames.float().mean(dim=(-2, -1)) - truth.float().mean(dim=(-2, -1))).abs().mean(dim=-1)


def quantize(image: torch.Tensor) -> torch.Tensor:
    """What a picture file holds: values rounded to 8 bits (and clamped)."""
    return (image.float().clamp(0, 1) * 255).round() / 255
