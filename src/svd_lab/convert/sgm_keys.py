r"""sgm key -> diffusers/transformers key: the name mapping of an sgm SVD file, as pure functions on strings.

Nothing here reads tensors or imports torch: every function takes a key (and what the key list says about the
layout, :class:`KeyLayout`) and returns where the tensor goes, as :class:`Target` rows
``(component, diffusers key, transform)``. A :class:`Transform` is data -- the one way a tensor changes on its way
(1x1-conv weight -> Linear weight, packed q/k/v split, transposed projection) -- with its shape rule and its tensor
operation defined together in one table (:data:`_RULES`).

=============================  ==============================================  ===================================
sgm prefix                     diffusers / transformers module                 what the names need
=============================  ==============================================  ===================================
``model.diffusion_model.``     ``UNetSpatioTemporalConditionModel``            input/output block index arithmetic
``conditioner.embedders.0.``   ``CLIPVisionModelWithProjection``               packed qkv split, ``proj`` transposed
``...open_clip.model.visual.``
``conditioner.embedders.3.``   ``AutoencoderKLTemporalDecoder.encoder``        the encoder SVD really uses for the
``encoder.{encoder,quant_conv}``  and ``.quant_conv``                          conditioning frame (not first_stage)
``first_stage_model.decoder.``  ``AutoencoderKLTemporalDecoder.decoder``       ``up.i`` -> ``up_blocks.(n-1-i)``;
                               (``AutoencoderKL`` for *image-decoder* files)   1x1-conv attention -> Linear
=============================  ==============================================  ===================================

Everything else in a file must be on :data:`IGNORED`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, NamedTuple

from svd_lab.errors import SgmCheckpointError
from svd_lab.svd.versions import DECODER_IMAGE, DECODER_TEMPORAL

if TYPE_CHECKING:  # annotations only: this module never imports torch
    import torch

# --------------------------------------------------------------------------------------------- file layout
UNET_PREFIX = "model.diffusion_model."
CLIP_PREFIX = "conditioner.embedders.0.open_clip.model.visual."
COND_VAE_PREFIX = "conditioner.embedders.3.encoder."
FIRST_STAGE_PREFIX = "first_stage_model."

TEMPORAL, IMAGE = DECODER_TEMPORAL, DECODER_IMAGE

#: Tensors of an sgm SVD file that inference never reads, with the reason. Exact keys end without a dot,
#: whole subtrees end with one. Nothing else may be left unused.
IGNORED: dict[str, str] = {
    "conditioner.embedders.0.open_clip.model.token_embedding.weight":
        "OpenCLIP text tower leftover (FrozenOpenCLIPImageEmbedder deletes only the text transformer)",
    "conditioner.embedders.0.open_clip.model.positional_embedding": "OpenCLIP text tower leftover",
    "conditioner.embedders.0.open_clip.model.ln_final.weight": "OpenCLIP text tower leftover",
    "conditioner.embedders.0.open_clip.model.ln_final.bias": "OpenCLIP text tower leftover",
    "conditioner.embedders.0.open_clip.model.text_projection": "OpenCLIP text tower leftover",
    "conditioner.embedders.0.open_clip.model.logit_scale": "OpenCLIP text tower leftover (contrastive loss scale)",
    "conditioner.embedders.3.encoder.decoder.":
        "decoder of the conditioning-frame autoencoder (AutoencoderKLModeOnly): SVD only encodes with it",
    "conditioner.embedders.3.encoder.post_quant_conv.": "belongs to that unused decoder",
    "first_stage_model.encoder.":
        "first-stage encoder: SVD sampling never encodes with it (the conditioning frame goes through "
        "conditioner.embedders.3)",
    "first_stage_model.quant_conv.": "image-decoder files: belongs to the unused first-stage encoder",
}


def ignored_reason(key: str) -> str | None:
    """Why ``key`` is not converted (a reason from :data:`IGNORED`), or None when it must be converted."""
    for pattern, reason in IGNORED.items():
        if key == pattern or (pattern.endswith(".") and key.startswith(pattern)):
            return reason
    return None


# --------------------------------------------------------------------------------------------- transforms
class Transform(str, Enum):
    """How one file tensor becomes one module tensor (a ``str`` enum: ``Transform("copy")`` works).

    - ``copy``: unchanged;
    - ``squeeze_1x1``: a (C_out, C_in, 1, 1) 1x1-conv weight -> a (C_out, C_in) Linear weight;
    - ``transpose``: OpenCLIP's ``proj`` (W, D), used as ``x @ proj``, -> a Linear weight (D, W);
    - ``chunk_q`` / ``chunk_k`` / ``chunk_v``: third 0, 1, 2 along dim 0 of nn.MultiheadAttention's packed
      ``[q; k; v]`` tensor, (3 W, ...) -> (W, ...).
    """

    COPY = "copy"
    SQUEEZE_1X1 = "squeeze_1x1"
    TRANSPOSE = "transpose"
    CHUNK_Q = "chunk_q"
    CHUNK_K = "chunk_k"
    CHUNK_V = "chunk_v"

    def output_shape(self, shape: Iterable[int]) -> tuple[int, ...] | None:
        """The shape after the transform, or None when the source shape does not allow it."""
        return _RULES[self].shape(tuple(shape))

    def apply(self, tensor: torch.Tensor) -> torch.Tensor:
        """The transformed tensor (a view of ``tensor`` where possible; the caller copies)."""
        return _RULES[self].tensor(tensor)


@dataclass(frozen=True)
class _Rule:
    """A transform's shape rule (shape -> shape or None) beside its tensor operation, so the two cannot drift."""

    shape: Callable[[tuple[int, ...]], tuple[int, ...] | None]
    tensor: Callable[[torch.Tensor], torch.Tensor]


def _chunk_rule(index: int) -> _Rule:
    """Third ``index`` of a packed (3 W, ...) tensor along dim 0."""
    return _Rule(
        shape=lambda s: (s[0] // 3, *s[1:]) if len(s) >= 1 and s[0] % 3 == 0 else None,
        tensor=lambda t: t.chunk(3, dim=0)[index],
    )


_RULES: dict[Transform, _Rule] = {
    Transform.COPY: _Rule(shape=lambda s: s, tensor=lambda t: t),
    Transform.SQUEEZE_1X1: _Rule(shape=lambda s: s[:2] if len(s) == 4 and s[2:] == (1, 1) else None,
                                 tensor=lambda t: t[:, :, 0, 0]),
    Transform.TRANSPOSE: _Rule(shape=lambda s: (s[1], s[0]) if len(s) == 2 else None, tensor=lambda t: t.t()),
    Transform.CHUNK_Q: _chunk_rule(0),
    Transform.CHUNK_K: _chunk_rule(1),
    Transform.CHUNK_V: _chunk_rule(2),
}


class Target(NamedTuple):
    """Where one sgm tensor (or a part of it) goes: component (``unet``, ``vae``, ``image_encoder``), key there."""

    component: str
    key: str
    transform: Transform = Transform.COPY


# --------------------------------------------------------------------------------------------- layout from the keys
@dataclass(frozen=True)
class KeyLayout:
    """What the names of some keys depend on, read from the key list itself.

    Attributes:
        unet_layers_per_block: resnets per UNet level (``L``: input blocks are numbered in groups of ``L + 1``).
        unet_levels: UNet resolution levels (downsamplers + 1).
        decoder_levels: first-stage decoder levels (sgm numbers them from the output side).
        decoder_kind: ``"temporal"`` or ``"image"`` (see :func:`detect_decoder_kind`).
    """

    unet_layers_per_block: int
    unet_levels: int
    decoder_levels: int
    decoder_kind: str


def under(keys: Iterable[str], prefix: str) -> dict[str, str]:
    """{rest: full key} for the keys under ``prefix``."""
    return {k[len(prefix):]: k for k in keys if k.startswith(prefix)}


def indices(rests: Iterable[str], pattern: str) -> list[int]:
    """Sorted distinct integers captured by ``pattern`` (one group) at the start of the names."""
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for r in rests if (m := rx.match(r))})


def detect_decoder_kind(keys: Iterable[str]) -> str:
    """``"temporal"`` or ``"image"`` from the key names alone (file names are not trusted).

    Temporal files (svd, svd_xt, svd_xt_1_1) have ``first_stage_model.decoder.conv_out.time_mix_conv.*`` and
    ``...mix_factor`` tensors; image-decoder files have a plain 2D decoder plus ``first_stage_model.post_quant_conv``.

    Raises:
        SgmCheckpointError: not an sgm file, not a video model, no image embedder or no decoder.
    """
    keys = set(keys)
    if not any(k.startswith(UNET_PREFIX) for k in keys):
        raise SgmCheckpointError(f"no {UNET_PREFIX}* tensors: not an sgm (generative-models) checkpoint")
    if not any(k.startswith(UNET_PREFIX) and ".time_stack." in k for k in keys):
        raise SgmCheckpointError("the UNet has no temporal layers (time_stack): an image model, not Stable Video "
                                 "Diffusion")
    if not any(k.startswith(CLIP_PREFIX) for k in keys):
        raise SgmCheckpointError(f"no OpenCLIP image embedder ({CLIP_PREFIX}*): not an SVD image-to-video checkpoint")
    if FIRST_STAGE_PREFIX + "decoder.conv_out.time_mix_conv.weight" in keys:
        return TEMPORAL
    if FIRST_STAGE_PREFIX + "post_quant_conv.weight" in keys:
        return IMAGE
    raise SgmCheckpointError(f"no first-stage decoder ({FIRST_STAGE_PREFIX}decoder.*): the file is incomplete")


def unet_levels(keys: Iterable[str]) -> tuple[int, int]:
    """(layers per block, number of levels) of the VideoUNet from its downsampler names.

    sgm's ``input_blocks.k`` for k >= 1 come in groups of ``L + 1`` per level: L resnet(+attention) blocks, then the
    downsampler ``input_blocks.(L+1)*(i+1).0.op`` -- except after the last level, which has none.
    """
    down_ops = indices(under(keys, UNET_PREFIX), r"input_blocks\.(\d+)\.0\.op\.weight")
    if not down_ops:
        raise SgmCheckpointError("UNet without downsampling layers (input_blocks.*.0.op): not an SVD VideoUNet")
    layers = down_ops[0] - 1
    num_levels = len(down_ops) + 1
    if layers < 1 or down_ops != [(layers + 1) * (i + 1) for i in range(num_levels - 1)]:
        raise SgmCheckpointError(f"UNet downsamplers at input_blocks {down_ops}: not the regular layout of an SVD UNet")
    return layers, num_levels


def key_layout(keys: Iterable[str]) -> KeyLayout:
    """The :class:`KeyLayout` of an sgm SVD key list (raises SgmCheckpointError when it is not one)."""
    keys = list(keys)
    decoder_kind = detect_decoder_kind(keys)
    layers, levels = unet_levels(keys)
    decoder_levels = len(indices(under(keys, FIRST_STAGE_PREFIX + "decoder."), r"up\.(\d+)\."))
    return KeyLayout(layers, levels, decoder_levels, decoder_kind)


# --------------------------------------------------------------------------------------------- UNet
# sgm VideoUNet -> diffusers UNetSpatioTemporalConditionModel
_RESBLOCK_PARTS = {  # sgm ResBlock submodule -> diffusers ResnetBlock2D / TemporalResnetBlock submodule
    "in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
    "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut",
}
_UNET_SIMPLE = {"time_embed.0.": "time_embedding.linear_1.", "time_embed.2.": "time_embedding.linear_2.",
                "label_emb.0.0.": "add_embedding.linear_1.", "label_emb.0.2.": "add_embedding.linear_2.",
                "input_blocks.0.0.": "conv_in.", "out.0.": "conv_norm_out.", "out.2.": "conv_out."}


def _video_resblock_name(rest: str) -> str | None:
    """sgm ``VideoResBlock`` tensor name -> diffusers ``SpatioTemporalResBlock`` tensor name."""
    if rest == "time_mixer.mix_factor":
        return rest  # same convention in both: alpha * spatial + (1 - alpha) * temporal
    branch = "spatial_res_block"
    if rest.startswith("time_stack."):
        branch, rest = "temporal_res_block", rest[len("time_stack."):]
    for sgm_part, diff_part in _RESBLOCK_PARTS.items():
        if rest.startswith(sgm_part + "."):
            return f"{branch}.{diff_part}.{rest[len(sgm_part) + 1:]}"
    return None


def _video_transformer_name(rest: str) -> str | None:
    """sgm ``SpatialVideoTransformer`` tensor name -> diffusers ``TransformerSpatioTemporalModel`` tensor name."""
    if rest.startswith("time_stack."):  # VideoTransformerBlock == TemporalBasicTransformerBlock (same inner names)
        return "temporal_transformer_blocks." + rest[len("time_stack."):]
    if rest.startswith("time_pos_embed.0."):
        return "time_pos_embed.linear_1." + rest[len("time_pos_embed.0."):]
    if rest.startswith("time_pos_embed.2."):
        return "time_pos_embed.linear_2." + rest[len("time_pos_embed.2."):]
    if rest.split(".")[0] in ("norm", "proj_in", "proj_out", "transformer_blocks", "time_mixer"):
        return rest
    return None


def unet_key(rest: str, layers_per_block: int) -> str | None:
    """sgm ``model.diffusion_model.<rest>`` -> diffusers UNet key (None if the name is not part of a VideoUNet).

    Index arithmetic (L = layers_per_block): ``input_blocks.0`` is conv_in; ``input_blocks.k`` (k >= 1) is level
    ``(k-1) // (L+1)``, position ``(k-1) % (L+1)`` -- positions < L hold ``[resnet, attention]``, position L the
    downsampler. ``output_blocks.k`` is up level ``k // (L+1)``, resnet ``k % (L+1)``, followed by an attention
    and/or an upsampler ``conv``.
    """
    for sgm_part, diff_part in _UNET_SIMPLE.items():
        if rest.startswith(sgm_part):
            return diff_part + rest[len(sgm_part):]
    if m := re.match(r"input_blocks\.(\d+)\.(\d+)\.(.+)", rest):
        k, part, tail = int(m.group(1)), int(m.group(2)), m.group(3)
        level, pos = divmod(k - 1, layers_per_block + 1)
        if pos == layers_per_block:
            return f"down_blocks.{level}.downsamplers.0.conv.{tail[3:]}" if tail.startswith("op.") else None
        if part == 0:
            inner = _video_resblock_name(tail)
            return inner and f"down_blocks.{level}.resnets.{pos}.{inner}"
        inner = _video_transformer_name(tail)
        return inner and f"down_blocks.{level}.attentions.{pos}.{inner}"
    if m := re.match(r"middle_block\.([012])\.(.+)", rest):  # resnet, attention, resnet
        part, tail = int(m.group(1)), m.group(2)
        if part == 1:
            inner = _video_transformer_name(tail)
            return inner and f"mid_block.attentions.0.{inner}"
        inner = _video_resblock_name(tail)
        return inner and f"mid_block.resnets.{part // 2}.{inner}"
    if m := re.match(r"output_blocks\.(\d+)\.(\d+)\.(.+)", rest):
        k, part, tail = int(m.group(1)), int(m.group(2)), m.group(3)
        level, pos = divmod(k, layers_per_block + 1)
        if part == 0:
            inner = _video_resblock_name(tail)
            return inner and f"up_blocks.{level}.resnets.{pos}.{inner}"
        if tail.startswith("conv."):  # Upsample: nearest x2 then conv
            return f"up_blocks.{level}.upsamplers.0.conv.{tail[5:]}"
        inner = _video_transformer_name(tail)
        return inner and f"up_blocks.{level}.attentions.{pos}.{inner}"
    return None


# --------------------------------------------------------------------------------------------- autoencoder
# sgm Encoder / VideoDecoder / Decoder -> diffusers Encoder / TemporalDecoder / Decoder (keys relative to ``vae.``)
_ATTN_PARTS = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
_AE_RESNET_PARTS = {"norm1": "norm1", "conv1": "conv1", "norm2": "norm2", "conv2": "conv2",
                    "nin_shortcut": "conv_shortcut"}
_ENCODER_SIMPLE = {"conv_in.": "encoder.conv_in.", "conv_out.": "encoder.conv_out.",
                   "norm_out.": "encoder.conv_norm_out."}
_DECODER_SIMPLE = {"conv_in.": "decoder.conv_in.", "conv_out.": "decoder.conv_out.",
                   "norm_out.": "decoder.conv_norm_out."}


def _ae_attention(rest: str, prefix: str) -> tuple[str, Transform] | None:
    """sgm ``AttnBlock`` (1x1 convs) -> diffusers ``Attention`` (Linear layers, one head)."""
    part, _, param = rest.rpartition(".")
    if part not in _ATTN_PARTS:
        return None
    transform = Transform.SQUEEZE_1X1 if param == "weight" and part != "norm" else Transform.COPY
    return f"{prefix}.{_ATTN_PARTS[part]}.{param}", transform


def _ae_resnet(rest: str, temporal: bool) -> str | None:
    """sgm ``ResnetBlock`` / temporal_ae ``VideoResBlock`` -> diffusers ``ResnetBlock2D`` / ``SpatioTemporalResBlock``.

    For the VideoResBlock sgm mixes ``alpha * temporal + (1 - alpha) * spatial`` (the UNet's opposite) and keeps
    ``mix_factor`` on the block; diffusers' TemporalDecoder builds its AlphaBlender with
    ``switch_spatial_to_temporal_mix=True`` -- the same convention -- so the value is copied unchanged.
    """
    if temporal and rest == "mix_factor":
        return "time_mixer.mix_factor"
    if temporal and rest.startswith("time_stack."):
        inner = _video_resblock_name(rest)  # time_stack.{in,out}_layers.* -> temporal_res_block.*
        return inner if inner and inner.startswith("temporal_res_block.") else None
    part, _, param = rest.partition(".")
    if part not in _AE_RESNET_PARTS or param not in ("weight", "bias"):
        return None
    name = f"{_AE_RESNET_PARTS[part]}.{param}"
    return f"spatial_res_block.{name}" if temporal else name


def encoder_key(rest: str) -> tuple[str, Transform] | None:
    """sgm ``Encoder`` tensor (under ``conditioner.embedders.3.encoder.encoder.``) -> diffusers ``vae.encoder`` key.

    Same level order in both.
    """
    for sgm_part, diff_part in _ENCODER_SIMPLE.items():
        if rest.startswith(sgm_part):
            return diff_part + rest[len(sgm_part):], Transform.COPY
    if m := re.match(r"mid\.block_([12])\.(.+)", rest):
        inner = _ae_resnet(m.group(2), temporal=False)
        return (f"encoder.mid_block.resnets.{int(m.group(1)) - 1}.{inner}", Transform.COPY) if inner else None
    if rest.startswith("mid.attn_1."):
        return _ae_attention(rest[len("mid.attn_1."):], "encoder.mid_block.attentions.0")
    if m := re.match(r"down\.(\d+)\.block\.(\d+)\.(.+)", rest):
        inner = _ae_resnet(m.group(3), temporal=False)
        return (f"encoder.down_blocks.{m.group(1)}.resnets.{m.group(2)}.{inner}", Transform.COPY) if inner else None
    if m := re.match(r"down\.(\d+)\.downsample\.conv\.(.+)", rest):
        return f"encoder.down_blocks.{m.group(1)}.downsamplers.0.conv.{m.group(2)}", Transform.COPY
    return None


def decoder_key(rest: str, num_levels: int, temporal: bool) -> tuple[str, Transform] | None:
    """sgm ``VideoDecoder`` / ``Decoder`` tensor (under ``first_stage_model.decoder.``) -> diffusers
    ``vae.decoder`` key.

    sgm counts decoder levels from the output side (``up.0`` is full resolution, built last) while diffusers
    counts them in execution order, so ``up.i`` <-> ``up_blocks.(n-1-i)``.
    """
    if rest.startswith("conv_out.time_mix_conv."):  # AE3DConv: a (3,1,1) Conv3d over frames after conv_out
        return ("decoder.time_conv_out." + rest[len("conv_out.time_mix_conv."):], Transform.COPY) if temporal else None
    for sgm_part, diff_part in _DECODER_SIMPLE.items():
        if rest.startswith(sgm_part):
            return diff_part + rest[len(sgm_part):], Transform.COPY
    if m := re.match(r"mid\.block_([12])\.(.+)", rest):
        inner = _ae_resnet(m.group(2), temporal)
        return (f"decoder.mid_block.resnets.{int(m.group(1)) - 1}.{inner}", Transform.COPY) if inner else None
    if rest.startswith("mid.attn_1."):
        return _ae_attention(rest[len("mid.attn_1."):], "decoder.mid_block.attentions.0")
    if m := re.match(r"up\.(\d+)\.block\.(\d+)\.(.+)", rest):
        inner = _ae_resnet(m.group(3), temporal)
        level = num_levels - 1 - int(m.group(1))
        return (f"decoder.up_blocks.{level}.resnets.{m.group(2)}.{inner}", Transform.COPY) if inner else None
    if m := re.match(r"up\.(\d+)\.upsample\.conv\.(.+)", rest):
        level = num_levels - 1 - int(m.group(1))
        return f"decoder.up_blocks.{level}.upsamplers.0.conv.{m.group(2)}", Transform.COPY
    return None


# --------------------------------------------------------------------------------------------- OpenCLIP visual tower
# OpenCLIP VisionTransformer -> transformers CLIPVisionModelWithProjection
_CLIP_SIMPLE = {
    "class_embedding": "vision_model.embeddings.class_embedding",
    "conv1.weight": "vision_model.embeddings.patch_embedding.weight",  # no bias in either
    "positional_embedding": "vision_model.embeddings.position_embedding.weight",
    "ln_pre.weight": "vision_model.pre_layrnorm.weight",  # sic: transformers' spelling
    "ln_pre.bias": "vision_model.pre_layrnorm.bias",
    "ln_post.weight": "vision_model.post_layernorm.weight",
    "ln_post.bias": "vision_model.post_layernorm.bias",
}
_CLIP_LAYER_PARTS = {"attn.out_proj.": "self_attn.out_proj.", "ln_1.": "layer_norm1.", "ln_2.": "layer_norm2.",
                     "mlp.c_fc.": "mlp.fc1.", "mlp.c_proj.": "mlp.fc2."}
_QKV = ((Transform.CHUNK_Q, "q"), (Transform.CHUNK_K, "k"), (Transform.CHUNK_V, "v"))


def clip_keys(rest: str) -> list[tuple[str, Transform]]:
    """OpenCLIP ``visual.<rest>`` -> [(transformers key, transform)]: three for a packed qkv tensor, [] if unknown."""
    if rest in _CLIP_SIMPLE:
        return [(_CLIP_SIMPLE[rest], Transform.COPY)]
    if rest == "proj":  # OpenCLIP computes x @ proj with proj (W, D); a Linear computes x @ weight.T
        return [("visual_projection.weight", Transform.TRANSPOSE)]
    m = re.match(r"transformer\.resblocks\.(\d+)\.(.+)", rest)
    if not m:
        return []
    layer, tail = f"vision_model.encoder.layers.{m.group(1)}", m.group(2)
    if tail in ("attn.in_proj_weight", "attn.in_proj_bias"):  # nn.MultiheadAttention packs [q; k; v] on dim 0
        param = "weight" if tail.endswith("weight") else "bias"
        return [(f"{layer}.self_attn.{p}_proj.{param}", transform) for transform, p in _QKV]
    for sgm_part, diff_part in _CLIP_LAYER_PARTS.items():
        if tail.startswith(sgm_part):
            return [(f"{layer}.{diff_part}{tail[len(sgm_part):]}", Transform.COPY)]
    return []


# --------------------------------------------------------------------------------------------- one key
def targets_of(key: str, layout: KeyLayout) -> list[Target]:
    """Every place one sgm key goes; [] when the key belongs to no known module (the caller names it).

    ``layout`` comes from :func:`key_layout` on the whole key list (level counts decide some names).
    """
    if key.startswith(UNET_PREFIX):
        name = unet_key(key[len(UNET_PREFIX):], layout.unet_layers_per_block)
        return [Target("unet", name)] if name else []
    if key.startswith(CLIP_PREFIX):
        return [Target("image_encoder", name, t) for name, t in clip_keys(key[len(CLIP_PREFIX):])]
    found = None
    if key.startswith(COND_VAE_PREFIX + "encoder."):
        found = encoder_key(key[len(COND_VAE_PREFIX + "encoder."):])
    elif key.startswith(COND_VAE_PREFIX + "quant_conv."):
        found = "quant_conv." + key[len(COND_VAE_PREFIX + "quant_conv."):], Transform.COPY
    elif key.startswith(FIRST_STAGE_PREFIX + "decoder."):
        found = decoder_key(key[len(FIRST_STAGE_PREFIX + "decoder."):], layout.decoder_levels,
                            layout.decoder_kind == TEMPORAL)
    elif layout.decoder_kind == IMAGE and key.startswith(FIRST_STAGE_PREFIX + "post_quant_conv."):
        found = "post_quant_conv." + key[len(FIRST_STAGE_PREFIX + "post_quant_conv."):], Transform.COPY
    return [Target("vae", *found)] if found else []
