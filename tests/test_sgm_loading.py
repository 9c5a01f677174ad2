"""Loading and converting sgm files: strictness on real files, dtypes, the diffusers folder, the CLI.

Bad files are made in tmp_path from the tiny fixture (shared/fixtures/sgm/tiny/svd_tiny.safetensors, 12 MB).
"""

from __future__ import annotations

import json
import os

import pytest
import torch

from svd_lab.alignment import unaligned_tensors
from svd_lab.cli import main as cli_main
from svd_lab.convert import sgm


@pytest.fixture(scope="module")
def tiny_file(shared_fixtures):
    return shared_fixtures / "sgm" / "tiny" / "svd_tiny.safetensors"


@pytest.fixture(scope="module")
def tiny_tensors(tiny_file):
    from safetensors.torch import load_file

    return {k: v.clone() for k, v in load_file(tiny_file).items()}


@pytest.fixture(scope="module")
def tiny(tiny_file):
    return sgm.load_sgm_modules(tiny_file, progress=False)


def write(path, tensors):
    from safetensors.torch import save_file

    save_file(tensors, str(path))
    return path


@pytest.fixture
def no_tensor_reads(monkeypatch):
    """Fail if any tensor data is read: errors must come from the header alone, before any copy."""
    def refuse(self, key):
        raise AssertionError(f"tensor {key} was read before the file was validated")

    monkeypatch.setattr(sgm._TensorReader, "get", refuse)


def test_unknown_key_in_a_file_is_named(tmp_path, tiny_tensors, no_tensor_reads):
    bad = write(tmp_path / "svd.safetensors",
                {**tiny_tensors, "model.diffusion_model.extra_head.weight": torch.ones(2)})
    with pytest.raises(sgm.SgmCheckpointError, match="model.diffusion_model.extra_head.weight"):
        sgm.load_sgm_modules(bad, progress=False)


def test_missing_tensor_in_a_file_is_named(tmp_path, tiny_tensors, no_tensor_reads):
    key = "first_stage_model.decoder.up.1.block.2.time_stack.out_layers.3.weight"
    bad = write(tmp_path / "svd.safetensors", {k: v for k, v in tiny_tensors.items() if k != key})
    with pytest.raises(sgm.SgmCheckpointError, match=r"vae: 1 tensor\(s\) not in the file: "
                                                     r"decoder.up_blocks.2.resnets.2.temporal_res_block.conv2.weight"):
        sgm.load_sgm_modules(bad, progress=False)


def test_wrong_shape_in_a_file_is_named(tmp_path, tiny_tensors, no_tensor_reads):
    key = "first_stage_model.decoder.up.1.block.2.conv2.weight"
    bad = write(tmp_path / "svd.safetensors", {**tiny_tensors, key: torch.zeros(32, 32, 1, 1)})
    with pytest.raises(sgm.SgmCheckpointError, match=r"decoder.up_blocks.2.resnets.2.spatial_res_block.conv2.weight: "
                                                     r"file \(32, 32, 1, 1\) .* vs module \(32, 32, 3, 3\)"):
        sgm.load_sgm_modules(bad, progress=False)


def test_networks_that_do_not_fit_together(tmp_path, tiny_tensors, no_tensor_reads):
    key = "conditioner.embedders.0.open_clip.model.visual.proj"
    bad = write(tmp_path / "svd.safetensors", {**tiny_tensors, key: torch.zeros(64, 32)})
    with pytest.raises(sgm.SgmCheckpointError, match="CLIP embedding has 32 features but the UNet cross-attends to 64"):
        sgm.load_sgm_modules(bad, progress=False)


def test_truncated_and_foreign_files(tmp_path, tiny_file):
    truncated = tmp_path / "svd.safetensors"
    truncated.write_bytes(tiny_file.read_bytes()[: 5_000_000])
    with pytest.raises(sgm.SgmCheckpointError, match="not a readable safetensors file"):
        sgm.load_sgm_modules(truncated, progress=False)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(sgm.SgmCheckpointError, match="not a readable safetensors file"):
        sgm.load_sgm_modules(garbage, progress=False)
    with pytest.raises(sgm.SgmCheckpointError, match="no such file"):
        sgm.load_sgm_modules(tmp_path / "absent.safetensors", progress=False)
    other_model = write(tmp_path / "sd.safetensors", {"model.diffusion_model.input_blocks.0.0.weight": torch.ones(1)})
    with pytest.raises(sgm.SgmCheckpointError, match="no temporal layers"):
        sgm.load_sgm_modules(other_model, progress=False)


def test_fp16_file_and_bf16_modules(tmp_path, tiny_tensors, tiny):
    """The file's dtype does not matter; each tensor is converted on the way in."""
    half_file = write(tmp_path / "svd.safetensors", {k: v.half() for k, v in tiny_tensors.items()})
    loaded = sgm.load_sgm_modules(half_file, dtype=torch.bfloat16, progress=False)
    reference = tiny.vae.state_dict()
    for key, value in loaded.vae.state_dict().items():
        assert value.dtype == torch.bfloat16
        assert torch.equal(value, reference[key].half().to(torch.bfloat16)), key
    with pytest.raises(sgm.SgmCheckpointError, match="dtype must be"):
        sgm.load_sgm_modules(half_file, dtype=torch.int8, progress=False)


def test_memory_mapped_fallback_reopens_and_reads_the_same(monkeypatch, tiny_file, tiny):
    """safetensors < 0.8 has no pread backend: the reader memory-maps and reopens the file every reopen_bytes."""
    import safetensors

    real_open = safetensors.safe_open
    opened = []

    def old_safe_open(path, framework, device="cpu", **kwargs):
        if "backend" in kwargs:
            raise TypeError("safe_open() got an unexpected keyword argument 'backend'")
        opened.append(path)
        return real_open(path, framework, device=device)

    monkeypatch.setattr(safetensors, "safe_open", old_safe_open)
    monkeypatch.setattr(sgm._TensorReader, "reopen_bytes", 1_000_000)
    loaded = sgm.load_sgm_modules(tiny_file, progress=False)
    assert len(opened) > 5  # the 12 MB file was reopened every ~1 MB
    for name in ("unet", "vae", "image_encoder"):
        mine, ref = getattr(loaded, name).state_dict(), getattr(tiny, name).state_dict()
        assert all(torch.equal(mine[k], ref[k]) for k in ref), name
        assert unaligned_tensors(getattr(loaded, name)) == [], name  # nothing left in the file's memory map


# ------------------------------------------------------------------------------------------- diffusers folder
def test_convert_writes_a_diffusers_folder_that_loads_back(tmp_path, tiny_file, tiny):
    from svd_lab.svd.loading import load_diffusers_folder

    out = sgm.convert_sgm_to_diffusers(tiny_file, tmp_path / "svd-tiny", dtype=torch.float32, progress=False)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["feature_extractor", "image_encoder", "model_index.json", "scheduler", "svd_lab_conversion.json", "unet",
         "vae"])
    assert not [p for p in tmp_path.iterdir() if p.name != "svd-tiny"]  # no staging folder left
    record = json.loads((out / sgm.CONVERSION_RECORD).read_text())
    assert record["version"] == "svd" and record["unet_resnet_groupnorm_eps"] == 1e-5
    index = json.loads((out / "model_index.json").read_text())
    assert index["vae"] == ["diffusers", "AutoencoderKLTemporalDecoder"]

    components = load_diffusers_folder(out)  # H1's loader re-applies sgm's GroupNorm eps from the record
    for name in ("unet", "vae", "image_encoder"):
        mine, ref = getattr(components, name).state_dict(), getattr(tiny, name).state_dict()
        assert mine.keys() == ref.keys()
        assert all(torch.equal(mine[k], ref[k]) for k in ref), name
    eps = {n: m.eps for n, m in components.unet.named_modules() if isinstance(m, torch.nn.GroupNorm)}
    assert eps == {n: m.eps for n, m in tiny.unet.named_modules() if isinstance(m, torch.nn.GroupNorm)}


def test_diffusers_own_pipeline_reads_the_folder(tmp_path, tiny_file):
    from diffusers import StableVideoDiffusionPipeline

    out = sgm.convert_sgm_to_diffusers(tiny_file, tmp_path / "f16", dtype=torch.float16, progress=False)
    pipe = StableVideoDiffusionPipeline.from_pretrained(out, dtype=torch.float16, local_files_only=True)
    assert pipe.unet.dtype == torch.float16 and pipe.unet.config.num_frames == 14


def test_interrupted_conversion_leaves_nothing(monkeypatch, tmp_path, tiny_file):
    import diffusers

    def fail(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(diffusers.AutoencoderKLTemporalDecoder, "save_pretrained", fail)
    with pytest.raises(KeyboardInterrupt):
        sgm.convert_sgm_to_diffusers(tiny_file, tmp_path / "out", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_not_enough_disk_space_is_refused_before_loading(monkeypatch, tmp_path, tiny_file, no_tensor_reads):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(sgm.SgmCheckpointError, match="not enough free disk space"):
        sgm.convert_sgm_to_diffusers(tiny_file, tmp_path / "out", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_one_folder_writer_refuses_to_overwrite(tmp_path, tiny):
    """The converter writes through svd_lab.svd.loading.save_diffusers_folder(atomic=True): an existing folder is
    refused and left as it was; a plain save writes svd_lab_version.json where the converter writes its record."""
    from svd_lab.errors import CheckpointError
    from svd_lab.svd.loading import save_diffusers_folder

    components = sgm.to_components(tiny)
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(CheckpointError, match="already exists"):
        save_diffusers_folder(components, existing, atomic=True)
    assert list(tmp_path.iterdir()) == [existing] and not list(existing.iterdir())
    plain = save_diffusers_folder(components, tmp_path / "plain", record={"note": "x"})
    assert json.loads((plain / "svd_lab_version.json").read_text()) == {"note": "x", "version": "svd"}
    assert not (plain / sgm.CONVERSION_RECORD).exists()


# ------------------------------------------------------------------------------------------- command line
def test_cli_convert(tmp_path, tiny_file, capsys):
    out = tmp_path / "converted"
    assert cli_main(["convert", str(tiny_file), str(out), "--dtype", "fp32", "--version", "svd_xt",
                     "--no-progress"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    record = json.loads((out / sgm.CONVERSION_RECORD).read_text())
    assert (record["version"], record["version_source"], record["dtype"]) == ("svd_xt", "argument", "float32")
    assert json.loads((out / "unet" / "config.json").read_text())["num_frames"] == 25

    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert cli_main(["convert", str(tiny_file), str(out), "--no-progress"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before  # untouched


@pytest.mark.parametrize("make_input, message", [
    (lambda d: d / "absent.safetensors", "no such file"),
    (lambda d: (d / "model.ckpt").write_bytes(b"x") and d / "model.ckpt", "only .safetensors"),
    (lambda d: (d / "x.safetensors").write_bytes(b"\x00" * 64) and d / "x.safetensors", "not a readable"),
])
def test_cli_convert_bad_input(tmp_path, capsys, make_input, message):
    source = make_input(tmp_path)
    assert cli_main(["convert", str(source), str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1  # one line, no traceback
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_cli_convert_version_contradicting_the_keys(tmp_path, tiny_file, capsys):
    assert cli_main(["convert", str(tiny_file), str(tmp_path / "out"), "--version", "svd_image_decoder",
                     "--no-progress"]) == 2
    assert "temporal decoder" in capsys.readouterr().err
    assert not os.listdir(tmp_path)


# ------------------------------------------------------------------------------------------- image-decoder files
def test_image_decoder_file_loads_as_autoencoder_kl(tmp_path, tiny_tensors):
    """An image-decoder layout (svd_image_decoder.safetensors: plain 2D first-stage decoder + quant convs), made
    from the tiny file. Its decoder must compute what the verified temporal decoder computes with the temporal
    paths switched off (mix_factor -> alpha ~ 0, identity time_mix_conv, identity post_quant_conv): this checks
    the AutoencoderKL mapping (level order, attention, post_quant_conv) against a path proven equal to sgm."""
    decoder = "first_stage_model.decoder."

    def temporal_part(key):
        return key.startswith(decoder) and (".time_stack." in key or key.endswith(".mix_factor")
                                            or ".time_mix_conv." in key)

    image = {k: v for k, v in tiny_tensors.items() if not temporal_part(k)}
    image["first_stage_model.quant_conv.weight"] = torch.randn(8, 8, 1, 1)  # ignored (first-stage encoder path)
    image["first_stage_model.quant_conv.bias"] = torch.zeros(8)
    image["first_stage_model.post_quant_conv.weight"] = torch.eye(4).view(4, 4, 1, 1)
    image["first_stage_model.post_quant_conv.bias"] = torch.zeros(4)
    loaded = sgm.load_sgm_modules(write(tmp_path / "svd.safetensors", image), progress=False)
    assert (loaded.decoder_kind, loaded.version, type(loaded.vae).__name__) == (
        "image", "svd_image_decoder", "AutoencoderKL")
    assert "decoder from the keys" in loaded.version_source
    assert "first_stage_model.quant_conv.weight" in loaded.plan.ignored

    switched_off = dict(tiny_tensors)
    for key in switched_off:
        if key.startswith(decoder) and key.endswith(".mix_factor"):
            switched_off[key] = torch.full((1,), -40.0)  # sigmoid(-40) ~ 4e-18: spatial branch only
    identity = torch.zeros(3, 3, 3, 1, 1)
    identity[:, :, 1, 0, 0] = torch.eye(3)  # centre tap of the (3,1,1) kernel
    switched_off[decoder + "conv_out.time_mix_conv.weight"] = identity
    switched_off[decoder + "conv_out.time_mix_conv.bias"] = torch.zeros(3)
    temporal = sgm.load_sgm_modules(write(tmp_path / "t.safetensors", switched_off), progress=False)

    z = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        per_frame = loaded.vae.decode(z).sample
        reference = temporal.vae.decode(z, num_frames=3).sample
    assert (per_frame - reference).abs().max().item() <= 1e-5
    with torch.no_grad():  # and the encoder is the same conditioning encoder in both
        x = torch.rand(1, 3, 64, 64) * 2 - 1
        assert torch.equal(loaded.vae.encode(x).latent_dist.mode(), temporal.vae.encode(x).latent_dist.mode())


# ------------------------------------------------------------------------------------------- head sizes
@pytest.fixture(scope="module")
def unregistered_file(tmp_path_factory, tiny_tensors):
    """The tiny model with its second OpenCLIP layer dropped: a valid sgm SVD file with 16-channel UNet heads and
    32-channel CLIP heads that matches no registered profile, so nothing tells the converter its head sizes."""
    layer = "conditioner.embedders.0.open_clip.model.visual.transformer.resblocks.1."
    tensors = {k: v for k, v in tiny_tensors.items() if not k.startswith(layer)}
    return write(tmp_path_factory.mktemp("unregistered") / "svd.safetensors", tensors)


def _heads(folder):
    unet = json.loads((folder / "unet" / "config.json").read_text())["num_attention_heads"]
    clip = json.loads((folder / "image_encoder" / "config.json").read_text())["num_attention_heads"]
    return unet, clip


def test_cli_convert_head_size_flags(tmp_path, unregistered_file, capsys):
    """Without the sizes the converter assumes Stability's 64 channels per head: the UNet's 32-channel level
    cannot be split (an error naming the flags) and CLIP's 64 channels silently become 1 head instead of 2."""
    assert cli_main(["convert", str(unregistered_file), str(tmp_path / "default"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "32 channels are not a multiple of the attention head size 64" in err and "--unet-head-channels" in err
    assert not (tmp_path / "default").exists()

    only_unet = tmp_path / "only-unet"
    assert cli_main(["convert", str(unregistered_file), str(only_unet), "--unet-head-channels", "16",
                     "--dtype", "fp32", "--no-progress"]) == 0
    assert _heads(only_unet) == ([2, 4], 1)  # the mis-conversion --clip-head-width exists for

    out = tmp_path / "both"
    assert cli_main(["convert", str(unregistered_file), str(out), "--unet-head-channels", "16",
                     "--clip-head-width", "32", "--dtype", "fp32", "--no-progress"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert _heads(out) == ([2, 4], 2)  # the tiny model's own heads (config.yaml: num_head_channels 16)


@pytest.mark.parametrize("value", ["0", "-16", "sixteen", "1.5"])
def test_cli_head_size_must_be_a_positive_integer(tmp_path, unregistered_file, capsys, value):
    for command in (["convert", str(unregistered_file), str(tmp_path / "out")], ["sample", str(unregistered_file)]):
        with pytest.raises(SystemExit) as exit_info:
            cli_main([*command, "--clip-head-width", value])
        assert exit_info.value.code == 2
        assert f"--clip-head-width: expected a positive whole number of channels per head, got '{value}'" in \
            capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_head_sizes_through_the_python_api(tmp_path, unregistered_file, tiny_file):
    from svd_lab.errors import InputError
    from svd_lab.svd.loading import CheckpointLoadError, load_checkpoint

    with pytest.raises(InputError, match="unet_head_channels must be a positive integer"):
        sgm.plan_conversion(sgm.read_header(unregistered_file)[0], unet_head_channels=0)
    loaded = load_checkpoint(unregistered_file, unet_head_channels=16, clip_head_width=32, progress=False)
    assert loaded.unet.config.num_attention_heads == [2, 4] and loaded.image_encoder.config.num_attention_heads == 2
    folder = sgm.convert_sgm_to_diffusers(tiny_file, tmp_path / "converted", progress=False)
    with pytest.raises(CheckpointLoadError, match="diffusers folder: its attention head sizes are in its configs"):
        load_checkpoint(folder, unet_head_channels=16)


def test_cli_sample_head_size_flags(tmp_path, unregistered_file, capsys):
    """`svd-lab sample --checkpoint FILE` passes the sizes to the converter (sample -> load_pipeline ->
    load_checkpoint -> load_sgm_modules); without a --checkpoint they are refused."""
    import numpy as np
    from PIL import Image

    png = tmp_path / "input.png"
    Image.fromarray(np.full((64, 64, 3), 128, dtype=np.uint8)).save(png)
    common = ["sample", str(png), "--frames", "2", "--steps", "1", "--width", "64", "--height", "64",
              "--device", "cpu", "--no-progress"]
    assert cli_main([*common, "--checkpoint", str(unregistered_file), "--out", str(tmp_path / "default")]) == 2
    assert "--unet-head-channels" in capsys.readouterr().err
    before = torch.get_num_threads()
    try:
        assert cli_main([*common, "--checkpoint", str(unregistered_file), "--out", str(tmp_path / "o"),
                         "--unet-head-channels", "16", "--clip-head-width", "32"]) == 0
    finally:
        torch.set_num_threads(before)
    assert (tmp_path / "o" / "000000.mp4").is_file()
    assert cli_main([*common, "--profile", "tiny", "--unet-head-channels", "16"]) == 2
    assert "--unet-head-channels describe an sgm checkpoint file" in capsys.readouterr().err
