"""The sgm -> diffusers key mapping on the FULL-size key lists of Stability's three checkpoint layouts.

``shared/fixtures/sgm/keys_*.json`` are the state-dict keys and shapes of sgm's own full-size models (svd, svd_xt,
svd_image_decoder; built by sgm on the meta device). Every key must land on a meta-device diffusers/transformers
module with the same shape, nothing may be left over on either side beyond the documented ignore list, and the
variant must be recognised from the keys alone. Headers only: no tensor data, a few seconds in all.
"""

from __future__ import annotations

import json

import pytest

from svd_lab.convert import sgm

LAYOUTS = {  # key list -> (decoder kind, ignored tensors, VAE parameters in diffusers)
    "keys_svd.json": ("temporal", 252, 97_742_847),
    "keys_svd_xt.json": ("temporal", 252, 97_742_847),
    "keys_svd_image_decoder.json": ("image", 254, 83_653_863),
}


@pytest.fixture(scope="module")
def key_lists(shared_fixtures):
    return {name: json.loads((shared_fixtures / "sgm" / name).read_text()) for name in LAYOUTS}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_every_full_size_key_maps_onto_meta_modules(key_lists, name):
    shapes = key_lists[name]["tensors"]
    kind, n_ignored, vae_params = LAYOUTS[name]
    plan = sgm.plan_conversion(shapes)
    assert plan.decoder_kind == kind
    assert plan.profile == "full"
    modules = sgm.build_empty_modules(plan)
    sgm.check_plan_against_modules(plan, modules)  # raises on any missing / unexpected key or shape mismatch

    # Both directions, spelled out: module keys == converted keys, with equal shapes ...
    for component, module in modules.items():
        want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        assert plan.target_shapes(component) == want, component
    # ... and every file key is used or ignored, exactly once.
    used, ignored = plan.used_keys(), set(plan.ignored)
    assert used | ignored == set(shapes) and not used & ignored
    assert len(ignored) == n_ignored
    # The ignore list covers only what inference never reads (README.json "keys_by_subprefix").
    allowed = ("conditioner.embedders.0.open_clip.model.", "conditioner.embedders.3.encoder.decoder.",
               "conditioner.embedders.3.encoder.post_quant_conv.", "first_stage_model.encoder.",
               "first_stage_model.quant_conv.")
    assert all(k.startswith(allowed) and ".visual." not in k for k in ignored)
    # Parameter counts (FACTS: diffusers classes on meta).
    counts = {c: sum(p.numel() for p in m.parameters()) for c, m in modules.items()}
    assert counts == {"unet": 1_524_623_082, "vae": vae_params, "image_encoder": 632_076_800}


def test_full_size_configs_equal_the_hub_configs(key_lists):
    from svd_lab.svd.configs import (
        full_image_encoder_config,
        full_image_vae_config,
        full_unet_config,
        full_vae_config,
    )

    plan = sgm.plan_conversion(key_lists["keys_svd.json"]["tensors"], num_frames=14)
    assert plan.configs["unet"] == full_unet_config(14)
    assert plan.configs["vae"] == full_vae_config()
    hub_clip = full_image_encoder_config()
    assert plan.configs["image_encoder"] == {k: hub_clip[k] for k in plan.configs["image_encoder"]}
    image = sgm.plan_conversion(key_lists["keys_svd_image_decoder.json"]["tensors"])
    assert image.configs["vae"] == full_image_vae_config()
    assert image.vae_class_name == "AutoencoderKL"


def test_quirk_mappings_on_full_size_keys(key_lists):
    """The converter quirks of README.json, checked on the real names."""
    plan = sgm.plan_conversion(key_lists["keys_svd.json"]["tensors"])
    vae, clip, unet = plan.targets["vae"], plan.targets["image_encoder"], plan.targets["unet"]
    # conditioning-frame encoder comes from embedders.3, not first_stage_model.encoder
    assert vae["encoder.conv_in.weight"].key == "conditioner.embedders.3.encoder.encoder.conv_in.weight"
    assert vae["quant_conv.weight"].key == "conditioner.embedders.3.encoder.quant_conv.weight"
    # reversed decoder level order, mix_factor copied unchanged, time_mix_conv -> time_conv_out
    assert vae["decoder.up_blocks.3.resnets.0.spatial_res_block.conv1.weight"].key == \
        "first_stage_model.decoder.up.0.block.0.conv1.weight"
    assert vae["decoder.up_blocks.0.resnets.2.time_mixer.mix_factor"] == \
        sgm.TensorSource("first_stage_model.decoder.up.3.block.2.mix_factor", "copy")
    assert vae["decoder.time_conv_out.weight"].key == "first_stage_model.decoder.conv_out.time_mix_conv.weight"
    # 1x1-conv attention -> Linear
    assert vae["decoder.mid_block.attentions.0.to_q.weight"] == \
        sgm.TensorSource("first_stage_model.decoder.mid.attn_1.q.weight", "squeeze_1x1")
    assert plan.target_shapes("vae")["decoder.mid_block.attentions.0.to_out.0.weight"] == (512, 512)
    # packed qkv, transposed projection, ln_pre spelling
    q = clip["vision_model.encoder.layers.31.self_attn.q_proj.weight"]
    packed = "conditioner.embedders.0.open_clip.model.visual.transformer.resblocks.31.attn.in_proj_weight"
    assert (q.key, q.transform) == (packed, "chunk_q")
    assert plan.target_shapes("image_encoder")["visual_projection.weight"] == (1024, 1280)
    assert clip["vision_model.pre_layrnorm.weight"].key.endswith("visual.ln_pre.weight")
    # the mix_factor of both resnets of a resnet-only output block (diffusers' script gets this wrong)
    assert unet["up_blocks.0.resnets.1.time_mixer.mix_factor"].key == \
        "model.diffusion_model.output_blocks.1.0.time_mixer.mix_factor"
    assert unet["up_blocks.0.resnets.0.time_mixer.mix_factor"].key == \
        "model.diffusion_model.output_blocks.0.0.time_mixer.mix_factor"
    assert unet["add_embedding.linear_1.weight"].key == "model.diffusion_model.label_emb.0.0.weight"


def test_transforms_agree_with_their_shapes():
    import torch

    packed = torch.arange(12.0).reshape(6, 2)
    assert torch.equal(sgm.TensorSource("k", "chunk_k").apply(packed), packed[2:4])
    assert sgm.TensorSource("k", "chunk_v").output_shape((6, 2)) == (2, 2)
    assert sgm.TensorSource("k", "chunk_v").output_shape((5, 2)) is None
    assert sgm.TensorSource("k", "squeeze_1x1").output_shape((4, 4, 3, 3)) is None
    proj = torch.randn(3, 5)
    assert torch.equal(sgm.TensorSource("k", "transpose").apply(proj), proj.T)


# ------------------------------------------------------------------------------------------- strictness
@pytest.fixture(scope="module")
def svd_shapes(key_lists):
    return dict(key_lists["keys_svd.json"]["tensors"])


def test_unknown_keys_are_named(svd_shapes):
    shapes = {**svd_shapes, "model_ema.decay": [], "conditioner.embedders.0.open_clip.model.visual.attn_pool.q": [4]}
    with pytest.raises(sgm.SgmCheckpointError, match="2 tensor") as err:
        sgm.plan_conversion(shapes)
    assert "model_ema.decay" in str(err.value) and "attn_pool.q" in str(err.value)


def test_missing_tensor_is_named_before_anything_is_read(svd_shapes):
    key = "model.diffusion_model.output_blocks.4.1.transformer_blocks.0.attn2.to_k.weight"
    shapes = {k: v for k, v in svd_shapes.items() if k != key}
    plan = sgm.plan_conversion(shapes)
    with pytest.raises(sgm.SgmCheckpointError, match="up_blocks.1.attentions.1.transformer_blocks.0.attn2.to_k"):
        sgm.check_plan_against_modules(plan, sgm.build_empty_modules(plan))


def test_shape_mismatch_is_named(svd_shapes):
    key = "first_stage_model.decoder.up.2.block.1.conv2.weight"
    shapes = {**svd_shapes, key: [512, 512, 3, 1]}
    plan = sgm.plan_conversion(shapes)
    with pytest.raises(sgm.SgmCheckpointError, match="shape mismatch.*decoder.up_blocks.1.resnets.1"):
        sgm.check_plan_against_modules(plan, sgm.build_empty_modules(plan))


def test_not_an_svd_checkpoint(svd_shapes):
    image_model = {k: v for k, v in svd_shapes.items() if ".time_stack." not in k}
    with pytest.raises(sgm.SgmCheckpointError, match="no temporal layers"):
        sgm.plan_conversion(image_model)
    with pytest.raises(sgm.SgmCheckpointError, match="not an sgm"):
        sgm.plan_conversion({"state_dict.weight": [3]})
    no_decoder = {k: v for k, v in svd_shapes.items() if not k.startswith("first_stage_model.decoder.")}
    with pytest.raises(sgm.SgmCheckpointError, match="first-stage decoder"):
        sgm.plan_conversion(no_decoder)


# ------------------------------------------------------------------------------------------- versions
@pytest.mark.parametrize("file_name, kind, version", [
    ("svd.safetensors", "temporal", "svd"),
    ("svd_xt.safetensors", "temporal", "svd_xt"),
    ("svd_xt_1_1.safetensors", "temporal", "svd_xt_1_1"),
    ("svd_image_decoder.safetensors", "image", "svd_image_decoder"),
    ("svd_xt_image_decoder.safetensors", "image", "svd_xt_image_decoder"),
    ("my-download.safetensors", "temporal", "svd"),
    ("svd_xt (1).safetensors", "temporal", "svd_xt"),
    # the keys decide the decoder: a renamed image-decoder file stays an image-decoder file
    ("svd.safetensors", "image", "svd_image_decoder"),
    ("svd_xt_image_decoder.safetensors", "temporal", "svd_xt"),
])
def test_version_from_file_name_and_keys(file_name, kind, version):
    assert sgm.detect_version(file_name, kind)[0] == version


def test_explicit_version_must_fit_the_keys():
    assert sgm.detect_version("a.safetensors", "temporal", "svd_xt") == ("svd_xt", "argument")
    with pytest.raises(sgm.SgmCheckpointError, match="uses the image decoder.*hold the temporal decoder"):
        sgm.detect_version("a.safetensors", "temporal", "svd_image_decoder")
    with pytest.raises(sgm.SgmCheckpointError, match="unknown SVD version"):
        sgm.detect_version("a.safetensors", "temporal", "svd_2")


# ------------------------------------------------------------------------------------------- architecture
def test_header_only_modules_do_not_import_torch():
    """Key mapping, config inference and planning work on names and shapes: importing them pulls in no torch."""
    import subprocess
    import sys

    code = ("import sys; import svd_lab.convert.sgm_keys, svd_lab.convert.sgm_config, svd_lab.convert.sgm_plan; "
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'svd_lab.cli') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_converter_modules_import_no_cli():
    """Library code sits below the command line: nothing in svd_lab.convert imports svd_lab.cli."""
    import ast
    from pathlib import Path

    import svd_lab.convert

    for path in Path(svd_lab.convert.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        assert not [n for n in names if n == "svd_lab.cli" or n.startswith("svd_lab.commands")], path.name


def test_errors_come_from_svd_lab_errors():
    from svd_lab import errors

    assert sgm.SgmCheckpointError is errors.SgmCheckpointError
    with pytest.raises(errors.UnknownNameError, match="unknown SVD version 'svd_2'") as err:
        sgm.detect_version("a.safetensors", "temporal", "svd_2")
    assert isinstance(err.value, KeyError) and isinstance(err.value, errors.SgmCheckpointError)


def test_every_transform_is_one_row_of_data():
    """A transform is an enum member with its shape rule and tensor operation side by side, nothing else."""
    from svd_lab.convert import sgm_keys

    assert set(sgm_keys._RULES) == set(sgm.Transform)
    assert sgm.TensorSource("k", "chunk_q").transform is sgm.Transform.CHUNK_Q
    assert sgm.TensorSource("k") == sgm.TensorSource("k", "copy")
    with pytest.raises(ValueError):
        sgm.TensorSource("k", "flip")
