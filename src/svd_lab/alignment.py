"""Loaded weights at aligned addresses, so a loaded network computes exactly what the same network in fresh memory
computes, on any CPU.

diffusers' and transformers' ``from_pretrained`` memory-map a safetensors file and leave each parameter where it sits
in the file: at the file's byte offset, so a float32 tensor may start 4, 24 or 60 bytes past a 64-byte boundary
(measured: tiny UNet and VAE tensors at offsets 4..60, CLIP at 40). CPU matrix kernels pick their code path by
address; on an AVX2-only AMD EPYC the CLIP embedding of an unaligned copy differs from the aligned one by 2.4e-7,
and a two-step video by 8.8e-6, while on an AVX-512 Xeon the two agree. Freshly allocated tensors (constructors,
``clone``, dtype casts) are 64-byte aligned by torch's CPU allocator, which is why a test comparing a loaded model with
the one it was saved from could pass on one machine kind and fail on another.

:func:`align_module` gives every CPU parameter and buffer that is not aligned a copy of its own at an aligned
address: the same values, the same strides, the same Parameter objects (so optimisers and tied weights see the
change). It also detaches the weights from the file's memory map.
"""

from __future__ import annotations

import torch

#: bytes: the alignment of torch's CPU allocator (c10's ``gAlignment``), which vectorised kernels assume
ALIGNMENT = 64


def is_aligned(tensor: torch.Tensor) -> bool:
    """Whether ``tensor``'s first element sits on an :data:`ALIGNMENT` boundary (meta and empty tensors are)."""
    return tensor.data_ptr() % ALIGNMENT == 0


def align_module(module: torch.nn.Module) -> int:
    """Copy every unaligned CPU parameter and buffer of ``module`` to an aligned address; return how many moved.

    A tensor reached under several names (tied weights, shared buffers) is copied once and stays shared.
    """
    copies: dict[int, torch.Tensor] = {}

    def aligned(tensor: torch.Tensor) -> torch.Tensor | None:
        if tensor.device.type != "cpu" or is_aligned(tensor):
            return None
        if id(tensor) not in copies:
            copies[id(tensor)] = tensor.detach().clone()  # preserve_format: the same strides
        return copies[id(tensor)]

    for sub in module.modules():
        for param in sub._parameters.values():
            if param is not None and (copy := aligned(param)) is not None:
                param.data = copy  # the Parameter object stays: requires_grad and every reference to it are kept
        for name, buffer in sub._buffers.items():
            if buffer is not None and (copy := aligned(buffer)) is not None:
                sub._buffers[name] = copy
    return len(copies)


def unaligned_tensors(module: torch.nn.Module) -> list[str]:
    """Names of ``module``'s CPU parameters and buffers that are not aligned (empty after :func:`align_module`)."""
    named = [*module.named_parameters(remove_duplicate=False), *module.named_buffers(remove_duplicate=False)]
    return [name for name, t in named if t.device.type == "cpu" and not is_aligned(t)]
