"""Fitting Wan into a GPU: which networks stay on it, and what the VAE does in tiles.

Modes, lightest last (each is what diffusers offers; our pipeline applies them itself):

- ``resident``: the text encoder, the transformer and the VAE all on the GPU.
- ``offload``: model CPU offload -- each network moves to the GPU only while it runs (the UMT5-XXL encoder alone
  is 11.4 GB in bf16, more than the 1.3B transformer's 2.8 GB, and it runs once per prompt).
- ``group``: diffusers' group offloading of the transformer and the text encoder (their blocks stream to the GPU
  one at a time) plus model offload of the VAE: the least VRAM, the slowest.

VAE tiling (``vae.enable_tiling()``: decode in overlapping spatial tiles) is added when the decoder's estimate does
not fit. The figures below are *planning estimates*, not measurements: the GPU benchmark
(``benchmarks/bench_wan.py``) measures peak memory per mode where a GPU is lent. The pipeline also catches
``torch.cuda.OutOfMemoryError`` and retries once per lighter mode (:func:`generate`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace

import torch

GIB = 2**30
MODES = ("resident", "offload", "group")
SAFETY = 1.0 * GIB
#: planning figures (bf16): transformer activations per token per hidden unit (attention via SDPA, feed-forward
#: expansion, guidance's two passes run one after the other), and the VAE decoder per output pixel-frame
ACTIVATION_BYTES_PER_TOKEN_UNIT = 24
DECODER_BYTES_PER_PIXEL_FRAME = 600


@dataclass(frozen=True)
class WanMemoryPlan:
    mode: str = "resident"
    reason: str = ""
    vae_tiling: bool = False

    def settings(self) -> str:
        return f"--memory {self.mode}" + (" --vae-tiling" if self.vae_tiling else "")


def _weights_bytes(module: torch.nn.Module, dtype_bytes: int) -> int:
    return sum(p.numel() for p in module.parameters()) * dtype_bytes


def estimate(components, num_frames: int, height: int, width: int, dtype_bytes: int = 2) -> dict[str, float]:
    """Planning estimates in bytes: each network's weights, the transformer's activations, the VAE decoder's."""
    t = components.transformer
    tokens = ((num_frames - 1) // components.temporal_factor + 1) * (height // components.size_multiple) * (
        width // components.size_multiple)
    hidden = t.config.num_attention_heads * t.config.attention_head_dim
    return {"text_encoder": _weights_bytes(components.text_encoder, dtype_bytes),
            "transformer": _weights_bytes(t, dtype_bytes),
            "vae": _weights_bytes(components.vae, 4),
            "activations": tokens * hidden * ACTIVATION_BYTES_PER_TOKEN_UNIT,
            "decoder": num_frames * height * width * DECODER_BYTES_PER_PIXEL_FRAME}


def plan_for_free_vram(free: int, need: dict[str, float]) -> WanMemoryPlan:
    """The heaviest mode that fits ``free`` bytes, and VAE tiling when the decoder's estimate does not fit."""
    budget = free - SAFETY
    weights = need["text_encoder"] + need["transformer"] + need["vae"]
    gib = lambda b: f"{b / GIB:.1f} GiB"
    if weights + need["activations"] <= budget:
        mode = "resident"
        reason = f"all networks fit: {gib(weights + need['activations'])} of {gib(budget)} usable"
        left = budget - weights
    elif max(need["text_encoder"], need["transformer"] + need["activations"]) <= budget:
        mode = "offload"
        reason = (f"all networks ({gib(weights)}) do not fit {gib(budget)}: one at a time (largest "
                  f"{gib(max(need['text_encoder'], need['transformer'] + need['activations']))})")
        left = budget - need["vae"]
    else:
        mode = "group"
        reason = f"even one network does not fit {gib(budget)}: the transformer's blocks stream in groups"
        left = budget - need["vae"]
    tiling = need["decoder"] > left
    if tiling:
        reason += f"; VAE tiling (decoder estimate {gib(need['decoder'])} > {gib(max(left, 0))} left)"
    return WanMemoryPlan(mode, reason, tiling)


def plan_memory(components, device: torch.device, memory: str = "auto", num_frames: int = 81, height: int = 480,
                width: int = 832) -> WanMemoryPlan:
    """``memory`` as asked, or (``auto``) planned from free VRAM on CUDA; resident elsewhere."""
    if memory not in ("auto", *MODES):
        raise ValueError(f"unknown memory mode {memory!r}: use auto, {', '.join(MODES)}")
    if device.type != "cuda":
        mode = "resident" if memory == "auto" else memory
        return WanMemoryPlan(mode, f"{device.type}: main memory" if memory == "auto" else "asked")
    if memory != "auto":
        return WanMemoryPlan(memory, "asked")
    free, _ = torch.cuda.mem_get_info(device)
    return plan_for_free_vram(free, estimate(components, num_frames, height, width))


def lighter(plan: WanMemoryPlan) -> WanMemoryPlan | None:
    """The next lighter plan after an out-of-memory error (tiling first, then the next mode), or None."""
    if not plan.vae_tiling:
        return replace(plan, vae_tiling=True, reason=plan.reason + "; out of memory: VAE tiling")
    index = MODES.index(plan.mode)
    if index + 1 < len(MODES):
        return replace(plan, mode=MODES[index + 1], reason=plan.reason + f"; out of memory: {MODES[index + 1]}")
    return None


def apply_plan(components, device: torch.device, plan: WanMemoryPlan) -> None:
    """Place the networks as ``plan`` says (idempotent: a retry applies a lighter plan over a heavier one)."""
    modules = components.modules()
    resident = plan.mode == "resident" or device.type == "cpu"
    for name, module in modules.items():
        if getattr(module, "_svd_lab_group_offload", False) and plan.mode != "group":
            raise RuntimeError("group offloading cannot be undone on a loaded model: reload it")
        if plan.mode == "group" and name != "vae" and device.type != "cpu":
            if not getattr(module, "_svd_lab_group_offload", False):
                from diffusers.hooks import apply_group_offloading

                module.to("cpu")
                apply_group_offloading(module, onload_device=device, offload_device=torch.device("cpu"),
                                       offload_type="block_level", num_blocks_per_group=1)
                module._svd_lab_group_offload = True
            continue
        module.to(device if resident else "cpu")
    vae = components.vae
    if plan.vae_tiling:
        vae.enable_tiling()
    elif getattr(vae, "use_tiling", False):
        vae.disable_tiling()


@contextlib.contextmanager
def on_device(module: torch.nn.Module, device: torch.device, plan: WanMemoryPlan):
    """Run ``module`` on ``device``: moved there for the block and back to the CPU after, in offload modes."""
    if plan.mode == "resident" or device.type == "cpu" or getattr(module, "_svd_lab_group_offload", False):
        yield device
        return
    module.to(device)
    try:
        yield device
    finally:
        module.to("cpu")
        if device.type == "cuda":
            torch.cuda.empty_cache()


def generate(pipe, **kwargs):
    """``pipe.run(**kwargs)``, retried with a lighter memory plan after each CUDA out-of-memory error; the
    fallback is recorded in the parameters (``oom_fallback``)."""
    first = pipe.plan
    while True:
        try:
            generation = pipe.run(**kwargs)
        except torch.cuda.OutOfMemoryError:
            nxt = lighter(pipe.plan)
            if nxt is None:
                from svd_lab.errors import RunError

                raise RunError(f"out of GPU memory even with {pipe.plan.settings()}: use fewer --frames, a "
                               "smaller --width/--height, or a GPU with more memory") from None
            torch.cuda.empty_cache()
            pipe.plan = nxt
            apply_plan(pipe.components, pipe.device, nxt)
            continue
        if pipe.plan != first:
            generation.params["oom_fallback"] = {"from": first.settings(), "to": pipe.plan.settings()}
        return generation
