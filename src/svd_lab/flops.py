r"""Forward cost from code: multiply-adds and parameters of one call, counted on the ``meta`` device.

Units, because papers mix them:

* **multiply-adds (MACs)**: one per ``a * b + c``. The DiT paper's "Gflops" are these (it counts with fvcore,
  which counts one per multiply-add).
* **FLOPs**: two per multiply-add (PyTorch's ``FlopCounterMode`` and most hardware spec sheets).

We count with :class:`torch.utils.flop_counter.FlopCounterMode` (matrix multiplications, convolutions and the
attention matmuls ``Q K^T`` and ``A V``; element-wise work such as softmax, norms and activations is not counted,
like fvcore) and divide by two for multiply-adds. Models are built on the ``meta`` device: no memory, no
arithmetic, only shapes -- counting the 1.5 B-parameter SVD UNet takes seconds.

Users: :mod:`svd_lab.mini.flops` (the DiT paper's Table 4) and :mod:`svd_lab.svd.cost` (SVD's UNet per step).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


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
