"""Wan (svd_lab.wan): our flow-matching samplers and pipeline against diffusers' on tiny random configs, the full
architectures on the meta device, downloads from a loopback hub and ModelScope, memory planning, the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from hubserver import HubRepo, HubServer
from modelscopeserver import ModelScopeRepo, ModelScopeServer
from svd_lab.errors import InputError
from svd_lab.sampling.flow import euler_schedule, sample_flow, unipc_schedule
from svd_lab.sampling.unipc import sample_unipc
from svd_lab.wan import configs
from svd_lab.wan.memory import GIB, WanMemoryPlan, lighter, plan_for_free_vram
from svd_lab.wan.pipeline import WanPipeline, load_components, tiny_components
from svd_lab.wan.versions import WAN_VERSIONS

T2V, TI2V = "wan2.1-t2v-1.3b", "wan2.2-ti2v-5b"
PROMPT, NEGATIVE = "a red rocket lifts off at night", "blurry, static"
ROCKET = Path(__file__).resolve().parents[1] / "assets" / "rocket.png"


def _velocity_model():
    """A nonlinear stand-in for a network: enough to tell any reordering of the solver's arithmetic apart."""
    weight = torch.randn(6, 6, generator=torch.Generator().manual_seed(0)) / 3

    def velocity(x, t):
        return torch.tanh(x @ weight) * (t.float() / 1000 + 0.3) - 0.5 * x
    return velocity


def _diffusers_scheduler(solver: str, shift: float, order: int = 2):
    from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

    if solver == "euler":
        return FlowMatchEulerDiscreteScheduler(shift=shift)
    config = {k: v for k, v in configs.unipc_config(shift).items() if k != "_class_name"}
    return UniPCMultistepScheduler(**{**config, "solver_order": order})


def _reference_run(scheduler, seed: int):
    """diffusers' loop with ``scheduler`` (its timesteps set) on the stand-in network: (velocity, noise, result)."""
    velocity = _velocity_model()
    noise = torch.randn(2, 6, generator=torch.Generator().manual_seed(seed))
    x = noise.clone()
    for t in scheduler.timesteps:
        x = scheduler.step(velocity(x, t), t, x, return_dict=False)[0]
    return velocity, noise, x


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("steps", [1, 2, 5, 25])
def test_unipc_equals_diffusers_scheduler_bit_for_bit(order, steps):
    scheduler = _diffusers_scheduler("unipc", 3.0, order)
    scheduler.set_timesteps(steps)
    schedule = unipc_schedule(steps, 3.0)
    assert torch.equal(schedule.sigmas, scheduler.sigmas) and torch.equal(schedule.timesteps, scheduler.timesteps)
    velocity, noise, x = _reference_run(scheduler, steps)
    ours = sample_unipc(velocity, noise.clone(), schedule, order=order, progress=False)
    assert torch.equal(ours, x)
    if steps > 2:  # the test can fail: another order gives another answer (with 2 steps every order is 1)
        assert not torch.equal(sample_unipc(velocity, noise.clone(), schedule, order=order % 3 + 1, progress=False),
                               ours)


@pytest.mark.parametrize("shift", [1.0, 3.0, 5.0])
@pytest.mark.parametrize("steps", [1, 4, 20])
def test_euler_schedule_and_sampler_equal_flow_match_euler(shift, steps):
    scheduler = _diffusers_scheduler("euler", shift)
    scheduler.set_timesteps(steps)
    schedule = euler_schedule(steps, shift)
    assert torch.equal(schedule.sigmas, scheduler.sigmas) and torch.equal(schedule.timesteps, scheduler.timesteps)
    velocity, noise, x = _reference_run(scheduler, steps)
    assert torch.equal(sample_flow(velocity, noise.clone(), schedule, progress=False), x)


def test_unipc_is_more_accurate_than_euler_on_the_exact_gaussian_flow():
    """On data ~ N(0, s^2) the ODE's exact end is noise * s. On the same noise levels (told to the velocity as
    floats, so only the solvers differ) UniPC-2 is 10-30x closer than Euler for the same number of velocity calls
    (measured max errors, shift 1: 10 steps Euler 0.257 / UniPC 0.0079; 20: 0.133 / 0.0139; 40: 0.067 / 0.0038)."""
    from svd_lab.sampling.flow import FlowSchedule, gaussian_velocity

    s = 0.5
    v = gaussian_velocity(s)
    noise = torch.randn(4096, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for steps in (10, 20, 40):
        levels = unipc_schedule(steps).sigmas
        schedule = FlowSchedule(levels, levels[:-1].double())
        e_euler = (sample_flow(v, noise, schedule, progress=False) - noise * s).abs().max().item()
        e_unipc = (sample_unipc(v, noise, schedule, progress=False) - noise * s).abs().max().item()
        assert e_unipc < e_euler / 5, (steps, e_euler, e_unipc)


# ------------------------------------------------------------------------------------ the pipeline vs diffusers

def _diffusers_pipeline(components, solver: str, image: bool):
    from diffusers import WanImageToVideoPipeline
    from diffusers import WanPipeline as DiffusersWan

    kw = {"tokenizer": components.tokenizer, "text_encoder": components.text_encoder,
              "transformer": components.transformer, "vae": components.vae,
              "scheduler": _diffusers_scheduler(solver, components.shift)}
    if image:
        pipe = WanImageToVideoPipeline(**kw, image_encoder=None, image_processor=None, expand_timesteps=True)
    else:
        pipe = DiffusersWan(**kw, expand_timesteps=components.expand_timesteps)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def tiny():
    return {v: tiny_components(v) for v in (T2V, TI2V)}


@pytest.mark.parametrize("version,solver,with_image", [
    (T2V, "unipc", False), (T2V, "euler", False), (TI2V, "unipc", False), (TI2V, "unipc", True),
    (TI2V, "euler", True)])
def test_pipeline_equals_diffusers_bit_for_bit(tiny, version, solver, with_image):
    """The same networks, prompt, seed and scheduler: our pipeline's latents and frames equal diffusers'. For the
    image-to-video pipeline the text goes in as prompt_embeds: diffusers 0.42.1's pipeline_wan_i2v calls ftfy
    unconditionally (NameError without it), and our text encoding is proven equal by the text-to-video cases."""
    components = tiny[version]
    pipe = WanPipeline(components)
    h, w = configs.TINY_SIZE[version]
    image = Image.open(ROCKET).convert("RGB").resize((w, h), Image.LANCZOS) if with_image else None
    ours = pipe.run(PROMPT, image=image, negative_prompt=NEGATIVE, solver=solver, seed=3, progress=False)
    reference = _diffusers_pipeline(components, solver, with_image)
    common = {"height": h, "width": w, "num_frames": configs.TINY_FRAMES, "num_inference_steps": configs.TINY_STEPS,
                  "guidance_scale": 5.0, "max_sequence_length": configs.TINY_MAX_SEQUENCE_LENGTH}
    if with_image:
        common.update(image=image, prompt_embeds=pipe.encode_text([PROMPT], 16),
                      negative_prompt_embeds=pipe.encode_text([NEGATIVE], 16))
    else:
        common.update(prompt=PROMPT, negative_prompt=NEGATIVE)
    latents = reference(**common, generator=torch.Generator().manual_seed(3), output_type="latent").frames
    frames = reference(**common, generator=torch.Generator().manual_seed(3), output_type="np").frames[0]
    if with_image:  # diffusers returns the latents before the clean first frame is put back
        mask = torch.ones_like(latents[:, :1])
        mask[:, :, 0] = 0
        latents = (1 - mask) * pipe.encode_image(image, h, w) + mask * latents
    assert torch.equal(ours.latents, latents)
    assert np.array_equal(ours.frames.numpy(), frames)
    assert ours.frames.shape == (configs.TINY_FRAMES, h, w, 3)
    assert 0.01 < float(ours.frames.std()) and float((ours.frames == 0).float().mean()) < 0.5  # not clamped flat
    other = pipe.run(PROMPT, image=image, negative_prompt=NEGATIVE, solver=solver, seed=4, progress=False)
    assert not torch.equal(other.latents, ours.latents)


def test_image_conditioning_keeps_the_first_latent_frame_and_changes_the_video(tiny):
    pipe = WanPipeline(tiny[TI2V])
    h, w = configs.TINY_SIZE[TI2V]
    with_image = pipe.run(PROMPT, image=ROCKET, seed=0, progress=False)
    without = pipe.run(PROMPT, seed=0, progress=False)
    condition = pipe.encode_image(ROCKET, h, w)
    assert torch.equal(with_image.latents[:, :, :1], condition)
    assert not torch.equal(with_image.latents[:, :, 1:], without.latents[:, :, 1:])


def test_text_is_zero_beyond_the_prompt_and_cleaned(tiny):
    pipe = WanPipeline(tiny[T2V])
    short, spaced = pipe.encode_text(["a cat", "  a   cat &amp;amp; "], 16)
    n = len(tiny[T2V].tokenizer("a cat").input_ids)
    assert short[n:].abs().sum() == 0 and short[:n].abs().sum() > 0
    assert torch.equal(pipe.encode_text(["a cat & "], 16)[0], spaced)


def test_bad_inputs_are_refused_before_any_sampling(tiny):
    pipe = WanPipeline(tiny[T2V])
    with pytest.raises(InputError, match="text-to-video only"):
        pipe.run(PROMPT, image=ROCKET)
    with pytest.raises(InputError, match="needs a prompt"):
        pipe.run("   ")
    with pytest.raises(InputError, match=r"4 k \+ 1.*try 9"):
        pipe.run(PROMPT, num_frames=8)
    with pytest.raises(InputError, match="multiple of 16.*try 48"):
        pipe.run(PROMPT, height=50)
    with pytest.raises(InputError, match="multiple of 32"):
        WanPipeline(tiny[TI2V]).run(PROMPT, width=48)
    with pytest.raises(InputError, match="unknown solver"):
        pipe.run(PROMPT, solver="ddim")
    with pytest.raises(InputError, match="latents must be shaped"):
        pipe.run(PROMPT, latents=torch.zeros(1, 16, 2, 4, 4))


def test_full_size_architectures_on_the_meta_device():
    for version in WAN_VERSIONS:
        assert configs.full_parameter_counts(version) == configs.FULL_PARAMETER_COUNTS[version]
    # Wan's own names: "1.3B" and "5B" transformers
    assert round(configs.FULL_PARAMETER_COUNTS[T2V]["transformer"] / 1e9, 1) == 1.4
    assert round(configs.FULL_PARAMETER_COUNTS[TI2V]["transformer"] / 1e9) == 5


# ------------------------------------------------------------------------------------------- memory planning

def test_memory_plans_from_free_vram(tiny):
    need = {"text_encoder": 11.4 * GIB, "transformer": 2.8 * GIB, "vae": 0.5 * GIB, "activations": 3 * GIB,
            "decoder": 7 * GIB}
    assert plan_for_free_vram(80 * GIB, need) == WanMemoryPlan("resident", plan_for_free_vram(80 * GIB, need).reason)
    assert plan_for_free_vram(16 * GIB, need).mode == "offload" and not plan_for_free_vram(16 * GIB, need).vae_tiling
    eight = plan_for_free_vram(8 * GIB, need)
    assert eight.mode == "group" and eight.vae_tiling
    chain, plan = [], WanMemoryPlan("resident", "x")
    while plan is not None:
        chain.append((plan.mode, plan.vae_tiling))
        plan = lighter(plan)
    assert chain == [("resident", False), ("resident", True), ("offload", True), ("group", True)]


# ---------------------------------------------------------------------------------- downloads and loading back

@pytest.fixture(scope="module")
def wan_source(tmp_path_factory) -> Path:
    """The tiny Wan2.1 networks in the release's layout, transformer and text encoder sharded, plus files a
    download must leave alone (a pickled .bin beside the safetensors, a README, an unrelated folder)."""
    folder = configs.save_tiny_checkpoint(T2V, tmp_path_factory.mktemp("wan_repo"), max_shard_size="40KB")
    (folder / "transformer" / "diffusion_pytorch_model.bin").write_bytes(b"pickle, never fetched")
    (folder / "README.md").write_text("# tiny Wan\n")
    (folder / "examples").mkdir()
    (folder / "examples" / "i2v_input.JPG").write_bytes(b"not a model file")
    return folder


def _check_download(result, source: Path, ckpt_dir: Path, tiny) -> None:
    from svd_lab.checkpoints import find_checkpoint

    ckpt = result.checkpoint
    assert ckpt.usable and ckpt.verified and ckpt.version == T2V
    fetched = sorted(pf.repo_path for pf in result.plan.files)
    assert "transformer/diffusion_pytorch_model.safetensors.index.json" in fetched
    assert sum(p.startswith("transformer/") and p.endswith(".safetensors") for p in fetched) >= 2   # shards
    assert not any(p.endswith(".bin") or p.startswith("examples/") or p == "README.md" for p in fetched)
    for p in fetched:
        assert (ckpt.path / p).read_bytes() == (source / p).read_bytes()
    assert find_checkpoint(T2V, dir=ckpt_dir).path == ckpt.path
    # loaded back, it is the same model: the same video as the tiny networks it was saved from
    loaded = WanPipeline(load_components(ckpt.path, T2V)).run(PROMPT, seed=1, progress=False, **_tiny_settings())
    direct = WanPipeline(tiny[T2V]).run(PROMPT, seed=1, progress=False)
    assert torch.equal(loaded.latents, direct.latents)


def _tiny_settings() -> dict:
    h, w = configs.TINY_SIZE[T2V]
    return {"height": h, "width": w, "num_frames": configs.TINY_FRAMES, "num_steps": configs.TINY_STEPS,
                "max_sequence_length": configs.TINY_MAX_SEQUENCE_LENGTH}


def test_download_from_the_hub(wan_source, ckpt_dir, tiny, monkeypatch, tmp_path):
    from huggingface_hub import constants

    from svd_lab.checkpoints import hub as hubmod

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    for var in ("HF_TOKEN", "HF_HUB_OFFLINE", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with HubServer() as server:
        server.add_repo(HubRepo(WAN_VERSIONS[T2V].hub_repo, license="apache-2.0")).add_folder(wan_source)
        result = hubmod.download(T2V, dir=ckpt_dir, endpoint=server.endpoint, progress=False, log=None)
        _check_download(result, wan_source, ckpt_dir, tiny)
        again = hubmod.download(T2V, dir=ckpt_dir, endpoint=server.endpoint, progress=False, log=None)
        assert again.fetched == [] and len(again.reused) == len(result.plan.files)
    # offline, the recorded files are the checkpoint; with nothing recorded, offline cannot know the files
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    plan = hubmod.plan_download(T2V, dir=ckpt_dir)
    assert plan.complete and len(plan.files) == len(result.plan.files)
    from svd_lab.checkpoints import OfflineError

    with pytest.raises(OfflineError, match="no download of wan2.1-t2v-1.3b is recorded"):
        hubmod.download(T2V, dir=tmp_path / "empty", progress=False, log=None)


def test_download_from_modelscope_and_a_repository_that_is_not_wan(wan_source, ckpt_dir, tiny, monkeypatch,
                                                                     tmp_path):
    from svd_lab.checkpoints import HubNotFoundError
    from svd_lab.checkpoints import modelscope as msmod

    for var in ("MODELSCOPE_API_TOKEN", "MODELSCOPE_ENDPOINT", "MODELSCOPE_DOMAIN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms_cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with ModelScopeServer() as server:
        server.add_repo(ModelScopeRepo(WAN_VERSIONS[T2V].modelscope_repo)).add_folder(wan_source)
        broken = server.add_repo(ModelScopeRepo(WAN_VERSIONS[TI2V].modelscope_repo))
        broken.add("model_index.json", b"{}")
        result = msmod.download(T2V, dir=ckpt_dir, endpoint=server.endpoint, log=None)
        _check_download(result, wan_source, ckpt_dir, tiny)
        with pytest.raises(HubNotFoundError, match="not a diffusers Wan repository.*transformer/config.json"):
            msmod.download(TI2V, dir=ckpt_dir, endpoint=server.endpoint, log=None)
    assert not (ckpt_dir / TI2V / "model_index.json").exists()


def test_an_incomplete_folder_is_refused_before_loading(wan_source, tmp_path):
    import shutil

    from svd_lab.checkpoints import inspect_path

    folder = tmp_path / T2V
    shutil.copytree(wan_source, folder)
    shard = min((folder / "transformer").glob("*-of-*.safetensors"))
    shard.unlink()
    assert not inspect_path(folder).usable and shard.name in inspect_path(folder).reason
    with pytest.raises(InputError, match=f"incomplete: missing transformer/{shard.name}"):
        load_components(folder, T2V)


# ------------------------------------------------------------------------------------------------ the command

def test_sample_command_makes_a_wan_video_on_the_tiny_profile(tmp_path):
    out = tmp_path / "videos"
    run = subprocess.run([sys.executable, "-m", "svd_lab", "sample", "--model", T2V, "--profile", "tiny",
                          "--prompt", PROMPT, "--out", str(out), "--no-progress"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    params = json.loads((out / "000000.json").read_text())
    assert params["model"] == T2V and params["prompt"] == PROMPT and params["solver"] == "unipc"
    from svd_lab.video import read_frames

    assert read_frames(out / "000000.mp4").shape == (configs.TINY_FRAMES, 32, 32, 3)
    refused = subprocess.run([sys.executable, "-m", "svd_lab", "sample", str(ROCKET), "--model", T2V,
                              "--profile", "tiny", "--prompt", PROMPT, "--out", str(out), "--no-progress"],
                             capture_output=True, text=True, timeout=300, check=False)
    assert refused.returncode != 0 and "text-to-video only" in refused.stderr
    assert sorted(p.name for p in out.iterdir()) == ["000000.json", "000000.mp4"]
    image = subprocess.run([sys.executable, "-m", "svd_lab", "sample", str(ROCKET), "--model", TI2V, "--profile",
                            "tiny", "--prompt", PROMPT, "--solver", "euler", "--out", str(out), "--no-progress"],
                           capture_output=True, text=True, timeout=300, check=False)
    assert image.returncode == 0, image.stderr
    assert json.loads((out / "000001.json").read_text())["image"] is True


def test_the_command_checks_settings_and_the_checkpoint_before_loading_anything(tmp_path):
    def sample(*extra):
        return subprocess.run([sys.executable, "-m", "svd_lab", "sample", *extra, "--out", str(tmp_path / "v")],
                              capture_output=True, text=True, timeout=120, check=False)

    cases = [(("--model", T2V), "add --prompt"),
             (("--model", T2V, "--prompt", "x", "--frames", "8", "--profile", "tiny"), "4 k \\+ 1.*try 9"),
             (("--model", TI2V, "--prompt", "x", "--width", "48", "--profile", "tiny"), "multiple of 32.*try 64"),
             (("--model", T2V, "--prompt", "x", "--motion-bucket-id", "3"), "--motion-bucket-id applies to SVD only"),
             ((str(ROCKET), "--prompt", "x"), "--prompt applies to Wan versions only"),
             (("--model", T2V, "--prompt", "x", "--profile", "full", "--checkpoint", str(tmp_path / "none")),
              "no wan2.1-t2v-1.3b checkpoint at .*svd-lab download wan2.1-t2v-1.3b")]
    for args, message in cases:
        run = sample(*args)
        assert run.returncode != 0 and re.search(message, run.stderr), (args, run.stderr)
    assert not (tmp_path / "v").exists()


def test_out_of_memory_is_retried_with_a_lighter_plan_and_recorded(tiny, monkeypatch):
    from svd_lab.errors import RunError
    from svd_lab.wan.memory import generate

    pipe = WanPipeline(tiny[T2V], memory=WanMemoryPlan("resident", "test"))
    real_run, calls = pipe.run, []

    def run_failing_twice(**kwargs):
        calls.append(pipe.plan)
        if len(calls) <= 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_run(**kwargs)

    monkeypatch.setattr(pipe, "run", run_failing_twice)
    generation = generate(pipe, prompt=PROMPT, progress=False)
    assert [(p.mode, p.vae_tiling) for p in calls] == [("resident", False), ("resident", True), ("offload", True)]
    assert generation.params["oom_fallback"] == {"from": "--memory resident", "to": "--memory offload --vae-tiling"}
    assert tiny[T2V].vae.use_tiling
    tiny[T2V].vae.disable_tiling()

    def always(**kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(pipe, "run", always)
    with pytest.raises(RunError, match="out of GPU memory even with --memory group --vae-tiling"):
        generate(pipe, prompt=PROMPT, progress=False)
    tiny[T2V].vae.disable_tiling()


def test_obs_copy_of_a_wan_folder_chooses_its_files_after_the_copy(wan_source, ckpt_dir, tmp_path, monkeypatch):
    """ModelArts: `moxing` copies the folder; the files kept are the listing's Wan files, each verified and recorded;
    a folder that is not a Wan pipeline is refused and nothing is put in place."""
    import shutil
    import types

    from svd_lab.checkpoints import CheckpointError, obs

    bucket = tmp_path / "bucket"
    shutil.copytree(wan_source, bucket / "wan")
    (bucket / "other").mkdir()
    (bucket / "other" / "model_index.json").write_text("{}")

    def copy_parallel(src, dst):
        shutil.copytree(bucket / src[len("obs://bucket/"):], dst, dirs_exist_ok=True)

    fake = types.ModuleType("moxing")
    fake.file = types.SimpleNamespace(copy_parallel=copy_parallel, copy=None)
    monkeypatch.setitem(sys.modules, "moxing", fake)
    ckpt = obs.copy_from_obs(T2V, "obs://bucket/wan", dir=ckpt_dir, log=None).checkpoint
    assert ckpt.usable and ckpt.verified and ckpt.version == T2V
    assert not (ckpt.path / "transformer" / "diffusion_pytorch_model.bin").exists()
    assert not (ckpt.path / "README.md").exists() and (ckpt.path / "tokenizer" / "tokenizer.json").is_file()
    with pytest.raises(CheckpointError, match="not a diffusers Wan repository"):
        obs.copy_from_obs(TI2V, "obs://bucket/other", dir=ckpt_dir, log=None)
    assert not (ckpt_dir / TI2V / "model_index.json").exists()
