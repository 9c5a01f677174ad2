"""The video compression network: a small convolutional autoencoder from 32x32 frames to an 8x8 latent grid.

Sora compresses videos into a latent space before the diffusion transformer sees them; Stable Diffusion and SVD
do the same with their VAE (8x spatial compression, 4 channels). Here each 32x32 frame becomes a 4x8x8 latent
(4x spatial compression, 256 values per frame instead of 1024), which shrinks the DiT's token count 4x at equal
patch size -- the main lever for training speed on a CPU.

Two choices make the latent *diffusable*:

* the decoder is trained on latents with a little Gaussian noise added (``latent_noise``), so the imperfect
  latents a diffusion model produces still decode to clean, round balls instead of fragments;
* a small L2 penalty keeps the latents bounded, and the measured latent standard deviation is stored as
  ``scale`` (like SD's 0.18215) so that ``latent * scale`` has the unit-ish spread the EDM noise schedule expects.

Frames are encoded independently (SVD's encoder is per-frame too); time is mixed only by the DiT.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import pairwise

import torch
from torch import nn


@dataclass
class AutoencoderConfig:
    in_channels: int = 1
    latent_channels: int = 4
    #: encoder widths per resolution (32, 16, 8): kept light because it runs on every DiT training batch
    encoder_widths: tuple[int, ...] = (16, 32, 64)
    #: decoder widths per resolution (8, 16, 32): heavier, it shapes what samples look like
    decoder_widths: tuple[int, ...] = (64, 32, 16)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> AutoencoderConfig:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


class ResBlock(nn.Module):
    """Two 3x3 convolutions with a skip connection (SiLU before each; no normalisation, so frames stay independent
    of batch statistics and the block is cheap)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
            nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class FrameAutoencoder(nn.Module):
    """Per-frame conv autoencoder. ``encode``: (B, T, 1, 32, 32) -> (B, T, C, 8, 8); ``decode`` the reverse.

    Encoder: 3x3 conv, then a 4x4 stride-2 conv per stage (32 -> 16 -> 8), SiLU between, 1x1 to C channels.
    Decoder: 3x3 conv from C channels, a residual block per resolution, nearest 2x upsampling + 3x3 conv between.
    ``scale`` (a buffer) multiplies raw latents into diffusion space: ``z = encoder(x) * scale``.
    """

    def __init__(self, config: AutoencoderConfig | None = None):
        super().__init__()
        self.config = config = config or AutoencoderConfig()
        ew, dw = config.encoder_widths, config.decoder_widths
        if len(ew) != len(dw) or len(ew) < 1:
            raise ValueError("encoder_widths and decoder_widths must have the same, non-zero length")
        enc: list[nn.Module] = [nn.Conv2d(config.in_channels, ew[0], 3, padding=1), nn.SiLU()]
        for cin, cout in pairwise(ew):
            enc += [nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.SiLU()]
        enc += [nn.Conv2d(ew[-1], config.latent_channels, 1)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv2d(config.latent_channels, dw[0], 3, padding=1), ResBlock(dw[0])]
        for cin, cout in pairwise(dw):
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1), ResBlock(cout)]
        dec += [nn.SiLU(), nn.Conv2d(dw[-1], config.in_channels, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)
        self.register_buffer("scale", torch.ones(()))

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.config.encoder_widths) - 1)

    def _frames(self, x: torch.Tensor, fn) -> torch.Tensor:
        b, t = x.shape[:2]
        y = fn(x.reshape(b * t, *x.shape[2:]))
        return y.reshape(b, t, *y.shape[1:])

    def encode_raw(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, 1, H, W) in [-1, 1] -> unscaled latents (B, T, C, H/4, W/4)."""
        return self._frames(x, self.encoder)

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """Unscaled latents (B, T, C, h, w) -> (B, T, 1, 4h, 4w) in model space (about [-1, 1])."""
        return self._frames(z, self.decoder)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, 1, H, W) in [-1, 1] -> diffusion-space latents ``encoder(x) * scale``."""
        return self.encode_raw(x) * self.scale

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Diffusion-space latents -> frames in [-1, 1] (model space)."""
        return self.decode_raw(z / self.scale)
