"""SVD's UNet taken apart: where its parameters are, and which of its layers mix frames.

``UNetSpatioTemporalConditionModel`` is an image UNet (Stable Diffusion 2.1's, which SVD was initialised from) with
temporal layers interleaved: every spatial ResNet block is followed by a temporal one (3-D convolutions over
frames), every spatial transformer (self- and cross-attention within a frame) by a temporal transformer (attention
across the frames at each pixel), and a learned blend (``AlphaBlender``, ``time_mixer``) mixes the spatial and the
temporal output: ``out = alpha * spatial + (1 - alpha) * temporal`` with ``alpha = sigmoid(mix_factor)``.

:func:`parameter_groups` counts parameters by kind of layer; :func:`frame_mixing` changes one frame at the input of
each layer and reports whether the layer's output for the *other* frames moved (it mixes information across frames)
or not (it works frame by frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: (kind, test on a parameter's dotted name), first match wins; the order matters ("temporal" before "spatial")
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("temporal ResNet (3-D conv over frames)", ("temporal_res_block",)),
    ("temporal attention (across frames)", ("temporal_transformer_blocks", "time_pos_embed")),
    ("spatial/temporal blend (AlphaBlender)", ("time_mixer",)),
    ("spatial ResNet (2-D conv, per frame)", ("spatial_res_block", "downsamplers", "upsamplers", "conv_in",
                                              "conv_out", "conv_norm_out")),
    ("spatial attention (per frame; cross-attention to CLIP)", ("transformer_blocks", "proj_in", "proj_out",
                                                                 "attentions")),
    ("noise-level and added_time_ids embeddings", ("time_embedding", "add_embedding")),
)


def group_of(name: str) -> str:
    """The :data:`GROUPS` kind of a parameter, from its dotted name (``other`` if none matches)."""
    parts = set(name.split("."))
    for kind, keys in GROUPS:
        if parts & set(keys):
            return kind
    return "other"


def parameter_groups(unet: torch.nn.Module) -> dict[str, int]:
    """Parameters per kind of layer (works on the ``meta`` device: shapes only), in :data:`GROUPS` order."""
    counts = {kind: 0 for kind, _ in GROUPS}
    for name, param in unet.named_parameters():
        kind = group_of(name)
        counts[kind] = counts.get(kind, 0) + param.numel()
    return counts


@dataclass
class LayerMixing:
    name: str            # the module's dotted name
    kind: str            # a :data:`GROUPS` kind
    leak: float          # max change of the *other* frames' outputs / max change of frame 0's output
    mixes_frames: bool


def frame_mixing(unet: torch.nn.Module, latents: torch.Tensor, cond: dict, tolerance: float = 1e-6,
                 seed: int = 0) -> list[LayerMixing]:
    """Which layers mix frames: each spatial/temporal block is run again on its own recorded inputs with frame 0
    changed, and the change of the *other* frames' outputs is measured.

    A layer that works frame by frame (a 2-D convolution, attention within a frame) leaves the other frames
    exactly as they were; a temporal convolution changes its neighbours, temporal attention every frame. (Shuffling
    the frames would not tell: attention without position embeddings just shuffles its output along.) ``latents``:
    the UNet input (B, T, C, H, W); ``cond``: its other inputs (``timestep``, ``encoder_hidden_states``,
    ``added_time_ids``).
    """
    batch, frames = latents.shape[:2]
    watched = {name: module for name, module in unet.named_modules()
               if name.endswith(("spatial_res_block", "temporal_res_block", "time_mixer"))
               or name.split(".")[-2:-1] in (["transformer_blocks"], ["temporal_transformer_blocks"])}
    calls: dict[str, tuple] = {}

    def hook(name):
        def record(module, args, kwargs):
            calls.setdefault(name, (args, kwargs))
        return record

    handles = [module.register_forward_pre_hook(hook(name), with_kwargs=True) for name, module in watched.items()]
    try:
        with torch.no_grad():
            unet(latents, **cond)
    finally:
        for handle in handles:
            handle.remove()
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for name, (args, kwargs) in calls.items():
        module = watched[name]

        def perturbed(value):
            axis = _frame_axis(value, batch, frames)
            if axis is None or not value.is_floating_point():
                return value
            changed = value.clone()
            first = changed.select(axis, 0) if axis >= 0 else changed.reshape(batch, frames, -1)[:, 0]
            first += torch.randn(first.shape, generator=generator).to(first) * value.std()
            return changed

        with torch.no_grad():
            before = _output(module(*args, **kwargs))
            after = _output(module(*[perturbed(a) for a in args], **{k: perturbed(v) for k, v in kwargs.items()}))
        change = _by_frame((after - before).abs(), batch, frames)
        own, others = float(change[:, 0].max()), float(change[:, 1:].max()) if frames > 1 else 0.0
        if own == 0:
            raise ValueError(f"changing frame 0 did not reach the output of {name}: cannot tell whether it mixes")
        rows.append(LayerMixing(name, group_of(name + ".weight"), others / own, others / own > tolerance))
    return rows


def _output(output) -> torch.Tensor:
    return (output[0] if isinstance(output, tuple) else output).detach().float()


def _frame_axis(x, batch: int, frames: int) -> int | None:
    """Where an activation keeps its frames: -1 for frames folded into the batch (B*T, ...), as most layers see
    them; 2 for (B, C, T, H, W), a temporal ResNet's input; 1 for (B, T, ...), its noise embedding; None: no frames."""
    if not isinstance(x, torch.Tensor) or x.ndim < 2:
        return None
    if x.shape[0] == batch * frames and frames > 1:
        return -1
    if x.shape[0] == batch and x.ndim == 5 and x.shape[2] == frames:
        return 2
    if x.shape[0] == batch and x.shape[1] == frames:
        return 1
    return None


def _by_frame(x: torch.Tensor, batch: int, frames: int) -> torch.Tensor:
    """``x`` as (B, T, -1) whatever its frame layout (see :func:`_frame_axis`)."""
    axis = _frame_axis(x, batch, frames)
    if axis is None:
        raise ValueError(f"cannot find the frame axis of an activation shaped {tuple(x.shape)}")
    if axis == -1:
        return x.reshape(batch, frames, -1)
    return x.movedim(axis, 1).reshape(batch, frames, -1)
