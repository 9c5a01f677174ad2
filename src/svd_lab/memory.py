"""Memory planning for full-size SVD on a CUDA GPU: how many frames the VAE decodes at once, and offload.

Numbers (fp16, 576x1024): weights UNet 3.05 GB + VAE 0.2 GB + CLIP 1.26 GB ~= 4.5 GB. The UNet's activations
for a guidance batch of 2 x frames dominate sampling; the temporal VAE decoder's activations grow linearly with
the frames decoded together (``decoding_t``) and are the usual cause of out-of-memory errors
(generative-models #140 #180 #210). diffusers documents < 8 GB VRAM with model CPU offload, forward chunking and
a decode chunk of 2. The per-frame decoder estimate below is a deliberately conservative planning figure; the
pipeline still catches ``torch.cuda.OutOfMemoryError`` and retries with a smaller plan.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 2**30
WEIGHTS_FP16 = 4.5 * GIB          # all three networks resident in fp16
UNET_ACTIVATIONS_PER_FRAME = 0.45 * GIB   # 576x1024, guidance batch 2 per frame, fp16 (planning estimate)
DECODER_PER_FRAME = 1.0 * GIB     # temporal VAE decoder at 576x1024 in fp16 (planning estimate)
SAFETY = 1.0 * GIB


@dataclass(frozen=True)
class MemoryPlan:
    decoding_t: int
    cpu_offload: bool
    reason: str


def plan_for_free_vram(free_bytes: int, num_frames: int = 14) -> MemoryPlan:
    """Pick decoding_t and CPU offload from free VRAM (bytes) for a clip of ``num_frames`` at 576x1024."""
    budget = free_bytes - SAFETY
    resident = WEIGHTS_FP16 + UNET_ACTIVATIONS_PER_FRAME * num_frames
    offload = budget < resident
    if offload:
        # Offload keeps one network on the GPU at a time: the decoder then competes only with its own weights.
        budget_for_decoder = budget - 0.2 * GIB
    else:
        budget_for_decoder = budget - WEIGHTS_FP16
    decoding_t = int(max(1, min(num_frames, budget_for_decoder // DECODER_PER_FRAME)))
    reason = f"{free_bytes / GIB:.1f} GiB free; " + ("model CPU offload needed" if offload else "all weights resident")
    return MemoryPlan(decoding_t=decoding_t, cpu_offload=offload, reason=reason)
