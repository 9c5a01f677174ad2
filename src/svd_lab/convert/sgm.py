r"""Load Stability AI's single-file sgm checkpoints (``svd.safetensors`` and friends) into diffusers/transformers.

Stability's ``generative-models`` code ("sgm") saves the whole ``DiffusionEngine`` state dict in one file:
the video UNet, the OpenCLIP image embedder, the autoencoder that encodes the conditioning frame and the
first-stage (video) autoencoder. diffusers cannot read these files (no ``from_single_file`` for SVD:
diffusers #6839, #7979). This module maps every tensor onto

=============================  ==============================================  ===================================
sgm prefix                     diffusers / transformers module                 notes
=============================  ==============================================  ===================================
``model.diffusion_model.``     ``UNetSpatioTemporalConditionModel``            GroupNorm eps patched to sgm's 1e-5
``conditioner.embedders.0.``   ``CLIPVisionModelWithProjection``               packed qkv split, ``proj`` transposed
``...open_clip.model.visual.``
``conditioner.embedders.3.``   ``AutoencoderKLTemporalDecoder.encoder``        the encoder SVD really uses for the
``encoder.{encoder,quant_conv}``  and ``.quant_conv``                          conditioning frame (not first_stage)
``first_stage_model.decoder.``  ``AutoencoderKLTemporalDecoder.decoder``       ``up.i`` -> ``up_blocks.(n-1-i)``;
                               (``AutoencoderKL`` for *image-decoder* files)   1x1-conv attention -> Linear
=============================  ==============================================  ===================================

Everything else in the file must be on :data:`IGNORED`, a short list of tensors that inference never reads
(OpenCLIP text-tower leftovers, the conditioning autoencoder's decoder, the first-stage encoder). Any other key
is an error that names it, and so is any module tensor the file does not fill: loading is strict.

How a load runs (peak memory ~ model size in the target dtype + the largest tensor, never the file size):

1. read the header only (names, shapes, dtypes: no tensor data) and detect the variant from the keys
   (temporal video decoder or per-frame image decoder; see :func:`plan_conversion`);
2. infer the diffusers configs from the shapes, build the modules on the ``meta`` device (no memory);
3. check every shape of the plan against the modules *before* anything is copied;
4. read the file tensor by tensor with ``safe_open`` (``pread`` backend: no memory map that would count the
   whole file in the resident set) and put each tensor, converted to the target dtype and device, into its
   module.

Numbers that are not in the weights (head sizes of the attention layers, VAE scaling factor 0.18215) are the
values of Stability's configs: 64 channels per attention head in the UNet (``num_head_channels: 64``) and in
OpenCLIP ViT-H/14 (``head_width`` 64). Files with other head sizes (the course's tiny test model) are recognised
from svd-lab's registered tiny configuration, or the sizes can be passed explicitly.

Numerics (checked against sgm's own outputs in tests/test_sgm_equivalence.py): sgm normalises every UNet
ResBlock with GroupNorm eps 1e-5 where diffusers' spatio-temporal down/up blocks use 1e-6;
:func:`match_sgm_groupnorm_eps` sets sgm's value (max |diff| on the tiny UNet 2.9e-5 -> 6.9e-7). The value is
not part of diffusers' config, so a folder written by :func:`convert_sgm_to_diffusers` records it in
``svd_lab_conversion.json`` and :func:`apply_conversion_record` re-applies it after ``from_pretrained``.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from svd_lab.cli import UserError
from svd_lab.svd.versions import DECODER_IMAGE, DECODER_TEMPORAL, VERSIONS

# --------------------------------------------------------------------------------------------- file layout
UNET_PREFIX = "model.diffusion_model."
CLIP_PREFIX = "conditioner.embedders.0.open_clip.model.visual."
COND_VAE_PREFIX = "conditioner.embedders.3.encoder."
FIRST_STAGE_PREFIX = "first_stage_model."

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

#: Stability's values for numbers that are not stored in the weights.
SGM_UNET_HEAD_CHANNELS = 64  # svd.yaml: num_head_channels 64 -> heads (5, 10, 20, 20)
SGM_CLIP_HEAD_WIDTH = 64  # OpenCLIP ViT-H-14: width 1280, head_width 64 -> 16 heads
SGM_VAE_SCALING_FACTOR = 0.18215  # svd.yaml: scale_factor
SGM_UNET_GROUPNORM_EPS = 1e-5  # sgm's normalization(): GroupNorm32(32, C), torch's default eps

TEMPORAL, IMAGE = DECODER_TEMPORAL, DECODER_IMAGE
CONVERSION_RECORD = "svd_lab_conversion.json"


class SgmCheckpointError(UserError, ValueError):
    """The file is not an sgm SVD checkpoint this converter can load; the message names the offending keys.

    A :class:`svd_lab.cli.UserError`, so the command line prints it as one line (exit status 2).
    """


# --------------------------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class TensorSource:
    """Where one diffusers tensor comes from: an sgm key and how the tensor is reshaped on the way.

    ``transform``: ``copy``; ``squeeze_1x1`` ((C_out, C_in, 1, 1) 1x1-conv weight -> (C_out, C_in) Linear
    weight); ``transpose`` (OpenCLIP ``proj`` (W, D), used as ``x @ proj``, -> Linear weight (D, W));
    ``chunk_q`` / ``chunk_k`` / ``chunk_v`` (third 0, 1, 2 of a packed ``[q; k; v]`` tensor along dim 0).
    """

    key: str
    transform: str = "copy"

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...] | None:
        """The shape after the transform, or None when the source shape does not allow it."""
        t = self.transform
        if t == "copy":
            return tuple(shape)
        if t == "squeeze_1x1":
            return tuple(shape[:2]) if len(shape) == 4 and shape[2:] == (1, 1) else None
        if t == "transpose":
            return (shape[1], shape[0]) if len(shape) == 2 else None
        if t in ("chunk_q", "chunk_k", "chunk_v"):
            return (shape[0] // 3, *shape[1:]) if len(shape) >= 1 and shape[0] % 3 == 0 else None
        raise ValueError(f"unknown transform {t!r}")

    def apply(self, tensor: torch.Tensor) -> torch.Tensor:
        t = self.transform
        if t == "copy":
            return tensor
        if t == "squeeze_1x1":
            return tensor[:, :, 0, 0]
        if t == "transpose":
            return tensor.t()
        return tensor.chunk(3, dim=0)[("chunk_q", "chunk_k", "chunk_v").index(t)]


@dataclass
class ConversionPlan:
    """Everything decided from the file header, before any tensor data is read.

    Attributes:
        decoder_kind: ``"temporal"`` (VideoDecoder -> AutoencoderKLTemporalDecoder) or ``"image"`` (per-frame
            2D decoder -> AutoencoderKL), detected from the keys.
        configs: diffusers/transformers constructor arguments per component (``unet``, ``vae``, ``image_encoder``).
        targets: per component, diffusers key -> :class:`TensorSource`.
        ignored: sgm key -> reason, for the file's tensors on the :data:`IGNORED` list.
        source_shapes: every tensor of the file, key -> shape.
        profile: the svd-lab profile (``svd_lab.svd.configs.CONFIGS``) with these shapes: ``full`` for Stability's
            releases, ``tiny`` for the course's test model; ``full`` for unregistered sizes too.
    """

    decoder_kind: str
    configs: dict[str, dict[str, Any]]
    targets: dict[str, dict[str, TensorSource]]
    ignored: dict[str, str]
    source_shapes: dict[str, tuple[int, ...]]
    profile: str = "full"
    source_dtypes: dict[str, str] = field(default_factory=dict)

    @property
    def vae_class_name(self) -> str:
        return "AutoencoderKLTemporalDecoder" if self.decoder_kind == TEMPORAL else "AutoencoderKL"

    def target_shapes(self, component: str) -> dict[str, tuple[int, ...]]:
        """diffusers key -> shape the file provides (after the transform)."""
        return {k: src.output_shape(self.source_shapes[src.key]) for k, src in self.targets[component].items()}

    def used_keys(self) -> set[str]:
        return {src.key for comp in self.targets.values() for src in comp.values()}

    def summary(self) -> str:
        n_used = len(self.used_keys())
        return (f"sgm SVD checkpoint, {self.decoder_kind} decoder: {len(self.source_shapes)} tensors, {n_used} used, "
                f"{len(self.ignored)} ignored (unused by inference)")


def _is_ignored(key: str) -> str | None:
    for pattern, reason in IGNORED.items():
        if key == pattern or (pattern.endswith(".") and key.startswith(pattern)):
            return reason
    return None


def _sub(keys: Iterable[str], prefix: str) -> dict[str, str]:
    """{rest: full key} for keys under ``prefix``."""
    return {k[len(prefix):]: k for k in keys if k.startswith(prefix)}


def _indices(rests: Iterable[str], pattern: str) -> list[int]:
    """Sorted distinct integers captured by ``pattern`` (one group) at the start of the names."""
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for r in rests if (m := rx.match(r))})


# ---- UNet (sgm VideoUNet -> diffusers UNetSpatioTemporalConditionModel)
_RESBLOCK_PARTS = {  # sgm ResBlock submodule -> diffusers ResnetBlock2D / TemporalResnetBlock submodule
    "in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
    "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut",
}


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


def _unet_name(rest: str, layers_per_block: int) -> str | None:
    """sgm ``model.diffusion_model.<rest>`` -> diffusers UNet key (None if the name is not part of a VideoUNet).

    Index arithmetic (L = layers_per_block): ``input_blocks.0`` is conv_in; ``input_blocks.k`` (k >= 1) is level
    ``(k-1) // (L+1)``, position ``(k-1) % (L+1)`` -- positions < L hold ``[resnet, attention]``, position L the
    downsampler. ``output_blocks.k`` is up level ``k // (L+1)``, resnet ``k % (L+1)``, followed by an attention
    and/or an upsampler ``conv``.
    """
    simple = {"time_embed.0.": "time_embedding.linear_1.", "time_embed.2.": "time_embedding.linear_2.",
              "label_emb.0.0.": "add_embedding.linear_1.", "label_emb.0.2.": "add_embedding.linear_2.",
              "input_blocks.0.0.": "conv_in.", "out.0.": "conv_norm_out.", "out.2.": "conv_out."}
    for sgm_part, diff_part in simple.items():
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


# ---- autoencoder (sgm Encoder / VideoDecoder / Decoder -> diffusers Encoder / TemporalDecoder / Decoder)
_ATTN_PARTS = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}


def _ae_attention(rest: str, prefix: str) -> tuple[str, str] | None:
    """sgm ``AttnBlock`` (1x1 convs) -> diffusers ``Attention`` (Linear layers, one head)."""
    part, _, param = rest.rpartition(".")
    if part not in _ATTN_PARTS:
        return None
    transform = "squeeze_1x1" if param == "weight" and part != "norm" else "copy"
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
    names = {"norm1": "norm1", "conv1": "conv1", "norm2": "norm2", "conv2": "conv2", "nin_shortcut": "conv_shortcut"}
    if part not in names or param not in ("weight", "bias"):
        return None
    return f"spatial_res_block.{names[part]}.{param}" if temporal else f"{names[part]}.{param}"


def _encoder_target(rest: str) -> tuple[str, str] | None:
    """sgm ``Encoder`` tensor -> diffusers ``vae.encoder`` key (same level order in both)."""
    simple = {"conv_in.": "encoder.conv_in.", "conv_out.": "encoder.conv_out.", "norm_out.": "encoder.conv_norm_out.",
              "mid.block_1.": "encoder.mid_block.resnets.0.", "mid.block_2.": "encoder.mid_block.resnets.1."}
    for sgm_part, diff_part in simple.items():
        if rest.startswith(sgm_part):
            tail = rest[len(sgm_part):]
            if sgm_part.startswith("mid.block"):
                inner = _ae_resnet(tail, temporal=False)
                return (diff_part + inner, "copy") if inner else None
            return diff_part + tail, "copy"
    if rest.startswith("mid.attn_1."):
        return _ae_attention(rest[len("mid.attn_1."):], "encoder.mid_block.attentions.0")
    if m := re.match(r"down\.(\d+)\.block\.(\d+)\.(.+)", rest):
        inner = _ae_resnet(m.group(3), temporal=False)
        return (f"encoder.down_blocks.{m.group(1)}.resnets.{m.group(2)}.{inner}", "copy") if inner else None
    if m := re.match(r"down\.(\d+)\.downsample\.conv\.(.+)", rest):
        return f"encoder.down_blocks.{m.group(1)}.downsamplers.0.conv.{m.group(2)}", "copy"
    return None


def _decoder_target(rest: str, num_levels: int, temporal: bool) -> tuple[str, str] | None:
    """sgm ``VideoDecoder`` / ``Decoder`` tensor -> diffusers ``vae.decoder`` key.

    sgm counts decoder levels from the output side (``up.0`` is full resolution, built last) while diffusers
    counts them in execution order, so ``up.i`` <-> ``up_blocks.(n-1-i)``.
    """
    if rest.startswith("conv_out.time_mix_conv."):  # AE3DConv: a (3,1,1) Conv3d over frames after conv_out
        return ("decoder.time_conv_out." + rest[len("conv_out.time_mix_conv."):], "copy") if temporal else None
    simple = {"conv_in.": "decoder.conv_in.", "conv_out.": "decoder.conv_out.", "norm_out.": "decoder.conv_norm_out."}
    for sgm_part, diff_part in simple.items():
        if rest.startswith(sgm_part):
            return diff_part + rest[len(sgm_part):], "copy"
    if m := re.match(r"mid\.block_([12])\.(.+)", rest):
        inner = _ae_resnet(m.group(2), temporal)
        return (f"decoder.mid_block.resnets.{int(m.group(1)) - 1}.{inner}", "copy") if inner else None
    if rest.startswith("mid.attn_1."):
        return _ae_attention(rest[len("mid.attn_1."):], "decoder.mid_block.attentions.0")
    if m := re.match(r"up\.(\d+)\.block\.(\d+)\.(.+)", rest):
        inner = _ae_resnet(m.group(3), temporal)
        level = num_levels - 1 - int(m.group(1))
        return (f"decoder.up_blocks.{level}.resnets.{m.group(2)}.{inner}", "copy") if inner else None
    if m := re.match(r"up\.(\d+)\.upsample\.conv\.(.+)", rest):
        return f"decoder.up_blocks.{num_levels - 1 - int(m.group(1))}.upsamplers.0.conv.{m.group(2)}", "copy"
    return None


# ---- OpenCLIP visual tower -> transformers CLIPVisionModelWithProjection
def _clip_targets(rest: str) -> list[tuple[str, str]] | None:
    simple = {
        "class_embedding": "vision_model.embeddings.class_embedding",
        "conv1.weight": "vision_model.embeddings.patch_embedding.weight",  # no bias in either
        "positional_embedding": "vision_model.embeddings.position_embedding.weight",
        "ln_pre.weight": "vision_model.pre_layrnorm.weight",  # sic: transformers' spelling
        "ln_pre.bias": "vision_model.pre_layrnorm.bias",
        "ln_post.weight": "vision_model.post_layernorm.weight",
        "ln_post.bias": "vision_model.post_layernorm.bias",
    }
    if rest in simple:
        return [(simple[rest], "copy")]
    if rest == "proj":  # OpenCLIP computes x @ proj with proj (W, D); a Linear computes x @ weight.T
        return [("visual_projection.weight", "transpose")]
    m = re.match(r"transformer\.resblocks\.(\d+)\.(.+)", rest)
    if not m:
        return None
    layer, tail = f"vision_model.encoder.layers.{m.group(1)}", m.group(2)
    if tail in ("attn.in_proj_weight", "attn.in_proj_bias"):  # nn.MultiheadAttention packs [q; k; v] on dim 0
        param = "weight" if tail.endswith("weight") else "bias"
        return [(f"{layer}.self_attn.{p}_proj.{param}", f"chunk_{p}") for p in ("q", "k", "v")]
    names = {"attn.out_proj.": "self_attn.out_proj.", "ln_1.": "layer_norm1.", "ln_2.": "layer_norm2.",
             "mlp.c_fc.": "mlp.fc1.", "mlp.c_proj.": "mlp.fc2."}
    for sgm_part, diff_part in names.items():
        if tail.startswith(sgm_part):
            return [(f"{layer}.{diff_part}{tail[len(sgm_part):]}", "copy")]
    return None


# ---- configs from shapes
def _need(shapes: Mapping[str, tuple[int, ...]], key: str) -> tuple[int, ...]:
    if key not in shapes:
        raise SgmCheckpointError(f"not an sgm SVD checkpoint this converter understands: tensor {key!r} is missing")
    return tuple(shapes[key])


def _heads(channels: int, head_channels: int, what: str) -> int:
    if channels % head_channels:
        raise SgmCheckpointError(
            f"{what}: {channels} channels are not a multiple of the attention head size {head_channels}; "
            f"pass the head size of this model explicitly (it is not stored in the weights)")
    return channels // head_channels


def _infer_unet_config(shapes: Mapping[str, tuple[int, ...]], num_frames: int) -> dict:
    """UNetSpatioTemporalConditionModel arguments from the shapes, except ``num_attention_heads``."""
    unet = {r: shapes[k] for r, k in _sub(shapes, UNET_PREFIX).items()}
    down_ops = _indices(unet, r"input_blocks\.(\d+)\.0\.op\.weight")
    if not down_ops:
        raise SgmCheckpointError("UNet without downsampling layers (input_blocks.*.0.op): not an SVD VideoUNet")
    layers = down_ops[0] - 1
    num_levels = len(down_ops) + 1
    if layers < 1 or down_ops != [(layers + 1) * (i + 1) for i in range(num_levels - 1)]:
        raise SgmCheckpointError(
            f"UNet downsamplers at input_blocks {down_ops}: not the regular layout of an SVD UNet")
    first = [1 + i * (layers + 1) for i in range(num_levels)]  # first input block of each level
    channels = [_need(unet, f"input_blocks.{k}.0.out_layers.3.weight")[0] for k in first]
    down_attn = [f"input_blocks.{k}.1.proj_in.weight" in unet for k in first]
    up_attn = [f"output_blocks.{i * (layers + 1)}.1.proj_in.weight" in unet for i in range(num_levels)]
    attn_blocks = sorted({m.group(1) for r in unet if (m := re.match(r"(.+)\.transformer_blocks\.\d+\.", r))})
    if not attn_blocks:
        raise SgmCheckpointError("UNet without attention layers: not an SVD VideoUNet")
    depths = {b: len(_indices([r[len(b) + 1:] for r in unet if r.startswith(b + ".")],
                               r"transformer_blocks\.(\d+)\.")) for b in attn_blocks}
    if len(set(depths.values())) != 1:
        raise SgmCheckpointError(
            f"UNet with different transformer depths per block {sorted(set(depths.values()))}: "
            "not supported by diffusers' UNetSpatioTemporalConditionModel")
    context_dim = _need(unet, f"{attn_blocks[0]}.transformer_blocks.0.attn2.to_k.weight")[1]
    adm = _need(unet, "label_emb.0.0.weight")[1]
    if adm % 3:
        raise SgmCheckpointError(
            f"UNet label embedding input {adm} is not 3 x a sinusoidal size (fps_id, motion_bucket_id, cond_aug)")
    return {
        # Config only (diffusers' default image size reads it): the hub's 96 for SVD sizes, 8 (64 px) otherwise.
        "sample_size": 96 if channels[0] == 320 else 8,
        "in_channels": _need(unet, "input_blocks.0.0.weight")[1],
        "out_channels": _need(unet, "out.2.weight")[0],
        "down_block_types": ["CrossAttnDownBlockSpatioTemporal" if a else "DownBlockSpatioTemporal" for a in down_attn],
        "up_block_types": ["CrossAttnUpBlockSpatioTemporal" if a else "UpBlockSpatioTemporal" for a in up_attn],
        "block_out_channels": list(channels),
        "addition_time_embed_dim": adm // 3,
        "projection_class_embeddings_input_dim": adm,
        "layers_per_block": layers,
        "cross_attention_dim": context_dim,
        "transformer_layers_per_block": next(iter(depths.values())),
        "num_frames": num_frames,
    }


def _infer_vae_config(shapes: Mapping[str, tuple[int, ...]], decoder_kind: str) -> dict:
    enc = {r: shapes[k] for r, k in _sub(shapes, COND_VAE_PREFIX + "encoder.").items()}
    levels = _indices(enc, r"down\.(\d+)\.")
    if not levels:
        raise SgmCheckpointError(
            f"no conditioning-frame encoder ({COND_VAE_PREFIX}encoder.down.*): not an SVD checkpoint")
    layers = len(_indices([r for r in enc if r.startswith("down.0.")], r"down\.0\.block\.(\d+)\."))
    channels = [_need(enc, f"down.{i}.block.0.conv1.weight")[0] for i in levels]
    latent = _need(shapes, FIRST_STAGE_PREFIX + "decoder.conv_in.weight")[1]
    if decoder_kind == TEMPORAL and layers != 2:
        raise SgmCheckpointError(
            f"temporal VAE with {layers} resnets per level: diffusers' TemporalDecoder represents only 2 "
            "(its mid block is built from layers_per_block)")
    config = {
        "in_channels": _need(enc, "conv_in.weight")[1],
        "out_channels": _need(shapes, FIRST_STAGE_PREFIX + "decoder.conv_out.weight")[0],
        "down_block_types": ["DownEncoderBlock2D"] * len(levels),
        "block_out_channels": list(channels),
        "layers_per_block": layers,
        "latent_channels": latent,
        "sample_size": 768 if channels[0] == 128 else 64,  # config only: the hub's 768 for SVD sizes
        "scaling_factor": SGM_VAE_SCALING_FACTOR,
        "force_upcast": True,
    }
    if decoder_kind == IMAGE:
        config["up_block_types"] = ["UpDecoderBlock2D"] * len(levels)
    return config


def _infer_clip_config(shapes: Mapping[str, tuple[int, ...]]) -> dict:
    """transformers CLIPVisionConfig arguments from the shapes, except ``num_attention_heads``."""
    vis = {r: shapes[k] for r, k in _sub(shapes, CLIP_PREFIX).items()}
    width, _, patch, _ = _need(vis, "conv1.weight")
    tokens = _need(vis, "positional_embedding")[0]
    grid = math.isqrt(tokens - 1)
    if grid * grid != tokens - 1:
        raise SgmCheckpointError(f"OpenCLIP positional_embedding has {tokens} tokens, not 1 + a square grid")
    layers = len(_indices(vis, r"transformer\.resblocks\.(\d+)\."))
    return {
        "hidden_size": width,
        "intermediate_size": _need(vis, "transformer.resblocks.0.mlp.c_fc.weight")[0],
        "projection_dim": _need(vis, "proj")[1],
        "num_hidden_layers": layers,
        "num_channels": _need(vis, "conv1.weight")[1],
        "image_size": grid * patch,
        "patch_size": patch,
        "hidden_act": "gelu",  # OpenCLIP ViT-H-14 uses exact GELU (not quick_gelu)
        "layer_norm_eps": 1e-5,
        "attention_dropout": 0.0,
    }


def detect_decoder_kind(keys: Iterable[str]) -> str:
    """``"temporal"`` or ``"image"`` from the key names alone (file names are not trusted).

    Temporal files (svd, svd_xt, svd_xt_1_1) have ``first_stage_model.decoder.conv_out.time_mix_conv.*`` and
    ``...mix_factor`` tensors; image-decoder files have a plain 2D decoder plus ``first_stage_model.post_quant_conv``.
    """
    keys = set(keys)
    if not any(k.startswith(UNET_PREFIX) for k in keys):
        raise SgmCheckpointError(f"no {UNET_PREFIX}* tensors: not an sgm (generative-models) checkpoint")
    if not any(k.startswith(UNET_PREFIX) and ".time_stack." in k for k in keys):
        raise SgmCheckpointError("the UNet has no temporal layers (time_stack): an image model, not Stable Video Diffusion")
    if not any(k.startswith(CLIP_PREFIX) for k in keys):
        raise SgmCheckpointError(f"no OpenCLIP image embedder ({CLIP_PREFIX}*): not an SVD image-to-video checkpoint")
    if FIRST_STAGE_PREFIX + "decoder.conv_out.time_mix_conv.weight" in keys:
        return TEMPORAL
    if FIRST_STAGE_PREFIX + "post_quant_conv.weight" in keys:
        return IMAGE
    raise SgmCheckpointError(f"no first-stage decoder ({FIRST_STAGE_PREFIX}decoder.*): the file is incomplete")


def _targets_of(key: str, unet_layers: int, decoder_levels: int, decoder_kind: str) -> list[tuple[str, str, str]]:
    """[(component, diffusers key, transform)] for one sgm key; [] when the key belongs to no known module."""
    if key.startswith(UNET_PREFIX):
        name = _unet_name(key[len(UNET_PREFIX):], unet_layers)
        return [("unet", name, "copy")] if name else []
    if key.startswith(CLIP_PREFIX):
        return [("image_encoder", name, t) for name, t in _clip_targets(key[len(CLIP_PREFIX):]) or []]
    found = None
    if key.startswith(COND_VAE_PREFIX + "encoder."):
        found = _encoder_target(key[len(COND_VAE_PREFIX + "encoder."):])
    elif key.startswith(COND_VAE_PREFIX + "quant_conv."):
        found = "quant_conv." + key[len(COND_VAE_PREFIX + "quant_conv."):], "copy"
    elif key.startswith(FIRST_STAGE_PREFIX + "decoder."):
        found = _decoder_target(key[len(FIRST_STAGE_PREFIX + "decoder."):], decoder_levels, decoder_kind == TEMPORAL)
    elif decoder_kind == IMAGE and key.startswith(FIRST_STAGE_PREFIX + "post_quant_conv."):
        found = "post_quant_conv." + key[len(FIRST_STAGE_PREFIX + "post_quant_conv."):], "copy"
    return [("vae", found[0], found[1])] if found else []


def plan_conversion(
    shapes: Mapping[str, Iterable[int]],
    unet_head_channels: int | None = None,
    clip_head_width: int | None = None,
    num_frames: int = 14,
    dtypes: Mapping[str, str] | None = None,
) -> ConversionPlan:
    """Map every tensor of an sgm SVD state dict (given as key -> shape) onto diffusers/transformers keys.

    Works on headers only (no data), so it runs on the full-size key lists in milliseconds.

    Args:
        shapes: sgm key -> shape, e.g. from :func:`read_header` or the fixtures' ``keys_svd.json``.
        unet_head_channels, clip_head_width: attention head sizes (not stored in the weights). None: the sizes of
            a registered svd-lab configuration with the same shapes (the course's tiny model), else Stability's 64.
        num_frames: written into the UNet config (diffusers' ``num_frames``; 14 for svd, 25 for svd_xt).

    Raises:
        SgmCheckpointError: unknown keys (every one named), missing required tensors, an unsupported layout, or
            a transform that does not fit a shape.
    """
    shapes = {k: tuple(int(d) for d in v) for k, v in shapes.items()}
    decoder_kind = detect_decoder_kind(shapes)
    configs = {
        "unet": _infer_unet_config(shapes, num_frames),
        "vae": _infer_vae_config(shapes, decoder_kind),
        "image_encoder": _infer_clip_config(shapes),
    }
    _check_consistency(configs)
    profile = _set_attention_heads(configs, unet_head_channels, clip_head_width)
    layers = configs["unet"]["layers_per_block"]
    decoder_levels = len(_indices(_sub(shapes, FIRST_STAGE_PREFIX + "decoder."), r"up\.(\d+)\."))
    targets: dict[str, dict[str, TensorSource]] = {"unet": {}, "vae": {}, "image_encoder": {}}
    ignored: dict[str, str] = {}
    unknown: list[str] = []

    def put(component: str, target: str, source: TensorSource) -> None:
        if target in targets[component]:
            raise SgmCheckpointError(f"two tensors map onto {component}.{target}: "
                              f"{targets[component][target].key} and {source.key}")
        targets[component][target] = source

    for key in shapes:
        reason = _is_ignored(key)
        if reason is not None:
            ignored[key] = reason
            continue
        found = _targets_of(key, layers, decoder_levels, decoder_kind)
        if not found:
            unknown.append(key)
        for component, name, transform in found:
            put(component, name, TensorSource(key, transform))
    if unknown:
        raise SgmCheckpointError(f"{len(unknown)} tensor(s) of the file are neither converted nor on the documented ignore "
                          f"list: {_preview(unknown)}")
    plan = ConversionPlan(decoder_kind, configs, targets, ignored, shapes, profile, dict(dtypes or {}))
    bad = [f"{comp}.{k} <- {src.key} {shapes[src.key]} ({src.transform})"
           for comp in targets for k, src in targets[comp].items() if src.output_shape(shapes[src.key]) is None]
    if bad:
        raise SgmCheckpointError(f"tensor shapes that do not fit their conversion: {_preview(bad)}")
    return plan


def _preview(items: list[str], limit: int = 12) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def _check_consistency(configs: Mapping[str, Mapping[str, Any]]) -> None:
    """The three networks must fit together (each was inferred from its own tensors)."""
    unet, vae, clip = configs["unet"], configs["vae"], configs["image_encoder"]
    problems = []
    if clip["projection_dim"] != unet["cross_attention_dim"]:
        problems.append(f"the CLIP embedding has {clip['projection_dim']} features but the UNet cross-attends to "
                        f"{unet['cross_attention_dim']}")
    if unet["in_channels"] != 2 * vae["latent_channels"] or unet["out_channels"] != vae["latent_channels"]:
        problems.append(f"the UNet maps {unet['in_channels']} -> {unet['out_channels']} channels but the VAE has "
                        f"{vae['latent_channels']} latent channels (expected {2 * vae['latent_channels']} -> "
                        f"{vae['latent_channels']})")
    if problems:
        raise SgmCheckpointError("the networks in the file do not fit together: " + "; ".join(problems))


_CONFIG_ONLY = {"num_attention_heads", "num_frames", "sample_size"}  # not decided by the weights


def _same_structure(inferred: Mapping, registered: Mapping) -> bool:
    """True when every inferred argument (except those the weights do not decide) equals the registered one."""
    def norm(v):
        return list(v) if isinstance(v, (list, tuple)) else v
    return all(norm(registered.get(k)) == norm(v) for k, v in inferred.items() if k not in _CONFIG_ONLY)


def _set_attention_heads(configs: dict[str, dict], unet_head_channels: int | None,
                         clip_head_width: int | None) -> str:
    """Fill ``num_attention_heads`` (not stored in the weights) of the UNet and CLIP configs; returns the profile.

    Order: explicit head sizes; else the heads of the svd-lab profile (svd_lab.svd.configs.CONFIGS) whose
    shapes equal the file's; else Stability's values (64 channels per head in both networks).
    """
    unet, clip = configs["unet"], configs["image_encoder"]
    profile, unet_heads, clip_heads = "full", None, None
    try:
        from svd_lab.svd.configs import CONFIGS
    except ImportError:  # pragma: no cover - svd_lab.svd is part of the package
        CONFIGS = {}
    for name, factories in CONFIGS.items():
        reg_unet, reg_clip = factories["unet"](), factories["image_encoder"]()
        if _same_structure(unet, reg_unet) and _same_structure(clip, reg_clip):
            profile, unet_heads, clip_heads = name, list(reg_unet["num_attention_heads"]), reg_clip["num_attention_heads"]
            break
    if unet_head_channels is not None or unet_heads is None:
        size = unet_head_channels or SGM_UNET_HEAD_CHANNELS
        unet_heads = [_heads(c, size, f"UNet level {i}") for i, c in enumerate(unet["block_out_channels"])]
    if clip_head_width is not None or clip_heads is None:
        clip_heads = _heads(clip["hidden_size"], clip_head_width or SGM_CLIP_HEAD_WIDTH, "OpenCLIP vision tower")
    unet["num_attention_heads"] = unet_heads
    clip["num_attention_heads"] = clip_heads
    return profile


# --------------------------------------------------------------------------------------------- modules
def build_empty_modules(plan: ConversionPlan) -> dict[str, nn.Module]:
    """The three target modules on the ``meta`` device (shapes only, no memory), built from ``plan.configs``."""
    import diffusers
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    with torch.device("meta"):
        unet = diffusers.UNetSpatioTemporalConditionModel(**plan.configs["unet"])
        vae = getattr(diffusers, plan.vae_class_name)(**plan.configs["vae"])
        image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**plan.configs["image_encoder"]))
    return {"unet": unet, "vae": vae, "image_encoder": image_encoder}


def _persistent_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def check_plan_against_modules(plan: ConversionPlan, modules: Mapping[str, nn.Module]) -> None:
    """Strictness: every module tensor is filled by the file, no file tensor lands nowhere, all shapes agree.

    Raises SgmCheckpointError listing the missing, unexpected and mismatched keys (per component).
    """
    problems = []
    for comp, module in modules.items():
        want = _persistent_shapes(module)
        have = plan.target_shapes(comp)
        missing = sorted(set(want) - set(have))
        unexpected = sorted(set(have) - set(want))
        mismatched = [f"{k}: file {have[k]} ({plan.targets[comp][k].key}) vs module {want[k]}"
                      for k in sorted(set(want) & set(have)) if tuple(have[k]) != tuple(want[k])]
        if missing:
            problems.append(f"{comp}: {len(missing)} tensor(s) not in the file: {_preview(missing)}")
        if unexpected:
            problems.append(f"{comp}: {len(unexpected)} converted tensor(s) the module does not have: "
                            f"{_preview([f'{k} <- {plan.targets[comp][k].key}' for k in unexpected])}")
        if mismatched:
            problems.append(f"{comp}: {len(mismatched)} shape mismatch(es): {_preview(mismatched, 6)}")
    if problems:
        raise SgmCheckpointError("the checkpoint does not fit the modules built from its own shapes -- " + "; ".join(problems))


def match_sgm_groupnorm_eps(unet: nn.Module, eps: float = SGM_UNET_GROUPNORM_EPS) -> int:
    """Give every GroupNorm inside the UNet's resnets sgm's eps (1e-5); returns how many were changed.

    sgm builds all VideoUNet ResBlocks (spatial and ``time_stack``) with ``GroupNorm32(32, C)`` (eps 1e-5) and the
    transformers' input norms with eps 1e-6. diffusers uses 1e-6 in the resnets of CrossAttnDownBlockSpatioTemporal,
    UpBlockSpatioTemporal and CrossAttnUpBlockSpatioTemporal. Only those resnet norms are touched.
    """
    changed = 0
    for name, module in unet.named_modules():
        if isinstance(module, nn.GroupNorm) and ".resnets." in f".{name}" and module.eps != eps:
            module.eps = eps
            changed += 1
    return changed


# --------------------------------------------------------------------------------------------- reading
def read_header(path: str | os.PathLike) -> tuple[dict[str, tuple[int, ...]], dict[str, str], dict[str, str]]:
    """(key -> shape, key -> dtype name, metadata) of a safetensors file, reading the header only."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise SgmCheckpointError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            shapes, dtypes = {}, {}
            for key in f.keys():  # noqa: SIM118 (safe_open is not iterable)
                view = f.get_slice(key)
                shapes[key] = tuple(view.get_shape())
                dtypes[key] = str(view.get_dtype())
            metadata = dict(f.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise SgmCheckpointError(f"{path}: not a readable safetensors file ({exc}); "
                          "is the download complete? (svd-lab models shows its state)") from None
    return shapes, dtypes, metadata


class _TensorReader:
    """Reads tensors one at a time with ``safe_open``.

    With safetensors >= 0.8 the ``pread`` backend copies each tensor out of the file without a memory map, so
    resident memory is the model plus one tensor. Older versions memory-map the file; pages touched there count
    in the resident set until the file is closed, so the reader reopens the file every ``reopen_bytes``.
    """

    reopen_bytes = 512 * 2**20  # memory-mapped fallback only: bytes read before the file is reopened

    def __init__(self, path: Path):
        self.path = path
        self._handle, self._since_open, self._pread = None, 0, True

    def _open(self):
        from safetensors import safe_open

        if self._pread:
            try:
                return safe_open(str(self.path), framework="pt", backend="pread")
            except TypeError:  # safetensors < 0.8: no backend argument
                self._pread = False
        return safe_open(str(self.path), framework="pt")

    def get(self, key: str) -> torch.Tensor:
        if self._handle is None:
            self._handle, self._since_open = self._open(), 0
        tensor = self._handle.get_tensor(key)
        self._since_open += tensor.numel() * tensor.element_size()
        if not self._pread and self._since_open >= self.reopen_bytes:
            self.close()
        return tensor

    def close(self) -> None:
        self._handle = None  # safe_open objects release the file (and any mapping) when collected

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _set_tensor(module: nn.Module, name: str, value: torch.Tensor) -> None:
    """Replace parameter or buffer ``name`` (dotted) of ``module`` with ``value`` (kept as a frozen Parameter)."""
    owner_name, _, attr = name.rpartition(".")
    owner = module.get_submodule(owner_name) if owner_name else module
    if attr in owner._parameters:
        owner._parameters[attr] = nn.Parameter(value, requires_grad=False)
    elif attr in owner._buffers:
        owner._buffers[attr] = value
    else:  # cannot happen after check_plan_against_modules
        raise KeyError(name)


def _finish_non_persistent(modules: Mapping[str, nn.Module], device: torch.device) -> None:
    """Buffers not saved in any state dict: rebuild them (they are still on meta)."""
    clip = modules["image_encoder"]
    emb = clip.vision_model.embeddings
    if getattr(emb, "position_ids", None) is not None and emb.position_ids.is_meta:
        emb.register_buffer("position_ids", torch.arange(emb.num_positions, device=device).expand((1, -1)),
                            persistent=False)
    for comp, module in modules.items():
        left = [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.is_meta]
        if left:
            raise RuntimeError(f"{comp}: tensors left without values after loading: {_preview(left)}")


def fill_modules(
    path: str | os.PathLike,
    plan: ConversionPlan,
    modules: Mapping[str, nn.Module],
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> None:
    """Read the file tensor by tensor into the (meta) modules, converting to ``dtype`` on ``device``.

    Each file tensor is read once (a packed qkv tensor feeds its three targets), converted, placed, and
    dropped; every placed tensor has its own (aligned) storage.
    """
    from tqdm.auto import tqdm

    device = torch.device(device)
    by_source: dict[str, list[tuple[str, str, TensorSource]]] = {}
    for comp, targets in plan.targets.items():
        for name, src in targets.items():
            by_source.setdefault(src.key, []).append((comp, name, src))
    # File order = on-disk order: sequential reads.
    order = [k for k in plan.source_shapes if k in by_source]
    with _TensorReader(Path(path)) as reader, tqdm(total=len(order), desc="loading sgm checkpoint", unit="tensor",
                                                     disable=not _progress_enabled(progress)) as bar:
        for key in order:
            raw = reader.get(key)
            for comp, name, src in by_source[key]:
                value = src.apply(raw).to(device=device, dtype=dtype).contiguous()
                if value.untyped_storage().data_ptr() == raw.untyped_storage().data_ptr():
                    # Still a view of the file buffer (no dtype/device change; q/k/v are slices of one packed
                    # tensor): copy into a fresh allocation -- its own memory, 64-byte aligned like any torch
                    # tensor, so CPU kernels take the same SIMD paths as for weights built in memory.
                    value = value.clone()
                _set_tensor(modules[comp], name, value)
            del raw
            bar.update()
    _finish_non_persistent(modules, device)


def _progress_enabled(progress: bool) -> bool:
    return progress and os.environ.get("TQDM_DISABLE", "").strip().lower() in ("", "0", "false", "no")


# --------------------------------------------------------------------------------------------- public API
@dataclass
class SgmModules:
    """The converted modules plus what was decided about the file."""

    unet: nn.Module
    vae: nn.Module
    image_encoder: nn.Module
    plan: ConversionPlan
    version: str
    version_source: str  # how the version was decided: "argument", "registry file name", "file name", "default"

    @property
    def decoder_kind(self) -> str:
        return self.plan.decoder_kind


def detect_version(path: str | os.PathLike, decoder_kind: str, version: str | None = None) -> tuple[str, str]:
    """(version, how it was decided) for an sgm file whose keys hold a ``decoder_kind`` decoder.

    The decoder kind comes from the keys. svd, svd_xt and svd_xt_1_1 have identical keys and shapes -- only the
    trained weights differ -- so the frame count and sampling defaults follow from, in order: an explicit
    ``version``; the checkpoints registry entry whose sgm file name this is; ``xt`` in the file name; else
    ``svd``. A name-derived guess is corrected to the keys' decoder kind (a renamed image-decoder file is still
    one); an explicit version that contradicts the keys is an error.
    """
    name = Path(path).name
    if version is not None:
        if version not in VERSIONS:
            raise SgmCheckpointError(f"unknown SVD version {version!r}; known: {', '.join(VERSIONS)}")
        if VERSIONS[version].decoder != decoder_kind:
            raise SgmCheckpointError(
                f"{name}: version {version!r} uses the {VERSIONS[version].decoder} decoder, but the file's keys hold "
                f"the {decoder_kind} decoder; choose one of "
                f"{', '.join(v for v, spec in VERSIONS.items() if spec.decoder == decoder_kind)}")
        return version, "argument"
    try:
        from svd_lab.checkpoints.registry import spec_for_sgm_file

        spec = spec_for_sgm_file(name)
    except ImportError:  # pragma: no cover - the registry is part of the package
        spec = None
    if spec is not None and spec.version in VERSIONS:
        guess, how = spec.version, "registry file name"
    elif re.search(r"(^|[^a-z])xt([^a-z]|$)", name.lower()):
        guess, how = "svd_xt", "file name"
    else:
        guess, how = "svd", "default"
    if VERSIONS[guess].decoder != decoder_kind:
        family = "svd_xt" if guess.startswith("svd_xt") else "svd"
        guess = family + ("_image_decoder" if decoder_kind == IMAGE else "")
        how += ", decoder from the keys"
    return guess, how


def load_sgm_modules(
    path: str | os.PathLike,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    version: str | None = None,
    unet_head_channels: int | None = None,
    clip_head_width: int | None = None,
    sgm_groupnorm_eps: bool = True,
    progress: bool = True,
) -> SgmModules:
    """Read an sgm SVD file into diffusers' UNet, VAE and transformers' CLIP vision model (eval mode, frozen).

    Args:
        path: the ``.safetensors`` file (``svd.safetensors``, ``svd_xt.safetensors``, ``*_image_decoder``...).
        dtype: dtype of the modules (float32, float16, bfloat16); the file's own dtype does not matter.
        device: where the tensors go (``cpu``, ``cuda``...): each tensor is moved as it is read.
        version: ``svd`` / ``svd_xt`` / ... when the file name does not say (see :func:`detect_version`).
        unet_head_channels, clip_head_width: attention head sizes when not Stability's (see :func:`plan_conversion`).
        sgm_groupnorm_eps: give the UNet sgm's GroupNorm eps (see :func:`match_sgm_groupnorm_eps`).
        progress: tqdm progress bar.
    """
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise SgmCheckpointError(f"dtype must be float32, float16 or bfloat16, got {dtype}")
    path = Path(path)
    shapes, dtypes, _ = read_header(path)
    decoder_kind = detect_decoder_kind(shapes)
    version, how = detect_version(path, decoder_kind, version)
    plan = plan_conversion(shapes, unet_head_channels, clip_head_width, VERSIONS[version].num_frames, dtypes)
    modules = build_empty_modules(plan)
    check_plan_against_modules(plan, modules)  # before any tensor data is read
    fill_modules(path, plan, modules, dtype=dtype, device=device, progress=progress)
    if sgm_groupnorm_eps:
        match_sgm_groupnorm_eps(modules["unet"])
    for module in modules.values():
        module.eval()
    return SgmModules(modules["unet"], modules["vae"], modules["image_encoder"], plan, version, how)


def load_sgm_checkpoint(
    path: str | os.PathLike,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    version: str | None = None,
    progress: bool = True,
    **options: Any,
):
    """Load an sgm single-file SVD checkpoint as the pipeline's :class:`svd_lab.svd.components.SVDComponents`.

    ``options`` go to :func:`load_sgm_modules` (head sizes, ``sgm_groupnorm_eps``).
    """
    loaded = load_sgm_modules(path, dtype=dtype, device=device, version=version, progress=progress, **options)
    return to_components(loaded, source=f"{path} (sgm, version {loaded.version}: {loaded.version_source})")


def to_components(loaded: SgmModules, source: str = ""):
    """Wrap converted modules as the pipeline's ``SVDComponents`` (version, decoder kind, profile set)."""
    from svd_lab.svd.components import SVDComponents

    return SVDComponents(
        unet=loaded.unet, vae=loaded.vae, image_encoder=loaded.image_encoder, version=loaded.version,
        decoder=loaded.decoder_kind, profile=loaded.plan.profile,
        source=source or f"sgm checkpoint (version {loaded.version}: {loaded.version_source})")


# --------------------------------------------------------------------------------------------- diffusers folder
def apply_conversion_record(folder: str | os.PathLike, unet: nn.Module) -> bool:
    """Re-apply what a converted folder's ``svd_lab_conversion.json`` records about the UNet (sgm's GroupNorm
    eps); returns True when the folder was written by :func:`convert_sgm_to_diffusers`."""
    record_path = Path(folder) / CONVERSION_RECORD
    if not record_path.is_file():
        return False
    try:
        record = json.loads(record_path.read_text())
        eps = record.get("unet_resnet_groupnorm_eps")
    except (ValueError, AttributeError) as exc:
        raise SgmCheckpointError(f"{record_path} is damaged ({exc}); convert the sgm file again") from None
    if eps is not None:
        match_sgm_groupnorm_eps(unet, float(eps))
    return True


def convert_sgm_to_diffusers(
    in_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    dtype: torch.dtype = torch.float16,
    version: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    **options: Any,
) -> Path:
    """Write an sgm file as a diffusers ``StableVideoDiffusionPipeline`` folder (unet/ vae/ image_encoder/
    feature_extractor/ scheduler/ model_index.json), so later loads need no conversion.

    The folder is assembled under a temporary name beside ``out_dir`` and renamed at the end: an interrupted
    run leaves no half-written ``out_dir``. An existing ``out_dir`` is never overwritten.
    """
    log = log or (lambda message: None)
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise SgmCheckpointError(f"{out_dir} already exists; choose a new output folder (nothing is overwritten)")
    parent = out_dir.parent if str(out_dir.parent) else Path(".")
    if not parent.is_dir():
        raise SgmCheckpointError(f"{parent} does not exist; create it first")
    _check_free_space(in_path, parent, dtype)
    loaded = load_sgm_modules(in_path, dtype=dtype, device="cpu", version=version, progress=progress, **options)
    log(loaded.plan.summary() + f"; version {loaded.version} ({loaded.version_source})")
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=parent))
    try:
        for name, module in (("unet", loaded.unet), ("vae", loaded.vae), ("image_encoder", loaded.image_encoder)):
            log(f"writing {name}/")
            module.save_pretrained(staging / name, safe_serialization=True)
        (staging / "feature_extractor").mkdir()
        import diffusers
        import transformers

        from svd_lab.svd.configs import feature_extractor_config, scheduler_config

        _write_json(staging / "feature_extractor" / "preprocessor_config.json",
                    {**feature_extractor_config(), "image_processor_type": "CLIPImageProcessor"})
        (staging / "scheduler").mkdir()
        _write_json(staging / "scheduler" / "scheduler_config.json",
                    {"_class_name": "EulerDiscreteScheduler", "_diffusers_version": diffusers.__version__,
                     **scheduler_config()})

        _write_json(staging / "model_index.json", {
            "_class_name": "StableVideoDiffusionPipeline",
            "_diffusers_version": diffusers.__version__,
            "feature_extractor": ["transformers", "CLIPImageProcessor"],
            "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
            "scheduler": ["diffusers", "EulerDiscreteScheduler"],
            "unet": ["diffusers", "UNetSpatioTemporalConditionModel"],
            "vae": ["diffusers", loaded.plan.vae_class_name],
        })
        _write_json(staging / CONVERSION_RECORD, {
            "converted_from": Path(in_path).name,
            "version": loaded.version,
            "version_source": loaded.version_source,
            "decoder_kind": loaded.decoder_kind,
            "dtype": str(dtype).replace("torch.", ""),
            "unet_resnet_groupnorm_eps": SGM_UNET_GROUPNORM_EPS if options.get("sgm_groupnorm_eps", True) else None,
            "ignored_tensors": len(loaded.plan.ignored),
            "converter": "svd_lab.convert.sgm",
            "versions": {"diffusers": diffusers.__version__, "transformers": transformers.__version__,
                         "torch": torch.__version__},
        })
        _apply_umask(staging)  # mkdtemp creates 0700; the result should look like any folder the user makes
        if out_dir.exists():  # appeared while we were writing
            raise SgmCheckpointError(f"{out_dir} appeared during the conversion; nothing was overwritten")
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _check_free_space(in_path: str | os.PathLike, parent: Path, dtype: torch.dtype) -> None:
    """Refuse before loading anything when the output file system cannot hold the converted weights."""
    shapes, _, _ = read_header(in_path)
    ignored = {k for k in shapes if _is_ignored(k) is not None}
    values = sum(math.prod(shape) for k, shape in shapes.items() if k not in ignored)
    needed = int(values * torch.empty((), dtype=dtype).element_size() * 1.02) + 2**20
    free = shutil.disk_usage(parent).free
    if free < needed:
        raise SgmCheckpointError(f"not enough free disk space in {parent}: the converted folder needs about "
                          f"{needed / 1e9:.2f} GB, {free / 1e9:.2f} GB are free")


def _apply_umask(root: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(root, 0o777 & ~umask)
    for folder, dirs, files in os.walk(root):
        for d in dirs:
            os.chmod(Path(folder) / d, 0o777 & ~umask)
        for f in files:
            os.chmod(Path(folder) / f, 0o666 & ~umask)


def _write_json(path: Path, data: Mapping) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
