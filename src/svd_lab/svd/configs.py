"""Network configurations of SVD: the real sizes and the course's small profiles, as plain data.

The builders that turn them into networks live beside :class:`svd_lab.svd.components.SVDComponents`.

The networks are diffusers' / transformers' classes:

- ``UNetSpatioTemporalConditionModel`` (the video UNet: SD 2.1's UNet plus temporal layers),
- ``AutoencoderKLTemporalDecoder`` (VAE whose decoder mixes frames), or for the image-decoder versions the
  per-frame ``AutoencoderKL``,
- ``CLIPVisionModelWithProjection`` (the image embedding: OpenCLIP ViT-H/14's visual tower).

Full sizes are the hub's configs (stabilityai/stable-video-diffusion-img2vid{,-xt}); built on the ``meta`` device
they have UNet 1,524,623,082, temporal VAE 97,742,847, image VAE 83,653,863 and CLIP 632,076,800 parameters.

The tiny profile is the architecture of ``shared/fixtures/sgm/tiny`` ("diffusers_equivalents"), written here so a
clone without that folder works: UNet block_out_channels [32, 64], 2 layers per block, heads [2, 4],
cross-attention 64, added-time embedding 3 x 64; VAE 4 levels of 32 channels; CLIP ViT width 64, 2 layers, 2 heads,
patch 14, image 224, projection 64. Parameters: UNet 1,834,038, VAE 605,247, CLIP 158,464. At 64x64 the whole
pipeline runs on a CPU in about a second.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from svd_lab.errors import InputError
from svd_lab.svd.versions import DECODER_IMAGE, DEFAULT_VERSION, get_version

#: tiny: random weights (CI's equivalence tests); small: the small SVD the project trains and ships
#: (checkpoints/small/, see svd_lab.small); full: the real checkpoints
PROFILES = ("tiny", "small", "full")

# Parameter counts (facts: diffusers 0.42 / transformers 5 classes built with the configs below).
FULL_PARAMETER_COUNTS = {"unet": 1_524_623_082, "vae": 97_742_847, "image_vae": 83_653_863,
                         "image_encoder": 632_076_800}
TINY_PARAMETER_COUNTS = {"unet": 1_834_038, "vae": 605_247, "image_vae": 516_519, "image_encoder": 158_464}

# OpenAI CLIP's normalisation (OpenCLIP ViT-H/14 uses the same): the hub's preprocessor config and our own CLIP
# preprocessing (svd_lab.svd.components.ClipImagePreprocessing) both read it from here.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

#: latent channels of the small SVD's VAE (SVD's own: 4)
SMALL_LATENT_CHANNELS = 4

# The tiny profile's default size: 64x64 pixels -> 8x8 latents.
TINY_HEIGHT = 64
TINY_WIDTH = 64


# ------------------------------------------------------------------------------------------- UNet
def tiny_unet_config(num_frames: int = 3) -> dict:
    """Keyword arguments of UNetSpatioTemporalConditionModel for the tiny profile."""
    return {
        "sample_size": 8,
        "in_channels": 8,              # 4 noisy latent channels + 4 conditioning-image latent channels
        "out_channels": 4,
        "down_block_types": ["CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"],
        "up_block_types": ["UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"],
        "block_out_channels": [32, 64],
        "addition_time_embed_dim": 64,  # each of fps_id, motion_bucket_id, cond_aug -> 64 sinusoidal features
        "projection_class_embeddings_input_dim": 192,
        "layers_per_block": 2,
        "cross_attention_dim": 64,
        "transformer_layers_per_block": 1,
        "num_attention_heads": [2, 4],
        "num_frames": num_frames,
    }


def small_unet_config(num_frames: int = 8) -> dict:
    """The small SVD (svd_lab.small): 8 frames at 64x64 (8x8 latents), one layer per block, 128 channels at the
    full latent resolution, where the output is made; attention (spatial and temporal, cross-attention to CLIP) at
    the 4x4 level and in the middle block, none at 8x8.

    Why attention only at 4x4: at 8x8 its blocks (the feed-forward layers of the spatial and the temporal
    transformer on 64 tokens per frame) cost three quarters of a step on a CPU -- with them the UNet had 6.97 M
    parameters, 1.0 s per training step at batch 8 and 1.4 s per sampling call of 32 videos; without them 4.78 M,
    0.32 s and 0.41 s (2 threads, this project's CPU). The temporal attention, which tells each frame where it stands
    in the clip (its position embedding), still runs at 4x4, where a pan of up to 13 pixels (1.6 latent cells) over
    8 frames is within reach; real SVD does the opposite (attention in its three finest levels, none in the coarsest)
    because its coarsest level is already small.

    Every diffusers SVD network normalises with ``GroupNorm(32 groups)``, which removes each group's mean and
    scale per frame. The last normalisation before ``conv_out`` sees ``block_out_channels[0]`` channels: with 64
    (two per group) a flat latent region's level cannot be recovered from what the norm leaves (two standardised
    values are always +-1), so the UNet could not output the colour of a flat region; with four or more per group
    two channels can act as fixed references and the rest carry the level exactly.
    """
    return {
        **tiny_unet_config(num_frames),
        "sample_size": 8,
        "in_channels": 2 * SMALL_LATENT_CHANNELS,
        "out_channels": SMALL_LATENT_CHANNELS,
        "down_block_types": ["DownBlockSpatioTemporal", "CrossAttnDownBlockSpatioTemporal"],
        "up_block_types": ["CrossAttnUpBlockSpatioTemporal", "UpBlockSpatioTemporal"],
        "block_out_channels": [128, 64],
        "num_attention_heads": [4, 4],
        "layers_per_block": 1,
    }


def full_unet_config(num_frames: int = 14) -> dict:
    """The hub's unet/config.json (svd: num_frames 14, svd_xt: 25; nothing else differs)."""
    return {
        "sample_size": 96,
        "in_channels": 8,
        "out_channels": 4,
        "down_block_types": ["CrossAttnDownBlockSpatioTemporal"] * 3 + ["DownBlockSpatioTemporal"],
        "up_block_types": ["UpBlockSpatioTemporal"] + ["CrossAttnUpBlockSpatioTemporal"] * 3,
        "block_out_channels": [320, 640, 1280, 1280],
        "addition_time_embed_dim": 256,
        "projection_class_embeddings_input_dim": 768,
        "layers_per_block": 2,
        "cross_attention_dim": 1024,
        "transformer_layers_per_block": 1,
        "num_attention_heads": [5, 10, 20, 20],
        "num_frames": num_frames,
    }


# ------------------------------------------------------------------------------------------- VAEs
def _vae_config(channels: list[int], sample_size: int) -> dict:
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "block_out_channels": channels,
        "layers_per_block": 2,
        "latent_channels": 4,
        "sample_size": sample_size,
        "scaling_factor": 0.18215,
        "force_upcast": True,
    }


def tiny_vae_config() -> dict:
    """AutoencoderKLTemporalDecoder, tiny: 4 levels of 32 channels (8x down-sampling, like the real one)."""
    return _vae_config([32, 32, 32, 32], 64)


def small_vae_config() -> dict:
    """AutoencoderKLTemporalDecoder for the small SVD: 8x down-sampling like SVD's, 128 channels at both ends.

    Every block of diffusers' temporal VAE normalises with ``GroupNorm(32 groups)`` (the class has no argument to
    change it), and the norm before each ``conv_out`` removes every group's mean and scale per frame. At 32 or 64
    channels (one or two per group) the absolute colour of a region does not survive it: a [64, 32, 32, 64] VAE
    decoded the coffee cup's red (mean RGB 0.61, 0.31, 0.19) as grey (0.35, 0.35, 0.38) and lost to a 9x9
    thumbnail on every course image. With four channels per group two can hold fixed reference levels and the
    others carry the colour exactly, so the encoder's last level and the decoder's last level (the full-resolution
    one) have 128 channels; the middle levels stay at 32, one layer per block, to keep a step cheap (the skip paths
    of the residual blocks carry the colour through them).
    """
    return {**_vae_config([128, 32, 32, 128], 64), "layers_per_block": 1, "latent_channels": SMALL_LATENT_CHANNELS}


def full_vae_config() -> dict:
    """The hub's vae/config.json (AutoencoderKLTemporalDecoder)."""
    return _vae_config([128, 256, 512, 512], 768)


def tiny_image_vae_config() -> dict:
    """AutoencoderKL (per-frame image decoder), tiny."""
    return {**_vae_config([32, 32, 32, 32], 64), "up_block_types": ["UpDecoderBlock2D"] * 4}


def full_image_vae_config() -> dict:
    """AutoencoderKL of the image-decoder versions (Stable Diffusion 2.1's VAE layout)."""
    return {**_vae_config([128, 256, 512, 512], 768), "up_block_types": ["UpDecoderBlock2D"] * 4}


# ------------------------------------------------------------------------------------------- CLIP
def tiny_image_encoder_config() -> dict:
    """Keyword arguments of transformers.CLIPVisionConfig, tiny (patch 14 at 224: 257 tokens like ViT-H/14)."""
    return {
        "hidden_size": 64,
        "intermediate_size": 256,
        "projection_dim": 64,          # = the UNet's cross_attention_dim
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_channels": 3,
        "image_size": 224,
        "patch_size": 14,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-5,
        "attention_dropout": 0.0,
    }


def full_image_encoder_config() -> dict:
    """The hub's image_encoder/config.json (OpenCLIP ViT-H/14 visual tower). Its torch_dtype float16 is dropped:
    loaders always pass an explicit dtype."""
    return {
        "hidden_size": 1280,
        "intermediate_size": 5120,
        "projection_dim": 1024,
        "num_hidden_layers": 32,
        "num_attention_heads": 16,
        "num_channels": 3,
        "image_size": 224,
        "patch_size": 14,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-5,
        "attention_dropout": 0.0,
        "dropout": 0.0,
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
    }


# ------------------------------------------------------------------------------------------- the rest
def scheduler_config() -> dict:
    """The hub's scheduler_config.json (EulerDiscreteScheduler): v-prediction on Karras sigmas 0.002..700.

    Only diffusers' own pipeline uses it (equivalence tests, benchmark); our sampler is svd_lab.sampling.edm.
    """
    return {
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "beta_start": 0.00085,
        "clip_sample": False,
        "interpolation_type": "linear",
        "num_train_timesteps": 1000,
        "prediction_type": "v_prediction",
        "set_alpha_to_one": False,
        "sigma_max": 700.0,
        "sigma_min": 0.002,
        "skip_prk_steps": True,
        "steps_offset": 1,
        "timestep_spacing": "leading",
        "timestep_type": "continuous",
        "trained_betas": None,
        "use_karras_sigmas": True,
    }


def feature_extractor_config() -> dict:
    """The hub's feature_extractor/preprocessor_config.json (CLIPImageProcessor): OpenAI CLIP mean and std."""
    return {
        "crop_size": {"height": 224, "width": 224},
        "do_center_crop": True,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": list(CLIP_MEAN),
        "image_std": list(CLIP_STD),
        "resample": 3,
        "rescale_factor": 0.00392156862745098,
        "size": {"shortest_edge": 224},
    }


# name -> factory, per profile. "vae" is the temporal decoder's autoencoder, "image_vae" the per-frame one.
CONFIGS: dict[str, dict[str, Callable[..., dict]]] = {
    "tiny": {"unet": tiny_unet_config, "vae": tiny_vae_config, "image_vae": tiny_image_vae_config,
             "image_encoder": tiny_image_encoder_config},
    "small": {"unet": small_unet_config, "vae": small_vae_config, "image_vae": tiny_image_vae_config,
              "image_encoder": tiny_image_encoder_config},
    "full": {"unet": full_unet_config, "vae": full_vae_config, "image_vae": full_image_vae_config,
             "image_encoder": full_image_encoder_config},
}


def _check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise InputError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")


def unet_config(profile: str, version: str = DEFAULT_VERSION) -> dict:
    _check_profile(profile)
    if profile in ("tiny", "small"):
        return CONFIGS[profile]["unet"]()
    return full_unet_config(get_version(version).num_frames)


def vae_config(profile: str, version: str = DEFAULT_VERSION) -> tuple[str, dict]:
    """(decoder kind, config) for a version: the temporal decoder's VAE, or the per-frame image VAE."""
    _check_profile(profile)
    kind = get_version(version).decoder
    return kind, copy.deepcopy(CONFIGS[profile]["image_vae" if kind == DECODER_IMAGE else "vae"]())


def image_encoder_config(profile: str) -> dict:
    """Keyword arguments of transformers.CLIPVisionConfig for the profile."""
    _check_profile(profile)
    return CONFIGS[profile]["image_encoder"]()
