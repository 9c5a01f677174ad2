"""The converted tiny sgm model computes what Stability's own code computed (shared/fixtures/sgm/tiny).

``tiny/svd_tiny.safetensors`` is a randomly initialised SVD with svd.yaml's structure; ``tiny/reference.safetensors``
holds sgm's inputs and outputs for it (fp32, CPU, 1 thread). Tolerances are max |difference| in fp32, about twice
what the fixture's authors measured for the same comparison with diffusers/transformers modules (README.json
"diffusers_cross_check"); the differences are floating-point order of operations (SDPA vs. einsum attention,
Linear vs. 1x1 conv), far below what any conversion mistake causes (README.json "sensitivity": >= 3e-4 relative).

All comparisons run with torch.set_num_threads(1) on tensors cloned out of safetensors (aligned storage), as the
references were made.
"""

from __future__ import annotations

import pytest
import torch

from conftest import max_abs_diff
from svd_lab.convert import sgm
from svd_lab.convert.sgm_preprocess import sgm_clip_preprocess

TOL_UNET = 1.5e-6  # measured 6.9e-7
TOL_VAE = 4e-6  # measured 1.8e-6 (decoding_t 3), 8.3e-7 (decoding_t 1), 1.3e-6 (encoder)
TOL_CLIP = 1e-6  # measured 4.8e-7 (image_embeds), 7.2e-7 (last_hidden_state)


@pytest.fixture(scope="module")
def tiny(sgm_tiny_dir, one_thread):
    return sgm.load_sgm_modules(sgm_tiny_dir / "svd_tiny.safetensors", progress=False)


def test_tiny_file_is_recognised(tiny):
    assert tiny.plan.profile == "tiny"
    assert tiny.decoder_kind == "temporal"
    assert tiny.plan.configs["unet"]["num_attention_heads"] == [2, 4]  # num_head_channels 16 (config.yaml)
    assert tiny.plan.configs["image_encoder"]["num_attention_heads"] == 2  # head_width 32
    counts = {name: sum(p.numel() for p in m.parameters())
              for name, m in (("unet", tiny.unet), ("vae", tiny.vae), ("image_encoder", tiny.image_encoder))}
    assert counts == {"unet": 1_834_038, "vae": 605_247, "image_encoder": 158_464}
    for module in (tiny.unet, tiny.vae, tiny.image_encoder):
        assert not module.training
        assert all(not p.requires_grad and p.device.type == "cpu" and p.dtype == torch.float32
                   for p in module.parameters())


def unet_call(unet, sgm_reference) -> torch.Tensor:
    """sgm passes per-frame rows (B*T, ...); diffusers takes (B, T, ...) and per-video timestep/context/ids."""
    sample = sgm_reference["unet_in_sample"].reshape(2, 3, 8, 8, 8)
    with torch.no_grad():
        out = unet(sample, sgm_reference["unet_in_t_per_video"],
                   encoder_hidden_states=sgm_reference["unet_in_context_per_video"],
                   added_time_ids=sgm_reference["unet_in_added_time_ids"]).sample
    return out.reshape(6, 4, 8, 8)


def test_unet_equals_sgm(tiny, sgm_reference):
    # the per-video inputs are what sgm repeated per frame
    assert torch.equal(sgm_reference["unet_in_t_per_video"].repeat_interleave(3), sgm_reference["unet_in_t"])
    assert max_abs_diff(unet_call(tiny.unet, sgm_reference), sgm_reference["unet_out"]) <= TOL_UNET


def test_unet_groupnorm_eps_is_what_makes_it_exact(tiny, sgm_reference):
    """With diffusers' own eps (1e-6 in most resnets) the output is ~2.9e-5 off: that is eps, not the mapping."""
    import diffusers

    with torch.device("meta"):
        fresh = diffusers.UNetSpatioTemporalConditionModel(**tiny.plan.configs["unet"])
    diffusers_eps = {n: m.eps for n, m in fresh.named_modules() if isinstance(m, torch.nn.GroupNorm)}
    norms = {n: m for n, m in tiny.unet.named_modules() if isinstance(m, torch.nn.GroupNorm)}
    assert norms.keys() == diffusers_eps.keys()
    assert all(m.eps == 1e-5 for n, m in norms.items() if ".resnets." in f".{n}")
    assert any(norms[n].eps != eps for n, eps in diffusers_eps.items())
    try:
        for name, module in norms.items():
            module.eps = diffusers_eps[name]
        diff = max_abs_diff(unet_call(tiny.unet, sgm_reference), sgm_reference["unet_out"])
        assert 1e-5 < diff < 1e-4, diff
    finally:
        assert sgm.match_sgm_groupnorm_eps(tiny.unet) > 0
    assert max_abs_diff(unet_call(tiny.unet, sgm_reference), sgm_reference["unet_out"]) <= TOL_UNET


def decode(vae, z: torch.Tensor, decoding_t: int) -> torch.Tensor:
    """sgm's decode_first_stage: (1 / scale_factor) * z, decoding_t frames per decoder call."""
    chunks = []
    with torch.no_grad():
        for start in range(0, z.shape[0], decoding_t):
            chunk = (1.0 / vae.config.scaling_factor) * z[start:start + decoding_t]
            chunks.append(vae.decode(chunk, num_frames=chunk.shape[0]).sample)
    return torch.cat(chunks)


@pytest.mark.parametrize("decoding_t, key", [(3, "vae_decoded"), (1, "vae_decoded_t1")])
def test_vae_decode_equals_sgm(tiny, sgm_reference, decoding_t, key):
    assert max_abs_diff(decode(tiny.vae, sgm_reference["vae_in_z"], decoding_t), sgm_reference[key]) <= TOL_VAE


def test_vae_decode_chunks_differ(sgm_reference):
    """decoding_t changes the result (temporal convs zero-pad at chunk borders): the two references differ a lot,
    so passing both tests above proves the temporal layers are mapped, not bypassed."""
    assert max_abs_diff(sgm_reference["vae_decoded"], sgm_reference["vae_decoded_t1"]) > 0.1


def test_conditioning_frame_encoder_equals_sgm(tiny, sgm_reference):
    """sgm encodes the noised conditioning frame with conditioner.embedders.3 (mode, not scaled by 0.18215)."""
    noised = sgm_reference["sample_in_image"] + 0.02 * sgm_reference["sample_cond_aug_noise"]
    with torch.no_grad():
        latent = tiny.vae.encode(noised).latent_dist.mode()
    assert max_abs_diff(latent.expand(3, -1, -1, -1), sgm_reference["sample_c_concat"]) <= TOL_VAE


def test_clip_preprocessing_is_bitwise_sgm(sgm_reference):
    assert torch.equal(sgm_clip_preprocess(sgm_reference["clip_in_image"]), sgm_reference["clip_preprocessed"])


def test_clip_embedding_equals_sgm(tiny, sgm_reference):
    with torch.no_grad():
        out = tiny.image_encoder(sgm_clip_preprocess(sgm_reference["clip_in_image"]))
    assert max_abs_diff(out.image_embeds[:, None], sgm_reference["clip_out"]) <= TOL_CLIP
    assert max_abs_diff(out.last_hidden_state, sgm_reference["clip_last_hidden_state"]) <= TOL_CLIP
    assert max_abs_diff(tiny.image_encoder.vision_model.post_layernorm(out.last_hidden_state[:, 0]),
                    sgm_reference["clip_pooler_output"]) <= TOL_CLIP


def test_half_precision_load_is_the_cast_fp32_model(tiny, sgm_tiny_dir):
    half = sgm.load_sgm_modules(sgm_tiny_dir / "svd_tiny.safetensors", dtype=torch.float16, progress=False)
    for name in ("unet", "vae", "image_encoder"):
        full_sd, half_sd = getattr(tiny, name).state_dict(), getattr(half, name).state_dict()
        assert full_sd.keys() == half_sd.keys()
        for key, value in half_sd.items():
            assert value.dtype == torch.float16, key
            assert torch.equal(value, full_sd[key].half()), key


# ------------------------------------------------------------------------------------------- the one CLIP resize
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_clip_resize_is_diffusers_bit_for_bit(dtype, channels_last, one_thread):
    """svd_lab.svd.components.resize_with_antialiasing(reference="diffusers") is diffusers' own resize in every
    dtype and layout. Channels-last is how diffusers lays out a PIL image; there the layout of the convolution
    (kornia's filter2d: input.view(-1, C, H, W)) decides the rounding in half precision."""
    from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import (
        _resize_with_antialiasing,
    )

    from svd_lab.svd.components import resize_with_antialiasing

    generator = torch.Generator().manual_seed(0)
    for height, width in ((576, 1024), (64, 64), (100, 300)):
        image = (torch.rand(1, 3, height, width, generator=generator) * 2 - 1).to(dtype)
        if channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        ours = resize_with_antialiasing(image, (224, 224))
        assert ours.dtype == dtype
        assert torch.equal(ours, _resize_with_antialiasing(image, (224, 224))), (height, width)


def test_kornia_and_diffusers_resize_differ_only_where_documented(one_thread):
    """The two references share the arithmetic; in float32 on finite values they agree bit for bit. kornia skips
    the blur when nothing shrinks (a NaN stays one pixel) and blurs half precision in float32."""
    from svd_lab.svd.components import resize_with_antialiasing

    generator = torch.Generator().manual_seed(1)
    for height, width in ((576, 1024), (224, 224), (64, 64), (300, 100)):
        image = torch.rand(2, 3, height, width, generator=generator) * 2 - 1
        assert torch.equal(resize_with_antialiasing(image, (224, 224), reference="kornia"),
                           resize_with_antialiasing(image, (224, 224))), (height, width)
    image = torch.rand(1, 3, 64, 64, generator=generator)
    image[0, 0, 10, 10] = float("nan")
    spread = resize_with_antialiasing(image, (224, 224)).isnan().sum()
    assert resize_with_antialiasing(image, (224, 224), reference="kornia").isnan().sum() < spread
    half = (torch.rand(1, 3, 576, 1024, generator=generator) * 2 - 1).half()
    assert not torch.equal(resize_with_antialiasing(half, (224, 224), reference="kornia"),
                           resize_with_antialiasing(half, (224, 224)))
    with pytest.raises(ValueError, match="reference must be"):
        resize_with_antialiasing(image, (224, 224), reference="pil")
