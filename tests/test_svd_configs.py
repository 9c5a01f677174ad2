"""SVD versions, network configs, meta-device parameter counts and the tiny profile's deterministic init."""

from __future__ import annotations

import json

import pytest
import torch

from svd_lab.paths import shared_fixtures
from svd_lab.svd import components, configs
from svd_lab.svd.versions import VERSIONS, check_micro_conditioning, get_version


# ------------------------------------------------------------------ versions and defaults
@pytest.mark.parametrize(
    "name, frames, steps, gmin, gmax, decoder",
    [
        ("svd", 14, 25, 1.0, 2.5, "temporal"),
        ("svd_xt", 25, 30, 1.5, 3.0, "temporal"),
        ("svd_xt_1_1", 25, 30, 1.5, 3.0, "temporal"),
        ("svd_image_decoder", 14, 25, 1.0, 2.5, "image"),
        ("svd_xt_image_decoder", 25, 30, 1.5, 3.0, "image"),
    ],
)
def test_version_table(name, frames, steps, gmin, gmax, decoder):
    spec = get_version(name)
    assert (spec.num_frames, spec.num_steps, spec.min_guidance, spec.max_guidance, spec.decoder) == (
        frames, steps, gmin, gmax, decoder)
    common = {"height": 576, "width": 1024, "fps_id": 6, "motion_bucket_id": 127, "cond_aug": 0.02, "seed": 23,
              "decoding_t": 14, "sigma_min": 0.002, "sigma_max": 700.0, "rho": 7.0}
    assert {k: spec.defaults()[k] for k in common} == common
    assert spec.diffusers_format == (decoder == "temporal")


def test_versions_are_exactly_five_and_unknown_is_rejected():
    assert set(VERSIONS) == {"svd", "svd_xt", "svd_xt_1_1", "svd_image_decoder", "svd_xt_image_decoder"}
    with pytest.raises(ValueError, match="known versions: svd, svd_xt"):
        get_version("svd2")


def test_micro_conditioning_warnings_like_the_reference():
    with pytest.warns(UserWarning, match="fps_id 3 is outside 5..30"):
        assert len(check_micro_conditioning(3, 127, 0.02)) == 1
    with pytest.warns(UserWarning, match="motion_bucket_id 300 is above 255"):
        check_micro_conditioning(6, 300, 0.02)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_micro_conditioning(6, 127, 0.02) == []
        assert check_micro_conditioning(30, 255, 0.0) == []
    with pytest.raises(ValueError, match=">= 0"):
        check_micro_conditioning(6, -1, 0.02)


# ------------------------------------------------------------------ full-size structure
@pytest.mark.parametrize("version, vae_count", [("svd", 97_742_847), ("svd_xt", 97_742_847),
                                                ("svd_image_decoder", 83_653_863)])
def test_full_size_parameter_counts_on_meta(version, vae_count):
    comps = components.build_components("full", version, device="meta")
    assert comps.parameter_counts() == {"unet": 1_524_623_082, "vae": vae_count, "image_encoder": 632_076_800}
    # AlphaBlender's mix_factor is created on the CPU even under torch.device('meta'): all must be on meta now.
    devices = {p.device.type for m in comps.modules().values() for p in list(m.parameters()) + list(m.buffers())}
    assert devices == {"meta"}
    assert comps.unet.config.num_frames == get_version(version).num_frames
    assert not comps.unet.training


def _strip(d):
    return {k: v for k, v in d.items() if not k.startswith("_")}


@pytest.mark.parametrize("version", ["svd", "svd_xt"])
def test_full_configs_equal_the_hub_files(version):
    fixtures = shared_fixtures()
    if fixtures is None:
        pytest.skip("shared fixtures (hub configs) not available")
    hub = fixtures / "hub" / version
    assert _strip(json.loads((hub / "unet" / "config.json").read_text())) == configs.unet_config("full", version)
    assert _strip(json.loads((hub / "vae" / "config.json").read_text())) == configs.vae_config("full", version)[1]
    clip = _strip(json.loads((hub / "image_encoder" / "config.json").read_text()))
    clip.pop("architectures"), clip.pop("model_type")
    assert clip.pop("torch_dtype") == "float16"  # why loaders must always pass a dtype
    assert clip == configs.full_image_encoder_config()
    assert _strip(json.loads((hub / "scheduler" / "scheduler_config.json").read_text())) == configs.scheduler_config()
    fe = _strip(json.loads((hub / "feature_extractor" / "preprocessor_config.json").read_text()))
    fe.pop("feature_extractor_type"), fe.pop("image_processor_type")
    assert fe == configs.feature_extractor_config()


def test_tiny_configs_equal_the_sgm_fixture_description():
    fixtures = shared_fixtures()
    if fixtures is None:
        pytest.skip("shared fixtures (sgm tiny README) not available")
    eq = json.loads((fixtures / "sgm" / "tiny" / "README.json").read_text())["diffusers_equivalents"]
    assert eq["UNetSpatioTemporalConditionModel"] == configs.tiny_unet_config()
    assert eq["AutoencoderKLTemporalDecoder"] == configs.tiny_vae_config()
    assert eq["CLIPVisionModelWithProjection"]["config"] == configs.tiny_image_encoder_config()
    sched = _strip(eq["EulerDiscreteScheduler"])
    assert sched == {k: v for k, v in configs.scheduler_config().items() if k in sched}
    assert eq["parameter_counts_match"]["unet"] == configs.TINY_PARAMETER_COUNTS["unet"]
    assert eq["parameter_counts_match"]["clip_vision"] == configs.TINY_PARAMETER_COUNTS["image_encoder"]


# ------------------------------------------------------------------ tiny profile
def test_tiny_components_counts_eval_mode_and_seeded_init():
    a = components.build_components("tiny", "svd", seed=0)
    assert a.parameter_counts() == {k: configs.TINY_PARAMETER_COUNTS[k] for k in ("unet", "vae", "image_encoder")}
    assert (a.profile, a.version, a.decoder, a.source) == ("tiny", "svd", "temporal", "random init, seed 0")
    assert not any(m.training for m in a.modules().values())
    state = torch.get_rng_state()
    b = components.build_components("tiny", "svd", seed=0)
    assert torch.equal(torch.get_rng_state(), state), "building must not disturb the global random state"
    c = components.build_components("tiny", "svd", seed=1)
    for name in ("unet", "vae", "image_encoder"):
        pa, pb, pc = (dict(x.modules()[name].named_parameters()) for x in (a, b, c))
        assert all(torch.equal(pa[k], pb[k]) for k in pa), name
        assert not all(torch.equal(pa[k], pc[k]) for k in pa), name


def test_tiny_image_decoder_version_uses_the_per_frame_autoencoder():
    from diffusers import AutoencoderKL

    comps = components.build_components("tiny", "svd_xt_image_decoder")
    assert isinstance(comps.vae, AutoencoderKL) and comps.decoder == "image"
    assert comps.parameter_counts()["vae"] == configs.TINY_PARAMETER_COUNTS["image_vae"]


def test_unknown_profile_is_rejected():
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        components.build_components("huge")
