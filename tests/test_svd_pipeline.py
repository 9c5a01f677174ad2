"""The SVD pipeline around the sampler: chunked decoding, memory plans and the out-of-memory retry, devices and
dtypes, profile choice, and loading diffusers-format folders (incl. fp16 variant files) offline."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from svd_lab import memory
from svd_lab.alignment import unaligned_tensors
from svd_lab.svd import pipeline as svd_pipeline
from svd_lab.svd import profiles as svd_profiles
from svd_lab.svd.components import build_components
from svd_lab.svd.loading import CheckpointLoadError, load_diffusers_folder, save_diffusers_folder
from svd_lab.svd.pipeline import (
    SVDOutOfMemoryError,
    SVDPipeline,
    resolve_device,
    resolve_dtype,
)
from svd_lab.svd.profiles import choose_profile

GIB = 2**30


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


@pytest.fixture(scope="module")
def tiny():
    return build_components("tiny", "svd", seed=0)


@pytest.fixture()
def image():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))


def _latents(frames=4):
    return torch.randn(1, frames, 4, 8, 8, generator=torch.Generator().manual_seed(0))


# ------------------------------------------------------------------ decoding in chunks
def test_temporal_decoder_chunks_are_decoded_independently(tiny):
    pipe = SVDPipeline(tiny, device="cpu")
    z = _latents(4)
    whole = pipe.decode(z, 4)
    assert whole.shape == (4, 3, 64, 64) and whole.min() >= 0 and whole.max() <= 1
    assert torch.equal(pipe.decode(z, 14), whole)  # a chunk larger than the clip is the whole clip
    chunked = pipe.decode(z, 2)
    # the temporal decoder mixes frames within a chunk, so chunking changes the result ...
    assert (chunked - whole).abs().max() > 1e-3
    # ... and equals decoding each chunk as its own clip
    separately = torch.cat([pipe.decode(z[:, :2], 2), pipe.decode(z[:, 2:], 2)])
    assert torch.equal(chunked, separately)


def test_image_decoder_does_not_depend_on_chunking():
    comps = build_components("tiny", "svd_image_decoder", seed=0)
    pipe = SVDPipeline(comps, device="cpu")
    z = _latents(4)
    # 3e-6: a different batch size picks differently blocked CPU convolution kernels (float32 rounding only)
    torch.testing.assert_close(pipe.decode(z, 1), pipe.decode(z, 4), rtol=0, atol=1e-5)


# ------------------------------------------------------------------ memory plans
def test_plan_for_free_vram_keeps_its_interface_and_scales():
    small, big = memory.plan_for_free_vram(6 * GIB, 14), memory.plan_for_free_vram(80 * GIB, 14)
    assert small.cpu_offload and not big.cpu_offload
    assert big.decoding_t == 14 and 1 <= small.decoding_t < 14
    assert memory.plan_for_free_vram(24 * GIB, num_frames=25).decoding_t <= 25
    # a smaller picture needs less memory per frame
    smaller = memory.plan_for_free_vram(10 * GIB, 14, 320, 576)
    assert smaller.decoding_t > memory.plan_for_free_vram(10 * GIB, 14).decoding_t
    safer = memory.safer_plan(small, on_cuda=True)
    assert safer.cpu_offload and safer.forward_chunking and safer.decoding_t == max(1, small.decoding_t // 2)
    assert not memory.safer_plan(big, on_cuda=False).cpu_offload
    assert memory.fitting_settings(10 * GIB, 14, 576, 1024).startswith("--decoding-t 2 --memory offload")
    six = memory.fitting_settings(6 * GIB, 25, 576, 1024)  # 25 frames at full size do not fit in 6 GiB
    assert "--frames 6 --decoding-t 1 --memory offload" in six and "--width" in six
    assert "nothing is expected to fit" in memory.fitting_settings(1 * GIB, 25, 576, 1024)


def _oom(message="CUDA out of memory. Tried to allocate 2.00 GiB"):
    return torch.OutOfMemoryError(message)


def test_oom_while_decoding_retries_once_with_a_smaller_chunk(tiny, image, monkeypatch):
    pipe = SVDPipeline(tiny, device="cpu")
    reference = pipe.run(image, num_frames=4, num_steps=2, seed=1, decoding_t=2, progress=False)
    real_decode = tiny.vae.decode
    sizes = []

    def picky_decode(z, num_frames):
        sizes.append(z.shape[0])
        if z.shape[0] > 2:
            raise _oom()
        return real_decode(z, num_frames=num_frames)

    monkeypatch.setattr(tiny.vae, "decode", picky_decode)
    result = pipe.run(image, num_frames=4, num_steps=2, seed=1, decoding_t=4, progress=False)
    assert sizes == [4, 2, 2]
    fallback = result.params["oom_fallback"]
    assert fallback["stage"] == "decoding" and "out of memory" in fallback["error"]
    assert fallback["before"]["decoding_t"] == 4 and fallback["after"]["decoding_t"] == 2
    assert result.params["decoding_t"] == 2
    assert torch.equal(result.frames, reference.frames)


def _chunk_sizes(unet):
    return {name: block._chunk_size for name, block in unet.named_modules() if hasattr(block, "set_chunk_feed_forward")}


def test_oom_while_sampling_restarts_with_the_same_noise(tiny, image, monkeypatch):
    pipe = SVDPipeline(tiny, device="cpu")
    unchunked = pipe.run(image, num_frames=3, num_steps=2, seed=4, decoding_t=3, progress=False)
    # the reference for the retry: the same run sampled with forward chunking from the start (chunking is not
    # output-identical, see SVDPipeline._set_forward_chunking)
    real_plan = pipe.plan_memory
    with monkeypatch.context() as m:
        m.setattr(pipe, "plan_memory", lambda *a: dataclasses.replace(real_plan(*a), forward_chunking=True))
        reference = pipe.run(image, num_frames=3, num_steps=2, seed=4, decoding_t=3, progress=False)
    assert reference.params["forward_chunking"] is True and unchunked.params["forward_chunking"] is False
    real_forward = tiny.unet.forward
    calls = {"n": 0}

    def flaky_forward(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # fail in the middle of sampling
            raise _oom()
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(tiny.unet, "forward", flaky_forward)
    result = pipe.run(image, num_frames=3, num_steps=2, seed=4, decoding_t=3, progress=False)
    assert result.params["oom_fallback"]["stage"] == "sampling"
    assert result.params["forward_chunking"] is True
    # the retry restores the generator: the same noise, so the same latents as a run chunked from the start
    assert torch.equal(result.latents, reference.latents)
    # and the chunking ends with the run: the next run samples whole again, bit for bit like the first
    monkeypatch.undo()
    assert set(_chunk_sizes(tiny.unet).values()) == {None}
    again = pipe.run(image, num_frames=3, num_steps=2, seed=4, decoding_t=3, progress=False)
    assert again.params["forward_chunking"] is False and torch.equal(again.latents, unchunked.latents)


def test_a_run_leaves_the_unets_chunking_as_it_found_it(image):
    components = build_components("tiny", "svd", seed=0)
    components.unet.enable_forward_chunking()  # the user's own setting
    before = _chunk_sizes(components.unet)
    assert set(before.values()) == {1}
    result = SVDPipeline(components, device="cpu").run(image, num_frames=2, num_steps=1, progress=False)
    whole = SVDPipeline(build_components("tiny", "svd", seed=0), device="cpu").run(
        image, num_frames=2, num_steps=1, progress=False)
    assert result.params["forward_chunking"] is False  # the plan ran it whole, as recorded ...
    assert torch.equal(result.latents, whole.latents)
    assert _chunk_sizes(components.unet) == before  # ... and gave the user's setting back


def test_a_decoding_retry_does_not_claim_chunked_sampling(tiny, image, monkeypatch):
    real_decode = tiny.vae.decode

    def picky_decode(z, num_frames):
        if z.shape[0] > 1:
            raise _oom()
        return real_decode(z, num_frames=num_frames)

    monkeypatch.setattr(tiny.vae, "decode", picky_decode)
    result = SVDPipeline(tiny, device="cpu").run(image, num_frames=2, num_steps=1, decoding_t=2, progress=False)
    assert result.params["oom_fallback"]["after"]["forward_chunking"] is True
    assert result.params["forward_chunking"] is False  # the sampling had finished before the retry
    assert set(_chunk_sizes(tiny.unet).values()) == {None}


def test_second_oom_raises_an_error_naming_settings(tiny, image, monkeypatch):
    pipe = SVDPipeline(tiny, device="cpu")

    def always(*args, **kwargs):
        raise _oom()

    monkeypatch.setattr(tiny.vae, "decode", always)
    with pytest.raises(SVDOutOfMemoryError, match=r"out of memory while decoding.*even after retrying.*--decoding-t 1"):
        pipe.run(image, num_frames=2, num_steps=1, seed=1, progress=False)
    monkeypatch.undo()
    assert pipe.run(image, num_frames=2, num_steps=1, seed=1, progress=False).params["oom_fallback"] is None


# ------------------------------------------------------------------ parameters, devices, dtypes
def test_run_records_every_parameter(tiny, image):
    result = SVDPipeline(tiny, device="cpu").run(image, num_frames=2, num_steps=2, progress=False)
    p = result.params
    assert (p["num_frames"], p["num_steps"], p["seed"], p["fps_id"], p["motion_bucket_id"], p["cond_aug"]) == (
        2, 2, 23, 6, 127, 0.02)
    assert (p["min_guidance"], p["max_guidance"], p["width"], p["height"]) == (1.0, 2.5, 64, 64)
    assert (p["version"], p["profile"], p["device"], p["dtype"], p["decoding_t"]) == (
        "svd", "tiny", "cpu", "float32", 2)
    assert p["oom_fallback"] is None and p["weights"] == "random init, seed 0"
    assert result.video.fps == 7 and result.video.num_frames == 2
    json.dumps(p)  # serialisable as is


def test_bad_run_parameters_are_rejected(tiny, image):
    pipe = SVDPipeline(tiny, device="cpu")
    with pytest.raises(ValueError, match="multiple of 64"):
        pipe.run(image, width=100, progress=False)
    with pytest.raises(ValueError, match="num_frames and num_steps must be >= 1"):
        pipe.run(image, num_frames=0, progress=False)
    with pytest.raises(ValueError, match="num_steps must be an integer"):
        pipe.run(image, num_steps=2.5, progress=False)
    with pytest.raises(ValueError, match="decoding_t must be >= 1"):
        pipe.run(image, decoding_t=0, progress=False)
    with pytest.warns(UserWarning, match="fps_id 40 is outside 5..30"):
        pipe.run(image, num_frames=1, num_steps=1, fps_id=40, progress=False)


def test_device_and_dtype_resolution():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        expected = "mps"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
    cpu = torch.device("cpu")
    assert resolve_dtype(None, cpu) == torch.float32 and resolve_dtype("auto", torch.device("cuda")) == torch.float16
    assert resolve_dtype("bf16", cpu) == torch.bfloat16
    with pytest.raises(ValueError, match="float16 on the CPU"):
        resolve_dtype("float16", cpu)
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("int8", cpu)
    with pytest.raises(ValueError, match="needs a CUDA device"):
        SVDPipeline(build_components("tiny"), device="cpu", memory="offload")


def test_bfloat16_on_cpu_runs(tiny, image):
    comps = build_components("tiny", "svd", seed=0)
    result = SVDPipeline(comps, device="cpu", dtype="bfloat16").run(image, num_frames=2, num_steps=1, progress=False)
    assert result.params["dtype"] == "bfloat16" and result.latents.dtype == torch.float32
    assert torch.isfinite(result.frames).all()


# ------------------------------------------------------------------ profile choice
def test_profile_choice(monkeypatch, tmp_path):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(svd_profiles, "_find_local", lambda version: None)
    monkeypatch.setattr(svd_profiles, "_small_present", lambda: False)
    auto = choose_profile("auto", "svd", None, cpu)
    assert auto.profile == "tiny" and "no local svd checkpoint" in auto.reason and "svd-lab download svd" in auto.reason
    monkeypatch.setattr(svd_profiles, "_small_present", lambda: True)   # the small SVD is shipped
    assert choose_profile("auto", "svd", None, cpu).profile == "small"
    assert choose_profile("auto", "svd_image_decoder", None, cpu).profile == "tiny"   # small: a temporal decoder
    notices = []
    assert svd_profiles.canonical_profile("mini", notices.append) == "small"          # the old name, with a notice
    assert len(notices) == 1 and "now called 'small'" in notices[0]
    monkeypatch.setattr(svd_profiles, "_small_present", lambda: False)
    with pytest.raises(ValueError, match="no usable svd_xt checkpoint"):
        choose_profile("full", "svd_xt", None, cuda)
    with pytest.raises(ValueError, match=r"--checkpoint svd_image_decoder\.safetensors"):
        choose_profile("full", "svd_image_decoder", None, cuda)
    with pytest.raises(ValueError, match="drop --checkpoint"):
        choose_profile("tiny", "svd", str(tmp_path), cpu)
    assert choose_profile("auto", "svd", str(tmp_path), cpu).profile == "full"  # an explicit checkpoint wins

    monkeypatch.setattr(svd_profiles, "_find_local", lambda version: "/ckpt/svd")
    assert choose_profile("auto", "svd", None, cuda).checkpoint == "/ckpt/svd"
    on_cpu = choose_profile("auto", "svd", None, cpu)
    assert on_cpu.profile == "tiny" and "takes hours" in on_cpu.reason


def test_version_auto_takes_the_best_present_checkpoint_that_fits(monkeypatch):
    """A GPU user who downloaded only svd_xt gets svd_xt; an explicit version still wins; nothing usable -> the
    CPU model, saying why."""
    from svd_lab.memory import GIB

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    present = {"svd_xt": "/ckpt/svd_xt"}
    monkeypatch.setattr(svd_profiles, "_find_local", present.get)
    monkeypatch.setattr(svd_profiles, "_small_present", lambda: True)
    monkeypatch.setattr(svd_profiles, "_free_memory", lambda device: 24 * GIB)
    for version in ("auto", None):
        choice = choose_profile("auto", version, None, cuda)
        assert (choice.profile, choice.version, choice.checkpoint) == ("full", "svd_xt", "/ckpt/svd_xt")
        assert "version auto -> svd_xt" in choice.reason and "24.0 GiB free" in choice.reason
    explicit = choose_profile("auto", "svd", None, cuda)
    assert (explicit.profile, explicit.version) == ("small", "svd")          # svd was asked for, and is absent
    present["svd_xt_1_1"] = "/ckpt/svd_xt_1_1"
    present["svd"] = "/ckpt/svd"
    assert choose_profile("auto", "auto", None, cuda).version == "svd_xt_1_1"  # the stated order
    # too little memory for any of them (a 4 GiB card): the CPU model, and the reason names what was found
    monkeypatch.setattr(svd_profiles, "_free_memory", lambda device: 4 * GIB)
    small = choose_profile("auto", "auto", None, cuda)
    assert (small.profile, small.version) == ("small", "svd") and "none is expected to fit" in small.reason
    assert choose_profile("full", "auto", None, cuda).version == "svd_xt_1_1"   # asked for: tried anyway
    # a CPU: the small model, whatever is downloaded; full size only when asked
    on_cpu = choose_profile("auto", "auto", None, cpu)
    assert (on_cpu.profile, on_cpu.version) == ("small", "svd") and "takes hours" in on_cpu.reason
    assert choose_profile("full", "auto", None, cpu).checkpoint == "/ckpt/svd_xt_1_1"
    present.clear()
    nothing = choose_profile("auto", "auto", None, cuda)
    assert nothing.profile == "small" and "no local SVD checkpoint" in nothing.reason
    with pytest.raises(ValueError, match="version auto looked for"):
        choose_profile("full", "auto", None, cuda)


def test_profile_auto_asks_the_checkpoints_module(monkeypatch, tmp_path):
    monkeypatch.setenv("SVD_LAB_CHECKPOINTS", str(tmp_path / "empty"))
    assert svd_profiles._find_local("svd") is None


def test_cpu_time_estimate_is_hours():
    hours = svd_pipeline.estimate_cpu_seconds(14, 25, cores=2) / 3600
    assert 3 < hours < 8  # ~10 min per UNet step on 2 cores
    assert svd_pipeline.estimate_cpu_seconds(25, 30, cores=2) > svd_pipeline.estimate_cpu_seconds(14, 25, cores=2)


# ------------------------------------------------------------------ diffusers folders
@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory, tiny):
    folder = tmp_path_factory.mktemp("ckpt") / "svd-tiny"
    save_diffusers_folder(tiny, folder)
    # like the hub: the image encoder's config claims float16
    cfg_path = folder / "image_encoder" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["torch_dtype"] = cfg["dtype"] = "float16"
    cfg_path.write_text(json.dumps(cfg))
    return folder


def test_load_diffusers_folder_offline_with_explicit_dtype(tiny_folder, tiny, image):
    loaded = load_diffusers_folder(tiny_folder, dtype=torch.float32)
    assert loaded.profile == "tiny" and loaded.version == "svd" and loaded.decoder == "temporal"
    assert {p.dtype for m in loaded.modules().values() for p in m.parameters()} == {torch.float32}
    assert not any(m.training for m in loaded.modules().values())
    for name in ("unet", "vae", "image_encoder"):
        ours, theirs = tiny.modules()[name].state_dict(), loaded.modules()[name].state_dict()
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours), name
    # from_pretrained leaves weights in the file's memory map at unaligned addresses (offsets 4..60 bytes measured);
    # the loader copies them to aligned memory, so CPU kernels take the path they take for the in-memory networks
    assert {name: unaligned_tensors(m) for name, m in loaded.modules().items()} == {
        name: [] for name in loaded.modules()}
    a = SVDPipeline(tiny, device="cpu").run(image, num_frames=2, num_steps=2, progress=False)
    b = SVDPipeline(loaded, device="cpu").run(image, num_frames=2, num_steps=2, progress=False)
    # bit for bit, on every CPU: the same weights give the same video. Without the alignment this fails on an
    # AVX2-only EPYC (frames move 8.8e-6, from CLIP's matrix kernels) and passes on an AVX-512 Xeon.
    assert torch.equal(b.frames, a.frames)


def test_load_fp16_variant_files(tmp_path, tiny):
    half = build_components("tiny", "svd_xt", seed=0).to(dtype=torch.float16)
    folder = save_diffusers_folder(half, tmp_path / "svd-xt-fp16", variant="fp16")
    assert (folder / "unet" / "diffusion_pytorch_model.fp16.safetensors").is_file()
    loaded = load_diffusers_folder(folder, dtype=torch.float32)
    assert loaded.version == "svd_xt" and loaded.dtype == torch.float32 and "fp16" in loaded.source
    w16 = dict(half.unet.named_parameters())["conv_in.weight"]
    assert torch.equal(dict(loaded.unet.named_parameters())["conv_in.weight"], w16.float())
    with pytest.raises(CheckpointLoadError, match="no full-precision weights"):
        load_diffusers_folder(folder, variant=None)


def test_bad_folders_are_explained(tmp_path, tiny_folder):
    with pytest.raises(CheckpointLoadError, match="is not a folder"):
        load_diffusers_folder(tmp_path / "missing")
    with pytest.raises(CheckpointLoadError, match="no model_index.json"):
        load_diffusers_folder(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text((tiny_folder / "model_index.json").read_text())
    for part in ("unet", "vae", "image_encoder"):
        (broken / part).mkdir()
        (broken / part / "config.json").write_text((tiny_folder / part / "config.json").read_text())
    with pytest.raises(CheckpointLoadError, match="incomplete: no safetensors weights for unet, vae, image_encoder"):
        load_diffusers_folder(broken)
    (broken / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    with pytest.raises(CheckpointLoadError, match="not a StableVideoDiffusionPipeline"):
        load_diffusers_folder(broken)


def test_load_pipeline_tiny_and_from_a_folder(tiny_folder, image):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe, choice = svd_profiles.load_pipeline(profile="tiny", device="cpu")
    assert choice.profile == "tiny" and pipe.components.profile == "tiny"
    pipe, choice = svd_profiles.load_pipeline(checkpoint=str(tiny_folder), device="cpu", progress=False)
    assert choice.profile == "full" and pipe.components.version == "svd"
    assert str(tiny_folder) in pipe.components.source
    labelled, _ = svd_profiles.load_pipeline(version="svd_xt_1_1", checkpoint=str(tiny_folder), device="cpu",
                                             progress=False)
    assert labelled.components.version == "svd_xt_1_1"


# ------------------------------------------------------------------ the GPU path, rehearsed on the CPU (issue 25)
#: float16 against float32 on the tiny profile, 3 frames x 3 steps (measured: frames differ by at most 0.0086,
#: latents by 0.0072): the stated tolerance leaves room for other CPUs' float16 kernels, not for a wrong dtype path
FLOAT16_FRAME_TOLERANCE = 0.03


def test_float16_end_to_end_on_the_cpu_is_close_to_float32(tiny, image):
    """What every CUDA user runs -- CLIP and UNet in float16, the VAE encoding in float32 (force_upcast), the
    concat latent in the UNet's dtype, decoding in chunks -- executed here, and compared with float32."""
    reference = SVDPipeline(tiny, device="cpu").run(image, num_frames=3, num_steps=3, decoding_t=2, progress=False)
    with pytest.raises(ValueError, match="float16 on the CPU"):
        SVDPipeline(build_components("tiny", "svd", seed=0), device="cpu", dtype="float16")  # refused to users
    with svd_pipeline.gpu_rehearsal():
        pipe = SVDPipeline(build_components("tiny", "svd", seed=0), device="cpu", dtype="float16")
        comps = pipe.components
        assert {next(m.parameters()).dtype for m in comps.modules().values()} == {torch.float16}
        assert comps.vae.config.force_upcast
        image_tensor = pipe.prepare_image(image, 64, 64)
        from svd_lab.svd.images import image_to_tensor

        cond = pipe.encode(image_to_tensor(image_tensor), 3, 6, 127, 0.02, torch.Generator().manual_seed(23))
        assert cond["concat"].dtype == cond["crossattn"].dtype == torch.float16
        assert next(comps.vae.parameters()).dtype == torch.float16          # upcast for encoding only, then back
        half = pipe.run(image, num_frames=3, num_steps=3, decoding_t=2, progress=False)
    assert half.params["dtype"] == "float16" and half.params["decoding_t"] == 2
    assert half.latents.dtype == torch.float32 and torch.isfinite(half.frames).all()
    difference = (half.frames - reference.frames).abs()
    assert float(difference.max()) <= FLOAT16_FRAME_TOLERANCE, float(difference.max())
    assert 0 < float(difference.mean()) < FLOAT16_FRAME_TOLERANCE / 5      # float16 did run: not bit-equal


def test_model_offload_moves_each_network_to_the_device_only_while_it_runs(image, monkeypatch):
    """The offload path (CUDA users with little memory), run on the CPU: every network starts on the CPU, is moved
    to the device for its stage and back after it, and the video is bit-identical to the resident one."""
    moves = []
    real_to = torch.nn.Module.to

    def spy(module, *args, **kwargs):
        device = kwargs.get("device", args[0] if args and not isinstance(args[0], torch.dtype) else None)
        if device is not None and type(module).__name__ in ("UNetSpatioTemporalConditionModel",
                                                             "AutoencoderKLTemporalDecoder",
                                                             "CLIPVisionModelWithProjection"):
            moves.append((type(module).__name__, str(device)))
        return real_to(module, *args, **kwargs)

    with svd_pipeline.gpu_rehearsal():
        resident = SVDPipeline(build_components("tiny", "svd", seed=0), device="cpu", memory="resident")
        expected = resident.run(image, num_frames=2, num_steps=2, progress=False)
        offload = SVDPipeline(build_components("tiny", "svd", seed=0), device="cpu", memory="offload")
        monkeypatch.setattr(torch.nn.Module, "to", spy)
        result = offload.run(image, num_frames=2, num_steps=2, progress=False)
    assert torch.equal(result.frames, expected.frames)
    # one placement on the CPU for the run's plan, then in and out around each stage that uses the network: CLIP
    # and the VAE encode the image, the UNet samples, the VAE decodes; every network ends on the CPU
    counts = {m: sum(1 for n, _ in moves if n == m) for m, _ in moves}
    assert counts == {"CLIPVisionModelWithProjection": 1 + 2, "AutoencoderKLTemporalDecoder": 1 + 2 + 2,
                      "UNetSpatioTemporalConditionModel": 1 + 2}, moves
    assert all(device == "cpu" for _, device in moves[-1:])
    assert result.params["memory_plan"].endswith("memory=offload")
