"""`svd-lab finetune`: data from real video files (grey, RGBA, frame folders; bad clips skipped with a reason),
each mode training exactly what it says, checked parameter by parameter, LoRA adapters that save, load and apply
to the same video, a killed run that resumes to the uninterrupted result, and outputs that load back everywhere.

The machinery runs on the tiny profile (random networks: seconds); what the small SVD learns is notebook 05's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from svd_lab.errors import InputError, UserError
from svd_lab.finetune import data as ft_data
from svd_lab.finetune import lora
from svd_lab.finetune.demo import pan_clips, write_pan_clips
from svd_lab.finetune.train import FinetuneSettings, finetune, temporal_parameter_names
from svd_lab.svd.components import build_components

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


def tiny():
    return build_components("tiny", seed=0)


def quick(**changes) -> FinetuneSettings:
    base = {"steps": 6, "batch": 2, "lr": 1e-3, "warmup": 0, "validation_steps": 2, "checkpoint_every": 2}
    return FinetuneSettings(**{**base, **changes})


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Two right-moving pans as mp4, 6 frames each (two 3-frame windows for the tiny model)."""
    folder = tmp_path_factory.mktemp("clips")
    write_pan_clips(folder, 2, 6, 64, motion_bucket_id=200)
    return folder


# ------------------------------------------------------------------------------------------- data
def test_windows_measure_fps_and_motion_from_the_files(clips):
    dataset = ft_data.load_windows(clips, frames=3, height=64, width=64)
    # windows start every half window (hop 1 for 3 frames): 4 per 6-frame clip
    assert dataset.frames.shape == (8, 3, 3, 64, 64) and dataset.frames.dtype == torch.uint8
    assert dataset.fps_id.tolist() == [6] * 8                      # written at 7 fps
    # written at bucket 200 (the small SVD's calibration): measured back within the mp4's losses
    assert all(170 <= b <= 230 for b in dataset.motion_bucket_id.tolist()), dataset.motion_bucket_id
    fixed = ft_data.load_windows(clips, frames=3, height=64, width=64, motion_bucket_id=127, stride=2)
    assert fixed.motion_bucket_id.tolist() == [127] * len(fixed)
    assert fixed.fps_id.tolist() == [3] * len(fixed)               # 7 fps, every second frame: 3.5, rounded


def test_the_motion_measure_sees_pans_and_zooms_but_not_a_still_or_a_flash():
    still = torch.rand(1, 3, 64, 64).repeat(4, 1, 1, 1)
    assert ft_data.measure_motion(still) < 0.05
    flash = still.clone()
    flash[2] = flash[2] * 0.5 + 0.3                              # brightness change, no motion
    assert ft_data.measure_motion(flash) < 0.3
    pan = pan_clips(1, 4, 64, motion_bucket_id=255, fps_id=6, direction="right")[0]
    step = 0.2 * 255 / 255 / 7 * 64
    assert ft_data.measure_motion(pan) == pytest.approx(step, rel=0.15)
    big = torch.nn.functional.interpolate(torch.rand(1, 3, 16, 16), size=128, mode="bicubic").clamp(0, 1)[0]
    zoom = torch.stack([torch.nn.functional.interpolate(big[None, :, 32 - 2 * i:96 + 2 * i, 32 - 2 * i:96 + 2 * i],
                                                        size=64, mode="bilinear")[0] for i in range(4)])
    assert ft_data.measure_motion(zoom) > 0.4                      # a pan-only estimate would say ~0


def test_grey_rgba_and_frame_folders_train_bad_clips_are_skipped_with_a_reason(tmp_path):
    frames = (pan_clips(1, 6, 64, 200, 6)[0].permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    grey = [Image.fromarray(f).convert("L") for f in frames]
    grey[0].save(tmp_path / "grey.gif", save_all=True, append_images=grey[1:], duration=125)
    rgba_folder = tmp_path / "rgba"
    rgba_folder.mkdir()
    for i, f in enumerate(frames):
        alpha = np.full(f.shape[:2] + (1,), 200, np.uint8)
        Image.fromarray(np.concatenate([f, alpha], axis=2)).resize((96, 80)).save(rgba_folder / f"{i:03d}.png")
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    Image.fromarray(frames[0]).save(tmp_path / "short.gif", save_all=True,
                                    append_images=[Image.fromarray(f) for f in frames[1:2]], duration=125)
    dataset = ft_data.load_windows(tmp_path, frames=3, height=64, width=64)
    assert set(dataset.clip) == {"grey.gif", "rgba"}
    assert dataset.fps_id[dataset.clip.index("grey.gif")] == 7     # 125 ms per frame: 8 fps
    assert dataset.fps_id[dataset.clip.index("rgba")] == 6         # a folder: 7 fps unless told
    reasons = "\n".join(dataset.skipped)
    assert "broken.mp4: unreadable" in reasons and "short.gif: 2 frames, a window needs 3" in reasons
    result = finetune(tmp_path, tmp_path.parent / f"{tmp_path.name}-out", quick(steps=2, mode="full"),
                      components=tiny(), progress=False, log=lambda m: None)
    assert all(np.isfinite(v) for _, v in result.record["loss"])


def test_empty_or_useless_data_is_a_clear_error_and_nothing_is_written(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no videos"):
        ft_data.load_windows(tmp_path / "empty", 3, 64, 64)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.mp4").write_bytes(b"junk")
    with pytest.raises(InputError, match="a.mp4: unreadable"):
        finetune(bad, tmp_path / "out", quick(), components=tiny(), progress=False, log=lambda m: None)
    with pytest.raises(InputError, match="does not exist|no data"):
        ft_data.load_windows(tmp_path / "missing", 3, 64, 64)
    assert not (tmp_path / "out").exists()


def test_settings_are_checked_before_any_work(tmp_path, clips):
    for bad in ({"mode": "everything"}, {"lr": float("nan")}, {"steps": 0}, {"height": 100}, {"rank": 0},
                {"precision": "fp8"}, {"targets": ()}):
        with pytest.raises(InputError):
            finetune(clips, tmp_path / "out", quick(**bad), components=tiny(), progress=False, log=lambda m: None)
    (tmp_path / "taken").mkdir()
    with pytest.raises(UserError, match="already exists"):
        finetune(clips, tmp_path / "taken", quick(), components=tiny(), progress=False, log=lambda m: None)
    assert not list(tmp_path.glob("out*"))


# ------------------------------------------------------------------------------------------- modes
def _snapshot(unet) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in unet.named_parameters()}


def _moved(before: dict, unet) -> set[str]:
    return {n for n, p in unet.named_parameters() if n in before and not torch.equal(before[n], p)}


def test_temporal_mode_moves_every_temporal_parameter_and_nothing_else(tmp_path, clips):
    components = tiny()
    before = _snapshot(components.unet)
    names = set(temporal_parameter_names(components.unet))
    assert names and all(set(n.split(".")) & {"temporal_res_block", "temporal_transformer_blocks", "time_pos_embed",
                                                "time_mixer"} for n in names)
    finetune(clips, tmp_path / "out", quick(mode="temporal"), components=components, progress=False,
             log=lambda m: None)
    assert _moved(before, components.unet) == names


def test_full_mode_moves_the_unet_and_never_the_vae_or_clip(tmp_path, clips):
    components = tiny()
    vae, clip = _snapshot(components.vae), _snapshot(components.image_encoder)
    before = _snapshot(components.unet)
    finetune(clips, tmp_path / "out", quick(mode="full"), components=components, progress=False, log=lambda m: None)
    assert len(_moved(before, components.unet)) > 0.9 * len(before)
    assert not _moved(vae, components.vae) and not _moved(clip, components.image_encoder)


def test_loss_decreases_on_two_clips(tmp_path, clips):
    """The loss on fixed batches (same windows, noise and sigmas) before and after 30 full-mode steps."""
    from svd_lab.finetune.train import draw_batch, encode
    from svd_lab.small.train import svd_loss

    components = tiny()
    settings = quick(mode="full", steps=30, lr=2e-3, checkpoint_every=30)
    dataset = ft_data.load_windows(clips, 3, 64, 64)
    encoded = encode(components.vae, dataset)

    def fixed_loss():
        with torch.no_grad():
            total = 0.0
            for seed in range(8):
                g = torch.Generator().manual_seed(seed)
                total += float(svd_loss(components, *draw_batch(encoded, g, 4, components.latent_scaling),
                                        settings, g))
            return total / 8

    before = fixed_loss()
    result = finetune(clips, tmp_path / "out", settings, components=components, progress=False, log=lambda m: None)
    after = fixed_loss()
    assert after < 0.8 * before, (before, after)
    assert (tmp_path / "out" / "loss.png").is_file() and len(result.record["loss"]) == 30


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, clips):
    out = tmp_path_factory.mktemp("lora") / "run"
    components = tiny()
    before = _snapshot(components.unet)
    result = finetune(clips, out, quick(mode="lora", rank=4, alpha=4.0, lr=1e-2), components=components,
                      progress=False, log=lambda m: None)
    return result, before


def test_lora_mode_trains_only_the_adapters_and_they_moved(lora_run):
    result, before = lora_run
    unet = result.components.unet
    layers = lora.lora_layers(unet)
    assert layers and all(path.split(".")[-2] in ("attn1", "attn2") or path.endswith("to_out.0") for path in layers)
    for name, p in unet.named_parameters():
        base_name = name.replace(".base.", ".")
        if ".lora_" in name:
            continue
        assert torch.equal(p, before[base_name]), f"{name} changed"
    assert all(float(layer.lora_B.weight.abs().max()) > 0 for layer in layers.values()), "an adapter did not move"
    assert result.adapter is not None and result.adapter.stat().st_size < 200_000
    assert not (result.out.parent / "run.work").exists()


def _video(components, seed=3):
    from svd_lab.finetune.train import sample

    image = torch.linspace(0, 1, 64 * 64 * 3).view(3, 64, 64)
    return sample(components, image, frames=3, fps_id=6, bucket=200, steps=3, seed=seed)


def test_a_saved_adapter_applied_to_a_fresh_model_gives_the_in_memory_video(lora_run):
    from svd_lab.svd.profiles import apply_lora

    result, _ = lora_run
    trained = _video(result.components)
    fresh = tiny()
    base = _video(fresh)
    record = apply_lora(fresh, result.adapter, 1.0)
    assert record["rank"] == 4 and record["base"].startswith("tiny svd")
    assert torch.equal(_video(fresh), trained)
    assert (trained - base).abs().max() > 1e-3                     # the adapter does something
    lora.set_scale(fresh.unet, 0.0)
    assert torch.equal(_video(fresh), base)                        # scale 0 is the base model, exactly
    merged = tiny()
    apply_lora(merged, result.adapter, 1.0)
    assert lora.merge_lora(merged.unet) > 0 and not lora.has_lora(merged.unet)
    assert torch.allclose(_video(merged), trained, atol=2e-3)      # merging rounds differently: float sums


def test_an_adapter_for_another_model_or_a_broken_file_is_refused_before_anything_changes(lora_run, tmp_path):
    result, _ = lora_run
    small_like = build_components("small", seed=0)
    before = _snapshot(small_like.unet)
    with pytest.raises(lora.LoRAError, match="another model"):
        lora.apply_adapter(small_like.unet, result.adapter)
    assert not lora.has_lora(small_like.unet) and not _moved(before, small_like.unet)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(result.adapter.read_bytes()[:200])
    with pytest.raises(lora.LoRAError, match="not a readable"):
        lora.read_adapter(broken)
    with pytest.raises(lora.LoRAError, match="no LoRA adapter"):
        lora.read_adapter(tmp_path / "missing.safetensors")


def test_adapters_on_the_temporal_convolutions_save_apply_and_merge_exactly(tmp_path):
    """LoRA on the 3x1x1 convolutions across frames (peft's conv layout: A a conv with the base's kernel, B 1x1):
    a new adapter is the base model, a trained one saves and applies bit for bit, and merging equals it."""
    config = lora.LoRAConfig(rank=2, alpha=4.0, targets=lora.DEFAULT_TARGETS + lora.TEMPORAL_CONVS)
    model = tiny()
    base = _video(model)
    layers = lora.add_lora(model.unet, config)
    convs = {p: layer for p, layer in layers.items() if isinstance(layer, lora.LoRAConv)}
    assert convs and all(p.endswith(lora.TEMPORAL_CONVS) for p in convs)
    assert len(layers) > len(convs)                                      # the attention projections too
    assert all(isinstance(layer.base, torch.nn.Conv3d) and layer.lora_A.weight.shape[2:] == layer.base.kernel_size
               for layer in convs.values())
    assert torch.equal(_video(model), base)                              # B starts at zero
    with torch.no_grad():
        for layer in layers.values():
            layer.lora_B.weight.normal_(std=0.05)
    adapted = _video(model)
    assert (adapted - base).abs().max() > 1e-3
    assert sum(p.numel() for n, p in model.unet.named_parameters() if ".lora_" in n) == sum(
        layer.rank * (layer.fan_in + layer.fan_out) for layer in layers.values())
    path = lora.save_adapter(model.unet, config, tmp_path / "conv.safetensors", {"base": "tiny"})
    fresh = tiny()
    lora.apply_adapter(fresh.unet, path)
    assert torch.equal(_video(fresh), adapted)
    assert lora.merge_lora(fresh.unet) == len(layers) and not lora.has_lora(fresh.unet)
    assert torch.allclose(_video(fresh), adapted, atol=1e-4)           # B after A is one conv: an exact merge
    only_temporal = tiny()                      # temporal convolutions are temporal: none in the spatial blocks
    with pytest.raises(lora.LoRAError, match="no linear or convolution layer"):
        lora.add_lora(only_temporal.unet, lora.LoRAConfig(targets=lora.TEMPORAL_CONVS, blocks="spatial"))


def test_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path, clips, monkeypatch):
    from svd_lab.small import train as small_train

    settings = quick(mode="lora", steps=6, checkpoint_every=2, ema=0.9)
    whole = finetune(clips, tmp_path / "whole", settings, components=tiny(), progress=False, log=lambda m: None)
    real, calls = small_train.svd_loss, {"n": 0}

    def killed(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:                                          # step 4, after the checkpoint at step 2
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(small_train, "svd_loss", killed)
    with pytest.raises(KeyboardInterrupt):
        finetune(clips, tmp_path / "resumed", settings, components=tiny(), progress=False, log=lambda m: None)
    monkeypatch.setattr(small_train, "svd_loss", real)
    assert not (tmp_path / "resumed").exists() and (tmp_path / "resumed.work" / "state.safetensors").is_file()
    messages = []
    resumed = finetune(clips, tmp_path / "resumed", settings, components=tiny(), progress=False, log=messages.append)
    assert any("resuming at step 2" in m for m in messages)
    a, _, _ = lora.read_adapter(whole.adapter)
    b, _, _ = lora.read_adapter(resumed.adapter)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert whole.record["loss"] == resumed.record["loss"]
    with pytest.raises(UserError, match="other settings"):
        (tmp_path / "again.work").mkdir()
        (tmp_path / "again.work" / "run.json").write_text(json.dumps({"settings": {}}))
        finetune(clips, tmp_path / "again", settings, components=tiny(), progress=False, log=lambda m: None)


# ------------------------------------------------------------------------------------------- loading back
def test_a_full_run_loads_back_at_its_own_size_and_frame_count(tmp_path, clips):
    from svd_lab.svd.loading import load_checkpoint
    from svd_lab.svd.pipeline import SVDPipeline

    base = tiny()
    base.sampling = {"num_steps": 3, "max_guidance": 1.5}     # the base's recommended settings carry over
    finetune(clips, tmp_path / "full", quick(mode="full", steps=2, frames=4), components=base, progress=False,
             log=lambda m: None)
    loaded = load_checkpoint(tmp_path / "full", progress=False)
    assert loaded.trained_size == (64, 64) and loaded.native_frames == 4
    assert loaded.sampling == base.sampling
    params = SVDPipeline(loaded, device="cpu").resolve_params()
    assert params["num_steps"] == 3 and params["max_guidance"] == 1.5 and params["min_guidance"] == 1.0
    video = SVDPipeline(loaded, device="cpu").run(np.zeros((64, 64, 3), np.uint8), num_steps=2, seed=1,
                                                 progress=False)
    assert video.frames.shape == (4, 3, 64, 64)
    record = json.loads((tmp_path / "full" / "finetune.json").read_text())
    assert record["validations"][0]["video"] == "validation/step-000000.mp4"
    assert (tmp_path / "full" / "validation" / "step-000002.mp4").is_file()


def test_batch_identity_includes_the_adapter_and_its_scale(lora_run):
    from svd_lab.batches import model_identity
    from svd_lab.svd.pipeline import SVDPipeline
    from svd_lab.svd.profiles import apply_lora

    result, _ = lora_run
    identities = set()
    for scale in (None, 1.0, 0.5):
        components = tiny()
        if scale is not None:
            apply_lora(components, result.adapter, scale)
        identities.add(model_identity(SVDPipeline(components, device="cpu")))
    assert len(identities) == 3


def test_the_commands_train_and_sample_with_an_adapter(tmp_path, clips):
    """`svd-lab finetune` on the shipped small SVD (2 steps) and `svd-lab sample --lora` with what it wrote."""
    from svd_lab.small.model import is_present

    if not is_present():
        pytest.skip("no shipped small SVD in checkpoints/small")
    run = [sys.executable, "-m", "svd_lab"]
    done = subprocess.run(run + ["finetune", str(clips), "--out", str(tmp_path / "ft"), "--steps", "2",
                                 "--validation-steps", "2", "--rank", "2", "--frames", "3", "--no-progress",
                                 "--threads", "1"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "--lora" in done.stdout
    image = Path(__file__).resolve().parents[1] / "assets" / "rocket.png"
    done = subprocess.run(run + ["sample", str(image), "--lora", str(tmp_path / "ft" / "lora.safetensors"),
                                 "--steps", "2", "--out", str(tmp_path / "videos"), "--no-progress"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    params = json.loads(next((tmp_path / "videos").glob("*.json")).read_text())
    assert params["num_frames"] == 8 and params["width"] == 64
    bad = subprocess.run(run + ["sample", str(image), "--lora", str(image)], capture_output=True, text=True,
                         timeout=120, check=False)
    assert bad.returncode != 0 and "not a readable safetensors" in bad.stderr


def test_memory_options_train_gradient_checkpointing_accumulation_bf16_ema(tmp_path, clips):
    """Each option runs and trains (finite, moving weights); 8-bit Adam without bitsandbytes is a clear error."""
    components = tiny()
    before = _snapshot(components.unet)
    result = finetune(clips, tmp_path / "out", quick(mode="full", steps=2, gradient_checkpointing=True, accumulate=2,
                                                      precision="bf16", ema=0.5, batch=1),
                      components=components, progress=False, log=lambda m: None)
    assert all(np.isfinite(v) for _, v in result.record["loss"]) and _moved(before, components.unet)
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        with pytest.raises(InputError, match="bitsandbytes"):
            finetune(clips, tmp_path / "bnb", quick(optimizer="adamw8bit"), components=tiny(), progress=False)


def test_an_adapter_merged_into_a_folder_samples_like_the_adapter(tmp_path, clips):
    """`svd-lab merge` on the shipped small SVD: the folder it writes samples (almost) what the adapter does."""
    from svd_lab.small.model import is_present, load_small
    from svd_lab.svd.loading import load_checkpoint
    from svd_lab.svd.profiles import apply_lora

    if not is_present():
        pytest.skip("no shipped small SVD in checkpoints/small")
    result = finetune(clips, tmp_path / "ft", quick(mode="lora", steps=2, frames=3, rank=2, lr=1e-2),
                      components=load_small(), progress=False, log=lambda m: None)
    done = subprocess.run([sys.executable, "-m", "svd_lab", "merge", str(result.adapter), "--out",
                           str(tmp_path / "merged")], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    merged = load_checkpoint(tmp_path / "merged", progress=False)
    assert merged.profile == "small" and not lora.has_lora(merged.unet)
    adapted = load_small()
    apply_lora(adapted, result.adapter)
    image = torch.linspace(0, 1, 64 * 64 * 3).view(3, 64, 64)
    from svd_lab.finetune.train import sample

    a = sample(adapted, image, frames=8, fps_id=6, bucket=200, steps=3)
    b = sample(merged, image, frames=8, fps_id=6, bucket=200, steps=3)
    # the merged weights are rounded to fp32 sums once instead of computed per call: close, not bitwise
    assert (a - b).abs().max() < 2e-2
    again = subprocess.run([sys.executable, "-m", "svd_lab", "merge", str(result.adapter), "--out",
                            str(tmp_path / "merged")], capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode != 0 and "already exists" in again.stderr


def test_two_processes_through_accelerate_write_one_result(tmp_path, clips):
    """`accelerate launch --multi_gpu --num_processes 2` (gloo on a CPU, as `svd-lab batch --processes` runs):
    data-parallel steps, one output written by the main process, no race on the work folder."""
    from svd_lab.small.model import is_present

    if not is_present():
        pytest.skip("no shipped small SVD in checkpoints/small")
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "svd_lab",
               "finetune", str(clips), "--out", str(tmp_path / "ddp"), "--steps", "2", "--frames", "3",
               "--validation-steps", "2", "--rank", "2", "--no-progress", "--threads", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("sample with it") == 1
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["finetune.json", "lora.safetensors", "loss.png",
                                                                  "validation"]
    assert not (tmp_path / "ddp.work").exists()
