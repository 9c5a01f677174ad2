r"""Forward cost and parameter counts from code: the DiT paper's Table 4 and SVD's UNet per sampling step.

Units, because papers mix them:

* **multiply-adds (MACs)**: one per ``a * b + c``. The DiT paper's "Gflops" are these (it counts with fvcore,
  which counts one per multiply-add).
* **FLOPs**: two per multiply-add (PyTorch's ``FlopCounterMode`` and most hardware spec sheets).

We count with :class:`torch.utils.flop_counter.FlopCounterMode` (matrix multiplications, convolutions and the
attention matmuls ``Q K^T`` and ``A V``; element-wise work such as softmax, norms and activations is not counted,
like fvcore) and divide by two for multiply-adds. Models are built on the ``meta`` device: no memory, no
arithmetic, only shapes -- counting the 1.5 B-parameter SVD UNet takes seconds.

Per DiT block with N tokens of width d, the cost is about ``12 N d^2`` (qkv 3, projection 1, MLP 8) plus
``2 N^2 d`` for attention: patch size p quarters N for each doubling, which is Table 4's ~4x per patch halving.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: DiT paper Table 4 (Gflops = G multiply-adds, 256x256 images, latent 32x32x4)
DIT_PAPER_GFLOPS = {
    "S/8": 0.36, "S/4": 1.41, "S/2": 6.06,
    "B/8": 1.42, "B/4": 5.56, "B/2": 23.01,
    "L/8": 5.01, "L/4": 19.70, "L/2": 80.71,
    "XL/8": 7.39, "XL/4": 29.05, "XL/2": 118.64,
}


@dataclass
class Cost:
    """Forward cost of one call. ``macs``: multiply-adds; ``flops`` = 2 * macs; ``parameters``."""

    macs: float
    parameters: int

    @property
    def flops(self) -> float:
        return 2.0 * self.macs

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    def __str__(self) -> str:
        return (f"{self.macs / 1e9:,.2f} G multiply-adds ({self.flops / 1e9:,.2f} GFLOP), "
                f"{self.parameters / 1e6:,.1f} M parameters")


def count_forward(module: torch.nn.Module, *args, **kwargs) -> Cost:
    """Multiply-adds of ``module(*args, **kwargs)`` (tensors may be on the meta device) and its parameter count."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(*args, **kwargs)
    return Cost(macs=counter.get_total_flops() / 2, parameters=sum(p.numel() for p in module.parameters()))


def dit_cost(name: str, image_size: int = 256, batch: int = 1) -> Cost:
    """Forward cost of a DiT paper model (e.g. ``"XL/2"``) on ``batch`` images of ``image_size`` (latent size/8)."""
    from svd_lab.mini.dit import VideoDiT, dit_paper_config

    cfg = dit_paper_config(name, image_size)
    with torch.device("meta"):
        model = VideoDiT(cfg)
        x = torch.empty(batch, 1, cfg.in_channels, cfg.height, cfg.width)
        c_noise = torch.empty(batch)
        labels = torch.zeros(batch, dtype=torch.long)
    model.eval()
    return count_forward(model, x, c_noise, {"labels": labels})


def dit_table(image_size: int = 256) -> dict[str, tuple[Cost, float]]:
    """``{name: (our cost, paper Gflops)}`` for the twelve models of Table 4."""
    return {name: (dit_cost(name, image_size), paper) for name, paper in DIT_PAPER_GFLOPS.items()}


def format_dit_table(table: dict[str, tuple[Cost, float]]) -> str:
    lines = [f"{'model':6} {'params':>8} {'ours GMAC':>10} {'paper':>8} {'diff':>7} {'GFLOP':>9}"]
    for name, (cost, paper) in table.items():
        lines.append(f"{'DiT-' + name:6} {cost.parameters / 1e6:7.1f}M {cost.gmacs:10.2f} {paper:8.2f} "
                     f"{100 * (cost.gmacs / paper - 1):+6.2f}% {cost.flops / 1e9:9.2f}")
    return "\n".join(lines)


def svd_unet_cost(version: str = "svd", height: int = 576, width: int = 1024, frames: int | None = None,
                  guidance: bool = True) -> Cost:
    """Multiply-adds of SVD's UNet for one sampling step (guidance doubles the batch: [uncond, cond]).

    Builds the full-size UNet from :mod:`svd_lab.svd.configs` on the meta device. diffusers' ``AlphaBlender``
    creates its ``mix_factor`` with ``torch.Tensor([alpha])``, which lands on the CPU even inside
    ``torch.device("meta")``, so the module is moved ``.to("meta")`` before counting.
    Defaults: svd at 576x1024, 14 frames, batch 28 -> about 44.8 T multiply-adds (89.6 TFLOP).
    """
    from diffusers import UNetSpatioTemporalConditionModel

    from svd_lab.svd import configs

    unet_config = _full_unet_config(configs, version)
    num_frames = frames or unet_config["num_frames"]
    with torch.device("meta"):
        unet = UNetSpatioTemporalConditionModel(**unet_config)
    unet = unet.to("meta").eval()
    batch = 2 if guidance else 1
    in_ch = unet.config.in_channels
    cross = unet.config.cross_attention_dim
    with torch.device("meta"):
        sample = torch.empty(batch, num_frames, in_ch, height // 8, width // 8)
        timestep = torch.empty(())
        encoder_hidden_states = torch.empty(batch, 1, cross)
        added_time_ids = torch.empty(batch, 3)
    return count_forward(unet, sample, timestep, encoder_hidden_states, added_time_ids=added_time_ids,
                         return_dict=False)


def _full_unet_config(configs, version: str) -> dict:
    """The full-size UNet constructor arguments for a version, from H1's configs module."""
    return dict(configs.unet_config("full", version))
