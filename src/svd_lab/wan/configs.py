"""Wan's networks as configurations: the full-size ones (for parameter counts on the ``meta`` device) and tiny
random ones with the same classes (for tests, CI and the course on a CPU), plus a tokenizer built here.

Full sizes, from Wan's own configs (``wan/configs/wan_t2v_1_3B.py``, ``wan_ti2v_5B.py``) in diffusers' names:

=================  ===========================================  =========================================
network            wan2.1-t2v-1.3b                              wan2.2-ti2v-5b
=================  ===========================================  =========================================
transformer        dim 1536 (12 heads x 128), 30 layers,        dim 3072 (24 heads x 128), 30 layers,
                   ffn 8960, patch (1, 2, 2), 16 channels in    ffn 14336, patch (1, 2, 2), 48 channels in
VAE                AutoencoderKLWan: 4x time, 8x space,         residual, 2x2 pixel patches: 4x time,
                   16 latent channels                           16x space, 48 latent channels
text encoder       UMT5-XXL encoder (d_model 4096, 24 layers, 64 heads, vocabulary 256384), shared
=================  ===========================================  =========================================

The tiny configs keep every structural choice (patching, the causal 3D VAE, the residual 2.2 VAE with pixel
patches, cross-attention to a UMT5 encoder) at widths of a few channels: seconds on a CPU.
"""

from __future__ import annotations

from pathlib import Path


def _transformer(heads: int, channels: int, text_dim: int, ffn: int, layers: int, **extra) -> dict:
    """WanTransformer3DModel's arguments: ``heads`` x 128 (full) or x 12 (tiny) wide, 1x2x2 patches."""
    return {"patch_size": (1, 2, 2), "num_attention_heads": heads, "attention_head_dim": 128 if heads >= 12 else 12,
            "in_channels": channels, "out_channels": channels, "text_dim": text_dim, "freq_dim": 256,
            "ffn_dim": ffn, "num_layers": layers, "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads",
            **extra}


def _vae_2_2(base_dim: int, **extra) -> dict:
    """AutoencoderKLWan as Wan2.2's: residual blocks, 2x2 pixel patches (12 channels in), 16x space, 48 latents.
    latents_mean / latents_std are the release's normalisation constants (placeholders here: counts and shapes do
    not depend on them; a checkpoint's config brings its own)."""
    return {"base_dim": base_dim, "z_dim": 48, "is_residual": True, "in_channels": 12, "out_channels": 12,
            "patch_size": 2, "scale_factor_spatial": 16, "latents_mean": [0.0] * 48, "latents_std": [1.0] * 48,
            **extra}


#: diffusers' constructor arguments of each full-size network
FULL_TRANSFORMER = {
    "wan2.1-t2v-1.3b": _transformer(12, 16, 4096, 8960, 30, eps=1e-6),
    "wan2.2-ti2v-5b": _transformer(24, 48, 4096, 14336, 30, eps=1e-6),
}
FULL_VAE = {
    "wan2.1-t2v-1.3b": {"base_dim": 96, "z_dim": 16, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2,
                        "temperal_downsample": [False, True, True]},
    "wan2.2-ti2v-5b": _vae_2_2(160, decoder_base_dim=256),
}
FULL_TEXT_ENCODER = {"vocab_size": 256384, "d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 24,
                     "num_heads": 64, "feed_forward_proj": "gated-gelu", "relative_attention_num_buckets": 32}

#: parameters, counted on the meta device by tests/test_wan.py (``full_parameter_counts``)
FULL_PARAMETER_COUNTS = {
    "wan2.1-t2v-1.3b": {"transformer": 1_418_996_800, "vae": 126_892_531, "text_encoder": 5_680_910_336},
    "wan2.2-ti2v-5b": {"transformer": 4_999_787_712, "vae": 704_688_668, "text_encoder": 5_680_910_336},
}

TINY_TEXT_DIM = 32
TINY_TRANSFORMER = {
    "wan2.1-t2v-1.3b": _transformer(2, 16, TINY_TEXT_DIM, 32, 2, rope_max_seq_len=32),
    "wan2.2-ti2v-5b": _transformer(2, 48, TINY_TEXT_DIM, 32, 2, rope_max_seq_len=32),
}
_TINY_VAE_BODY = {"base_dim": 3, "dim_mult": [1, 1, 1, 1], "num_res_blocks": 1,
                  "temperal_downsample": [False, True, True]}
TINY_VAE = {
    "wan2.1-t2v-1.3b": {**_TINY_VAE_BODY, "z_dim": 16},
    "wan2.2-ti2v-5b": _vae_2_2(**_TINY_VAE_BODY),
}
TINY_VOCABULARY = 256
TINY_TEXT_ENCODER = {"vocab_size": TINY_VOCABULARY, "d_model": TINY_TEXT_DIM, "d_kv": 8, "d_ff": 64, "num_layers": 2,
                     "num_heads": 4, "relative_attention_num_buckets": 8, "feed_forward_proj": "gated-gelu",
                     "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0}
#: frame size and count of the tiny profile: the smallest that keeps a 2x2 grid of patches per latent frame
TINY_SIZE = {"wan2.1-t2v-1.3b": (32, 32), "wan2.2-ti2v-5b": (64, 64)}
TINY_FRAMES = 9
TINY_STEPS = 4
TINY_MAX_SEQUENCE_LENGTH = 16

# The tiny tokenizer's training text: prompts of the kind the course uses, in both of its languages.
_CORPUS = [
    "a red rocket lifts off from the launch pad at night, smoke and fire below",
    "an astronaut rides a horse on the surface of the moon, the earth in the sky",
    "a cup of coffee on a wooden table, steam rising slowly",
    "the camera pans right across a city street in the rain",
    "a ball bounces on the floor and rolls away, slow motion",
    "waves break on a beach at sunset, a dog runs along the water",
    "a cat walks on the beach",
    "a field of flowers moves in the wind, close-up, bright colours",
    "一枚红色火箭在夜晚从发射台升空",
    "宇航员在月球表面骑马",
    "木桌上的一杯咖啡，热气慢慢升起",
    "镜头向右平移，雨中的城市街道",
    "一只猫在海滩上散步",
]


def build_tiny_tokenizer():
    """A T5-style tokenizer (a Unigram model over "▁"-prefixed pieces, ``</s>`` appended, ``<pad>`` = 0,
    ``</s>`` = 1, ``<unk>`` = 2) whose vocabulary is built from a fixed corpus: every word and every character of
    it, scored by frequency. Built, not trained: ``tokenizers``' Unigram trainer is multi-threaded and gave
    different pieces on two runs here, and the tiny model's text embedding must be the same everywhere. The real
    one (UMT5's 256384 pieces) ships inside each Wan checkpoint's ``tokenizer/`` folder."""
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = Counter(w for line in _CORPUS for w in line.replace(",", " ,").split())
    chars = Counter(ch for line in _CORPUS for ch in line if not ch.isspace())
    # log-probability-like scores: a whole word beats its spelling, frequent pieces beat rare ones
    pieces = {f"▁{w}": -2 - 1 / (n + 1) for w, n in words.items()}
    for ch, n in chars.items():
        pieces.setdefault(f"▁{ch}", -6 - 1 / (n + 1))
        pieces.setdefault(ch, -5 - 1 / (n + 1))
    pieces.setdefault("▁", -8.0)
    ranked = sorted(pieces.items(), key=lambda item: (-item[1], item[0]))[:TINY_VOCABULARY - 3]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), *ranked]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=2))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", model_max_length=TINY_MAX_SEQUENCE_LENGTH)


def build_tiny(version: str, seed: int = 0) -> dict:
    """Random tiny networks of ``version`` (seeded: the same weights every time) and the tiny tokenizer:
    ``{"transformer", "vae", "text_encoder", "tokenizer"}``."""
    import torch
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = WanTransformer3DModel(**TINY_TRANSFORMER[version])
        torch.manual_seed(seed + 1)
        vae = AutoencoderKLWan(**TINY_VAE[version])
        torch.manual_seed(seed + 2)
        text_encoder = UMT5EncoderModel(UMT5Config(**TINY_TEXT_ENCODER))
    parts = {"transformer": transformer, "vae": vae, "text_encoder": text_encoder,
             "tokenizer": build_tiny_tokenizer()}
    for module in (transformer, vae, text_encoder):
        module.eval().requires_grad_(False)
    return parts


def full_parameter_counts(version: str) -> dict[str, int]:
    """Parameters of each full-size network of ``version``, built on the ``meta`` device (no memory, no weights)."""
    import torch
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    with torch.device("meta"):
        modules = {"transformer": WanTransformer3DModel(**FULL_TRANSFORMER[version]),
                   "vae": AutoencoderKLWan(**FULL_VAE[version]),
                   "text_encoder": UMT5EncoderModel(UMT5Config(**FULL_TEXT_ENCODER))}
    return {name: sum(p.numel() for p in m.parameters()) for name, m in modules.items()}


def save_tiny_checkpoint(version: str, folder: Path | str, seed: int = 0, max_shard_size: str | None = None) -> Path:
    """Write the tiny networks of ``version`` as a diffusers folder with the layout of the release (configs,
    safetensors, the tokenizer, a UniPC scheduler config): what the download tests serve and the loaders read.
    ``max_shard_size`` (e.g. ``"40KB"``) splits the transformer and text encoder into shards with an index, as
    the releases are."""
    import json

    folder = Path(folder)
    parts = build_tiny(version, seed)
    for name in ("transformer", "vae", "text_encoder"):
        shard = {"max_shard_size": max_shard_size} if max_shard_size and name != "vae" else {}
        parts[name].save_pretrained(folder / name, safe_serialization=True, **shard)
    parts["tokenizer"].save_pretrained(folder / "tokenizer")
    from svd_lab.wan.versions import get_wan_version

    spec = get_wan_version(version)
    (folder / "scheduler").mkdir(parents=True, exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(unipc_config(spec.shift), indent=2))
    index = {"_class_name": "WanPipeline", "scheduler": ["diffusers", "UniPCMultistepScheduler"],
             "text_encoder": ["transformers", "UMT5EncoderModel"], "tokenizer": ["transformers", "T5TokenizerFast"],
             "transformer": ["diffusers", "WanTransformer3DModel"], "vae": ["diffusers", "AutoencoderKLWan"]}
    if spec.takes_image:
        index["expand_timesteps"] = True
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    return folder


def unipc_config(shift: float) -> dict:
    """The scheduler config of the released Wan pipelines (UniPC on flow sigmas), with ``shift``."""
    return {"_class_name": "UniPCMultistepScheduler", "beta_end": 0.02, "beta_schedule": "linear",
            "beta_start": 0.0001, "final_sigmas_type": "zero", "flow_shift": shift, "lower_order_final": True,
            "num_train_timesteps": 1000, "predict_x0": True, "prediction_type": "flow_prediction",
            "solver_order": 2, "solver_type": "bh2", "timestep_spacing": "linspace", "use_flow_sigmas": True}
