"""Memory planning for full-size SVD on a CUDA GPU: how many frames the VAE decodes at once, and offload.

Numbers (fp16, 576x1024): weights UNet 3.05 GB + VAE 0.2 GB + CLIP 1.26 GB ~= 4.5 GB. The UNet's activations
for a guidance batch of 2 x frames dominate sampling; the temporal VAE decoder's activations grow linearly with
the frames decoded together (``decoding_t``) and are the usual cause of out-of-memory errors
(generative-models #140 #180 #210). diffusers documents < 8 GB VRAM with model CPU offload, forward chunking and
a decode chunk of 2. The per-frame decoder estimate below is a deliberately conservative planning figure; the
pipeline still catches ``torch.cuda.OutOfMemoryError`` and retries with a smaller plan.

Activations scale with the number of pixels: plans for other sizes scale the per-frame figures by
``height * width / (576 * 1024)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

GIB = 2**30
WEIGHTS_FP16 = 4.5 * GIB          # all three networks resident in fp16
UNET_ACTIVATIONS_PER_FRAME = 0.45 * GIB   # 576x1024, guidance batch 2 per frame, fp16 (planning estimate)
DECODER_PER_FRAME = 1.0 * GIB     # temporal VAE decoder at 576x1024 in fp16 (planning estimate)
SAFETY = 1.0 * GIB
REFERENCE_PIXELS = 576 * 1024
# With model CPU offload only one network is on the GPU at a time; the UNet is the largest.
UNET_WEIGHTS_FP16 = 3.05 * GIB
# unet.enable_forward_chunking() runs the feed-forward layers in pieces (not output-identical: smaller matrix
# products round differently, ~1e-4 on the latents; see SVDPipeline._set_forward_chunking); planning figure for
# the share of UNet activations it saves.
FORWARD_CHUNKING_SAVING = 0.3


@dataclass(frozen=True)
class MemoryPlan:
    decoding_t: int
    cpu_offload: bool
    reason: str
    forward_chunking: bool = False

    def settings(self) -> str:
        """The plan as command-line options."""
        text = f"--decoding-t {self.decoding_t}"
        if self.cpu_offload:
            text += " --memory offload"
        return text


def _pixel_factor(height: int, width: int) -> float:
    return (height * width) / REFERENCE_PIXELS


def plan_for_free_vram(free_bytes: int, num_frames: int = 14, height: int = 576, width: int = 1024) -> MemoryPlan:
    """Pick decoding_t and CPU offload from free VRAM (bytes) for a clip of ``num_frames`` at height x width."""
    pixels = _pixel_factor(height, width)
    budget = free_bytes - SAFETY
    resident = WEIGHTS_FP16 + UNET_ACTIVATIONS_PER_FRAME * pixels * num_frames
    offload = budget < resident
    if offload:
        # Offload keeps one network on the GPU at a time: the decoder then competes only with its own weights.
        budget_for_decoder = budget - 0.2 * GIB
    else:
        budget_for_decoder = budget - WEIGHTS_FP16
    decoding_t = int(max(1, min(num_frames, budget_for_decoder // (DECODER_PER_FRAME * pixels))))
    reason = f"{free_bytes / GIB:.1f} GiB free; " + ("model CPU offload needed" if offload else "all weights resident")
    return MemoryPlan(decoding_t=decoding_t, cpu_offload=offload, reason=reason)


def sampling_fits(free_bytes: int, num_frames: int, height: int, width: int, offload: bool,
                  forward_chunking: bool = False) -> bool:
    """Whether the UNet's sampling (weights + activations for 2 x frames) should fit in free_bytes."""
    activations = UNET_ACTIVATIONS_PER_FRAME * _pixel_factor(height, width) * num_frames
    if forward_chunking:
        activations *= 1 - FORWARD_CHUNKING_SAVING
    weights = UNET_WEIGHTS_FP16 if offload else WEIGHTS_FP16
    return weights + activations + SAFETY <= free_bytes


def safer_plan(plan: MemoryPlan, on_cuda: bool) -> MemoryPlan:
    """The settings of the one retry after an out-of-memory error: half the decoding chunk, forward chunking,
    and model CPU offload where it exists (CUDA)."""
    return replace(plan, decoding_t=max(1, plan.decoding_t // 2), cpu_offload=plan.cpu_offload or on_cuda,
                   forward_chunking=True, reason=f"retry after out-of-memory ({plan.reason})")


def fitting_settings(free_bytes: int, num_frames: int, height: int, width: int) -> str:
    """Human advice after a failed retry: settings expected to fit in ``free_bytes`` (planning estimates)."""
    suggestions = []
    plan = plan_for_free_vram(free_bytes, num_frames, height, width)
    frames = num_frames
    if sampling_fits(free_bytes, frames, height, width, offload=True, forward_chunking=True):
        suggestions.append(f"--decoding-t {min(plan.decoding_t, 2)} --memory offload")
    else:
        while frames > 1 and not sampling_fits(free_bytes, frames, height, width, True, True):
            frames -= 1
        if frames >= 2 and sampling_fits(free_bytes, frames, height, width, True, True):
            suggestions.append(f"--frames {frames} --decoding-t 1 --memory offload")
        h, w = height, width
        while h > 64 and w > 64 and not sampling_fits(free_bytes, num_frames, h, w, True, True):
            h, w = max(64, (h * 3 // 4) // 64 * 64), max(64, (w * 3 // 4) // 64 * 64)
        if sampling_fits(free_bytes, num_frames, h, w, True, True):
            suggestions.append(f"--width {w} --height {h} --decoding-t 1 --memory offload")
    if not suggestions:
        return (f"nothing is expected to fit in {free_bytes / GIB:.1f} GiB of free GPU memory; free memory used by "
                "other processes (nvidia-smi), or use the tiny profile")
    return " or ".join(suggestions) + f" (planning estimates for {free_bytes / GIB:.1f} GiB free)"
