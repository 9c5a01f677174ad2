"""Loaded weights at aligned addresses (svd_lab.alignment): what the loaders rely on for bit-exact results."""

from __future__ import annotations

import torch

from svd_lab.alignment import ALIGNMENT, align_module, is_aligned, unaligned_tensors


def _unaligned(values: torch.Tensor) -> torch.Tensor:
    """A float32 copy of ``values`` that starts 4 bytes past a 64-byte boundary, like a tensor in a mapped file."""
    buffer = torch.empty(values.numel() + ALIGNMENT, dtype=torch.float32)
    skip = (-buffer.data_ptr() % ALIGNMENT) // 4 + 1
    out = buffer[skip: skip + values.numel()].view(values.shape)
    out.copy_(values)
    assert not is_aligned(out)
    return out


def test_unaligned_weights_are_copied_to_aligned_memory_with_the_same_values_and_objects():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.BatchNorm1d(8))
    weight = net[0].weight
    reference = {k: v.clone() for k, v in net.state_dict().items()}
    net[0].weight.data = _unaligned(weight.data)
    net[1].running_mean = _unaligned(net[1].running_mean)
    assert sorted(unaligned_tensors(net)) == ["0.weight", "1.running_mean"]

    assert align_module(net) == 2
    assert unaligned_tensors(net) == []
    assert net[0].weight is weight and weight.requires_grad  # the Parameter object is kept
    assert all(torch.equal(v, reference[k]) for k, v in net.state_dict().items())
    assert align_module(net) == 0  # nothing left to do


def test_tied_weights_stay_tied():
    shared = torch.nn.Parameter(_unaligned(torch.randn(4, 4)))
    a, b = torch.nn.Linear(4, 4, bias=False), torch.nn.Linear(4, 4, bias=False)
    a.weight = b.weight = shared
    buf = _unaligned(torch.arange(4.0))
    a.register_buffer("steps", buf)
    b.register_buffer("steps", buf)
    both = torch.nn.ModuleList([a, b])
    assert align_module(both) == 2
    assert a.weight is b.weight and a.steps is b.steps and is_aligned(a.steps) and is_aligned(a.weight)


def test_meta_and_empty_tensors_are_left_alone():
    with torch.device("meta"):
        net = torch.nn.Linear(4, 4)
    net.register_buffer("nothing", torch.empty(0))
    assert align_module(net) == 0 and unaligned_tensors(net) == []
