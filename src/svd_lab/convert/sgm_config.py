r"""The diffusers/transformers configs of an sgm SVD file, inferred from its tensor shapes (no torch, no data).

A safetensors header gives key -> shape; that fixes nearly every constructor argument of the three networks
(channels, levels, layers, context size, patch size, ...). What the weights cannot say is on this page as the values
of Stability's configs:

- attention head sizes: 64 channels per head in the UNet (``num_head_channels: 64`` in svd.yaml) and in OpenCLIP
  ViT-H/14 (``head_width`` 64). A file that matches a registered svd-lab profile (the course's tiny model) gets that
  profile's heads; any other size must be passed (``unet_head_channels`` / ``clip_head_width``, on the command
  line ``--unet-head-channels`` / ``--clip-head-width``), else 64 is assumed;
- the VAE scaling factor 0.18215 (svd.yaml ``scale_factor``);
- sgm's GroupNorm eps 1e-5 in every UNet ResBlock (see :func:`svd_lab.convert.sgm_load.match_sgm_groupnorm_eps`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from svd_lab.convert.sgm_keys import (
    CLIP_PREFIX,
    COND_VAE_PREFIX,
    FIRST_STAGE_PREFIX,
    IMAGE,
    TEMPORAL,
    UNET_PREFIX,
    indices,
    under,
    unet_levels,
)
from svd_lab.errors import InputError, SgmCheckpointError

Shapes = Mapping[str, tuple[int, ...]]

#: Stability's values for numbers that are not stored in the weights.
SGM_UNET_HEAD_CHANNELS = 64  # svd.yaml: num_head_channels 64 -> heads (5, 10, 20, 20)
SGM_CLIP_HEAD_WIDTH = 64  # OpenCLIP ViT-H-14: width 1280, head_width 64 -> 16 heads
SGM_VAE_SCALING_FACTOR = 0.18215  # svd.yaml: scale_factor
SGM_UNET_GROUPNORM_EPS = 1e-5  # sgm's normalization(): GroupNorm32(32, C), torch's default eps

#: constructor arguments the weights do not decide (a file matches a profile whatever they are)
_CONFIG_ONLY = {"num_attention_heads", "num_frames", "sample_size"}

#: how a caller passes the head sizes, for error messages
HEAD_SIZE_HINT = ("pass this model's head sizes (they are not stored in the weights): unet_head_channels= / "
                  "clip_head_width= in Python, --unet-head-channels / --clip-head-width on the command line")


def _need(shapes: Shapes, key: str) -> tuple[int, ...]:
    if key not in shapes:
        raise SgmCheckpointError(f"not an sgm SVD checkpoint this converter understands: tensor {key!r} is missing")
    return tuple(shapes[key])


def _relative(shapes: Shapes, prefix: str) -> dict[str, tuple[int, ...]]:
    """{key without ``prefix``: shape} for the keys under ``prefix``."""
    return {rest: shapes[key] for rest, key in under(shapes, prefix).items()}


# --------------------------------------------------------------------------------------------- per network
def infer_unet_config(shapes: Shapes, num_frames: int) -> dict:
    """UNetSpatioTemporalConditionModel arguments from the shapes, except ``num_attention_heads``."""
    layers, num_levels = unet_levels(shapes)
    unet = _relative(shapes, UNET_PREFIX)
    first = [1 + i * (layers + 1) for i in range(num_levels)]  # first input block of each level
    channels = [_need(unet, f"input_blocks.{k}.0.out_layers.3.weight")[0] for k in first]
    down_attn = [f"input_blocks.{k}.1.proj_in.weight" in unet for k in first]
    up_attn = [f"output_blocks.{i * (layers + 1)}.1.proj_in.weight" in unet for i in range(num_levels)]
    attn_blocks = sorted({m.group(1) for r in unet if (m := re.match(r"(.+)\.transformer_blocks\.\d+\.", r))})
    if not attn_blocks:
        raise SgmCheckpointError("UNet without attention layers: not an SVD VideoUNet")
    depths = {b: len(indices([r[len(b) + 1:] for r in unet if r.startswith(b + ".")], r"transformer_blocks\.(\d+)\."))
              for b in attn_blocks}
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


def infer_vae_config(shapes: Shapes, decoder_kind: str) -> dict:
    """AutoencoderKLTemporalDecoder (``temporal``) / AutoencoderKL (``image``) arguments from the shapes.

    The encoder is read from the conditioning-frame autoencoder (``conditioner.embedders.3``), the decoder's
    latent and output channels from ``first_stage_model.decoder``.
    """
    enc = _relative(shapes, COND_VAE_PREFIX + "encoder.")
    levels = indices(enc, r"down\.(\d+)\.")
    if not levels:
        raise SgmCheckpointError(
            f"no conditioning-frame encoder ({COND_VAE_PREFIX}encoder.down.*): not an SVD checkpoint")
    layers = len(indices([r for r in enc if r.startswith("down.0.")], r"down\.0\.block\.(\d+)\."))
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


def infer_clip_config(shapes: Shapes) -> dict:
    """transformers CLIPVisionConfig arguments from the shapes, except ``num_attention_heads``."""
    vis = _relative(shapes, CLIP_PREFIX)
    width, _, patch, _ = _need(vis, "conv1.weight")
    tokens = _need(vis, "positional_embedding")[0]
    grid = math.isqrt(tokens - 1)
    if grid * grid != tokens - 1:
        raise SgmCheckpointError(f"OpenCLIP positional_embedding has {tokens} tokens, not 1 + a square grid")
    return {
        "hidden_size": width,
        "intermediate_size": _need(vis, "transformer.resblocks.0.mlp.c_fc.weight")[0],
        "projection_dim": _need(vis, "proj")[1],
        "num_hidden_layers": len(indices(vis, r"transformer\.resblocks\.(\d+)\.")),
        "num_channels": _need(vis, "conv1.weight")[1],
        "image_size": grid * patch,
        "patch_size": patch,
        "hidden_act": "gelu",  # OpenCLIP ViT-H-14 uses exact GELU (not quick_gelu)
        "layer_norm_eps": 1e-5,
        "attention_dropout": 0.0,
    }


def check_consistency(configs: Mapping[str, Mapping[str, Any]]) -> None:
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


# --------------------------------------------------------------------------------------------- attention heads
def check_head_size(value: int | None, name: str) -> int | None:
    """``value`` when it is None or a positive integer, else an InputError naming the argument."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive integer (channels per attention head), got {value!r}")
    return value


def _heads(channels: int, head_channels: int, what: str) -> int:
    if channels % head_channels:
        raise SgmCheckpointError(
            f"{what}: {channels} channels are not a multiple of the attention head size {head_channels}; "
            + HEAD_SIZE_HINT)
    return channels // head_channels


def _same_structure(inferred: Mapping, registered: Mapping) -> bool:
    """True when every inferred argument (except those the weights do not decide) equals the registered one."""
    def norm(v):
        return list(v) if isinstance(v, (list, tuple)) else v
    return all(norm(registered.get(k)) == norm(v) for k, v in inferred.items() if k not in _CONFIG_ONLY)


def set_attention_heads(configs: dict[str, dict], unet_head_channels: int | None = None,
                        clip_head_width: int | None = None) -> str:
    """Fill ``num_attention_heads`` (not stored in the weights) of the UNet and CLIP configs; returns the profile.

    Order: explicit head sizes; else the heads of the svd-lab profile (:data:`svd_lab.svd.configs.CONFIGS`) whose
    shapes equal the file's; else Stability's values (64 channels per head in both networks). The profile is
    ``full`` for any file that matches no registered small profile.
    """
    from svd_lab.svd.configs import CONFIGS

    check_head_size(unet_head_channels, "unet_head_channels")
    check_head_size(clip_head_width, "clip_head_width")
    unet, clip = configs["unet"], configs["image_encoder"]
    profile, unet_heads, clip_heads = "full", None, None
    for name, factories in CONFIGS.items():
        reg_unet, reg_clip = factories["unet"](), factories["image_encoder"]()
        if _same_structure(unet, reg_unet) and _same_structure(clip, reg_clip):
            profile = name
            unet_heads, clip_heads = list(reg_unet["num_attention_heads"]), reg_clip["num_attention_heads"]
            break
    if unet_head_channels is not None or unet_heads is None:
        size = unet_head_channels or SGM_UNET_HEAD_CHANNELS
        unet_heads = [_heads(c, size, f"UNet level {i}") for i, c in enumerate(unet["block_out_channels"])]
    if clip_head_width is not None or clip_heads is None:
        clip_heads = _heads(clip["hidden_size"], clip_head_width or SGM_CLIP_HEAD_WIDTH, "OpenCLIP vision tower")
    unet["num_attention_heads"] = unet_heads
    clip["num_attention_heads"] = clip_heads
    return profile


def infer_configs(shapes: Shapes, decoder_kind: str, num_frames: int = 14, unet_head_channels: int | None = None,
                  clip_head_width: int | None = None) -> tuple[dict[str, dict], str]:
    """({"unet", "vae", "image_encoder"} -> constructor arguments, profile) of an sgm SVD file's shapes."""
    configs = {
        "unet": infer_unet_config(shapes, num_frames),
        "vae": infer_vae_config(shapes, decoder_kind),
        "image_encoder": infer_clip_config(shapes),
    }
    check_consistency(configs)
    return configs, set_attention_heads(configs, unet_head_channels, clip_head_width)
