r"""The DiT paper's Table 4 from code: forward cost and parameters of its twelve models (see :mod:`svd_lab.flops`).

Units (multiply-adds vs FLOPs) and how the counting works: :mod:`svd_lab.flops`.

Per DiT block with N tokens of width d, the cost is about ``12 N d^2`` (qkv 3, projection 1, MLP 8) plus
``2 N^2 d`` for attention: patch size p quarters N for each doubling, which is Table 4's ~4x per patch halving.
"""

from __future__ import annotations

import torch

from svd_lab.flops import Cost, count_forward

__all__ = ["DIT_PAPER_GFLOPS", "Cost", "count_forward", "dit_cost", "dit_table", "format_dit_table"]

#: DiT paper Table 4 (Gflops = G multiply-adds, 256x256 images, latent 32x32x4)
DIT_PAPER_GFLOPS = {
    "S/8": 0.36, "S/4": 1.41, "S/2": 6.06,
    "B/8": 1.42, "B/4": 5.56, "B/2": 23.01,
    "L/8": 5.01, "L/4": 19.70, "L/2": 80.71,
    "XL/8": 7.39, "XL/4": 29.05, "XL/2": 118.64,
}


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
