"""The small SVD: deterministic clips with known ground truth, a motion estimator that a jump or a flash cannot
fool, pixel-space metrics that fail on garbage, training stages that resume exactly, and shipped weights that show
their input moving as asked (the bar of issue 24 on a small fixed subset; the full table is `make bench`)."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

pytest.importorskip("skimage", reason="the training photos come from scikit-image (pip install 'svd-lab[train]')")

from svd_lab import pixels
from svd_lab.small import data, metrics
from svd_lab.small.model import is_present, shipped_folder

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


@pytest.fixture(scope="module")
def leaves():
    return data.leaves_pool(4, seed=7)


def test_clips_are_deterministic_and_follow_the_speed_rule(leaves):
    a = data.generate(4, seed=5, motion_bucket_id=200, fps_id=6, leaves=leaves)
    b = data.generate(4, seed=5, motion_bucket_id=200, fps_id=6, leaves=leaves)
    assert torch.equal(a.frames, b.frames) and a.source == b.source
    assert not torch.equal(a.frames, data.generate(4, seed=6, motion_bucket_id=200, fps_id=6, leaves=leaves).frames)
    assert a.frames.shape == (4, data.FRAMES, 3, data.SIZE, data.SIZE)
    assert 0 <= float(a.frames.min()) and float(a.frames.max()) <= 1
    # step = SPEED_AT_255 * bucket / 255 / fps * width, content moving left
    assert torch.allclose(a.step, torch.full((4,), data.SPEED_AT_255 * 200 / 255 / 7 * data.SIZE))
    assert float(data.speed_to_step(255, 5)) == pytest.approx(2 * float(data.speed_to_step(255, 11)))
    assert a.added_time_ids().tolist()[0][:2] == [6.0, 200.0]
    # both kinds of source occur, and leaves_share 0 / 1 chooses one
    mixed = data.generate(16, seed=1, leaves=leaves)
    assert {s.split(":")[0] for s in mixed.source} >= {"leaves"} and any(":" not in s for s in mixed.source)
    assert all(s.startswith("leaves:") for s in data.generate(3, seed=1, leaves=leaves, leaves_share=1.0).source)
    assert not any(s.startswith("leaves:") for s in data.generate(3, seed=1, leaves=leaves, leaves_share=0.0).source)


def test_dead_leaves_are_deterministic_varied_natural_images():
    pool = data.leaves_pool(6, seed=3)
    assert pool.dtype == torch.uint8 and pool.shape == (6, 3, data.CANVAS_HEIGHT, data.CANVAS_WIDTH)
    assert torch.equal(pool, data.leaves_pool(6, seed=3))
    means = pool.float().mean(dim=(2, 3)) / 255
    assert float(means.std(0).mean()) > 0.05                      # different colours from image to image
    # edges and flat regions: many nearly-equal neighbours and some strong jumps
    grey = pool.float().mean(1) / 255
    diffs = (grey[:, :, 1:] - grey[:, :, :-1]).abs()
    assert float((diffs < 0.01).float().mean()) > 0.4 and float((diffs > 0.1).float().mean()) > 0.005


def test_stage_3_data_smooth_fields_and_thin_lines():
    """The whole-frame stage's additions: a shared smooth field or a few thin segments, the same in every frame, only in
    the asked share of the clips, deterministic, inside [0, 1]."""
    frames = torch.zeros(6, 3, 3, 64, 64)
    for add in (data.smooth_fields, data.thin_lines):
        none = add(frames, torch.Generator().manual_seed(1), 0.0)
        assert torch.equal(none, frames)
        out = add(frames, torch.Generator().manual_seed(1), 1.0)
        assert torch.equal(out, add(frames, torch.Generator().manual_seed(1), 1.0))
        assert out.min() >= 0 and out.max() <= 1
        assert torch.equal(out[:, 0], out[:, 2])                           # the same in every frame of a clip
        changed = (out != frames).flatten(1).any(1)
        assert bool(changed.all()), add.__name__
    lines = data.thin_lines(frames, torch.Generator().manual_seed(2), 1.0)
    # thin: the segments of a clip cover a small share of its pixels, but some
    covered = (lines[:, 0] > 0).any(1).float().mean((1, 2))
    assert float(covered.max()) < 0.25 and float(covered.min()) > 0.002, covered
    half = data.thin_lines(frames, torch.Generator().manual_seed(2), 0.5)
    assert 0 < int((half != frames).flatten(1).any(1).sum()) < 6
    # whole fields replace the clip (a blend keeps some of it); both modes draw the same random numbers
    ones = torch.ones_like(frames)

    def seeded():
        return torch.Generator().manual_seed(3)

    whole = [data.smooth_fields(x, seeded(), 1.0, whole=True) for x in (frames, ones)]
    blend = [data.smooth_fields(x, seeded(), 1.0) for x in (frames, ones)]
    assert torch.equal(whole[0], whole[1]) and not torch.equal(blend[0], blend[1])
    after = [seeded(), seeded()]
    data.smooth_fields(frames, after[0], 0.5)
    data.smooth_fields(frames, after[1], 0.5, whole=True)
    assert torch.equal(torch.rand(4, generator=after[0]), torch.rand(4, generator=after[1]))


def test_the_course_assets_and_two_photos_are_held_out():
    assert set(data.HELD_OUT_ASSETS) == {"rocket", "astronaut", "coffee"}
    assert not set(data.HELD_OUT_ASSETS) & set(data.PHOTOS)
    assert set(data.HELD_OUT_PHOTOS) == {"motorcycle", "hopper"} and not set(data.HELD_OUT_PHOTOS) & set(data.PHOTOS)
    for name in data.HELD_OUT_PHOTOS:
        photo = data.held_out_photo(name)
        assert photo.shape[0] == 3 and min(photo.shape[1:]) >= 256


# ------------------------------------------------------------------------------------------- measuring motion
def test_measured_motion_matches_the_ground_truth(leaves):
    clips = data.generate(4, seed=3, motion_bucket_id=200, fps_id=6, leaves=leaves)
    for i in range(4):
        assert metrics.displacement(clips.frames[i]) == pytest.approx(float(clips.step[i]), abs=0.1)
        assert all(s == pytest.approx(float(clips.step[i]), abs=0.15) for s in metrics.frame_shifts(clips.frames[i]))
        static = clips.frames[i, :1].repeat(data.FRAMES, 1, 1, 1)
        assert abs(metrics.displacement(static)) < 0.02


def test_a_video_that_jumps_or_flashes_is_not_a_pan():
    """The failure of the old estimator: shifts against frame 0 of a video that stands still and then jumps by
    one latent cell (8 px), fitted with a slope, gave a smooth "1.03 px/frame"."""
    image = metrics.evaluation_images(0, course=True, photos=False)[0].image        # the rocket, 64x64
    jump = torch.stack([image] * 5 + [data.pan_image(image, 8.0, 2)[1]] * 3)
    assert metrics.frame_shifts(jump)[4] == pytest.approx(8.0, abs=0.3)          # the jump is seen where it is
    assert abs(metrics.displacement(jump)) < 0.05                                  # but it is not a pan
    old_slope = sum(t * 8.0 * (t >= 5) for t in range(8)) / sum(t * t for t in range(8))
    assert old_slope > 1.0                                                         # what a slope over frame 0 said
    tints = torch.tensor([[1.0, 1.0, 1.0], [1.3, 0.8, 0.7], [0.7, 0.9, 1.4], [0.5, 0.5, 0.5]] * 2)
    flash = (image.unsqueeze(0) * tints.view(8, 3, 1, 1)).clamp(0, 1)
    assert all(abs(s) < 0.1 for s in metrics.frame_shifts(flash))
    assert abs(metrics.displacement(flash)) < 0.05
    assert float(pixels.colour_error(flash, image.expand(8, -1, -1, -1)).max()) > 0.1   # (g) sees the flash


def test_spearman_with_ties():
    assert metrics.spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert metrics.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert metrics.spearman([1, 2, 3, 3], [1, 2, 2, 5]) == pytest.approx(0.8333, abs=1e-3)


# ------------------------------------------------------------------------------------------- pixel metrics
def test_thumbnail_baseline_and_psnr():
    assert pixels.thumbnail_side(256) == 9 and pixels.thumbnail_side(1024) == 18
    image = metrics.evaluation_images(0, course=True, photos=False)[0].image
    thumb = pixels.thumbnail(image, 256)
    assert thumb.shape == image.shape
    # the measurement of the rocket: 26.0 dB from a 9x9 thumbnail
    assert pixels.psnr(image, thumb) == pytest.approx(26.0, abs=0.1)
    assert pixels.psnr(image, image) == math.inf
    assert pixels.psnr(image, thumb) < pixels.psnr(image, pixels.thumbnail(image, 3 * 32 * 32))


def test_metrics_cannot_pass_garbage():
    """A VAE that outputs grey, videos that are blobs: every score of the bar must fail them."""
    images = metrics.evaluation_images(2, course=True, photos=False)
    grey = torch.full_like(images[0].image, 0.5)
    assert pixels.psnr(images[0].image, grey) < pixels.psnr(images[0].image, pixels.thumbnail(images[0].image, 256))
    static = metrics.score_reference("static copy", images, data.FRAMES)
    truth = metrics.score_reference("ground truth", images, data.FRAMES)
    assert truth.motion_spearman > 0.95 and truth.fps_share == 1.0 and truth.pan_error == 0.0
    assert truth.colour_error_max < 0.01
    assert static.motion_spearman == 0.0 and static.fps_share == 0.0 and static.pan_error > 0.01


def test_another_crop_seed_draws_other_held_out_crops_and_the_default_draw_stays():
    """``--crop-seed``: other crops from the same held-out sources; the tables' draw is the default."""
    default = metrics.evaluation_images(4, course=False, photos=False)
    same = metrics.evaluation_images(4, course=False, photos=False, crop_seed=metrics.EVAL_SEED)
    other = metrics.evaluation_images(4, course=False, photos=False, crop_seed=777001)
    assert [im.name for im in default] == [im.name for im in same]
    assert all(torch.equal(a.image, b.image) for a, b in zip(default, same))
    assert not any(torch.equal(a.image, b.image) for a in default for b in other)
    assert [im.name.split(":")[1] == "leaves" for im in other] == [False, True, False, True]
    assert all(im.image.mean(0).std() >= metrics.MIN_TEXTURE for im in other)
    with pytest.raises(ValueError, match="crop_seed must be >= 0"):
        metrics.evaluation_images(1, course=False, photos=False, crop_seed=-1)


# ------------------------------------------------------------------------------------------- training
@pytest.mark.slow
def test_a_work_folder_from_other_settings_is_refused_naming_what_differs(tmp_path):
    from svd_lab.errors import UserError
    from svd_lab.small.train import TrainSettings, Work

    Work(tmp_path / "run.work", TrainSettings(decoder_steps=7))
    recorded = json.loads((tmp_path / "run.work" / "settings.json").read_text())
    del recorded["lines_share"]                        # a folder started before the setting existed
    (tmp_path / "run.work" / "settings.json").write_text(json.dumps(recorded))
    with pytest.raises(UserError) as error:
        Work(tmp_path / "run.work", TrainSettings(decoder_steps=9))
    said = str(error.value)
    assert "decoder_steps: 7 there, 9 here" in said and "lines_share: absent there, 0.5 here" in said, said
    assert "remove it" in said
    assert json.loads((tmp_path / "run.work" / "settings.json").read_text()) == recorded      # nothing rewritten


def test_training_resumes_exactly_and_lowers_the_losses(tmp_path, monkeypatch):
    import svd_lab.small.train as train_module
    from svd_lab.small.model import load_small
    from svd_lab.small.train import TrainSettings, train, work_folder
    from svd_lab.svd.components import build_components
    from svd_lab.training import load_state, save_state

    # the smallest run that still shows every stage (the training log's VAE table on the course images only)
    monkeypatch.setattr(train_module, "QUALITY_CROPS", 0)
    settings = TrainSettings(canvases=6, vae_steps=12, vae_batch=2, pool_clips=12, steps=24, batch=4, warmup=4,
                             decoder_steps=8, decoder_batch=1, fast_steps=8, checkpoint_every=5)
    quiet = {"progress": False, "log": lambda m: None}
    whole, record = train(settings, out=tmp_path / "whole", **quiet)
    assert not work_folder(tmp_path / "whole").exists()                     # removed once the model is written

    def stopped_after(stage: str, name: str) -> torch.nn.Module:
        """Run until ``stage``, then round its network (``name``) to fp16 in the work folder, as a shipped model
        holds it (a run may take the stages up to there from a shipped model: the next starts from the rounded
        weights either way); returns that network."""
        assert train(settings, out=tmp_path / "split", until=stage, **quiet)[0] is None
        path = work_folder(tmp_path / "split") / f"{stage}.safetensors"
        network = getattr(build_components("small", seed=0), name)
        meta = load_state(path, {name: network})
        for parameter in network.parameters():
            parameter.data = parameter.data.half().float()
        save_state(path, {name: network}, meta=meta)
        return network

    # the same run, stopped after the VAE, rounded to fp16 ...
    stage2 = stopped_after("vae", "vae")

    def interrupted_at(name: str, call: int) -> None:
        """Run ``train`` with ``train_module.<name>`` raising KeyboardInterrupt on its ``call``-th call."""
        real, calls = getattr(train_module, name), {"n": 0}

        def interrupted(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == call:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        setattr(train_module, name, interrupted)
        try:
            with pytest.raises(KeyboardInterrupt):
                train(settings, out=tmp_path / "split", **quiet)
        finally:
            setattr(train_module, name, real)

    # ... then interrupted in the middle of stage 3 (whole frames) and in the middle of the UNet stage, stopped
    # after it and its UNet rounded to fp16 likewise (stage 6 starts from the rounded UNet), interrupted in stage 6
    interrupted_at("vae_loss", 7)
    interrupted_at("svd_loss", 13)
    stopped_after("unet", "unet")
    interrupted_at("svd_loss", 7)
    assert not (tmp_path / "split").exists() and work_folder(tmp_path / "split").is_dir()
    split, _ = train(settings, out=tmp_path / "split", **quiet)
    # stage 3 trained the encoder and the decoder (settings.tune_encoder)
    for part in ("encoder", "decoder"):
        ours, theirs = getattr(stage2, part).state_dict(), getattr(split.vae, part).state_dict()
        assert not all(torch.equal(ours[k], theirs[k]) for k in ours), part
    for name in ("unet", "vae"):
        ours, theirs = getattr(whole, name).state_dict(), getattr(split, name).state_dict()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), name
    # the latents were rescaled after stage 3, so the UNet learned unit-variance latents of the VAE that ships
    check = data.generate(16, seed=train_module._seed(0, 0, 2), leaves=data.leaves_pool(6, seed=0))
    with torch.no_grad():
        z = whole.vae.encode(check.frames.flatten(0, 1) * 2 - 1).latent_dist.mode()
    assert float(train_module.LATENT_SCALING * z.std()) == pytest.approx(1.0, abs=0.01)
    assert record["decoder"]["latent_rescale"] != 1.0

    losses = [loss for _, loss in record["loss"]]
    assert sum(losses[-6:]) / 6 < sum(losses[:6]) / 6, losses
    vae_losses = [loss for _, loss in record["vae"]["loss"]]
    # the VAE starts as a thumbnail codec (svd_lab.small.init), so 12 warm-up steps only must not make it worse
    assert all(math.isfinite(v) for v in vae_losses) and sum(vae_losses[-6:]) < 1.2 * sum(vae_losses[:6])
    assert len(record["decoder"]["loss"]) == 8 and "quality_before" in record["decoder"]
    assert record["total_seconds"] == pytest.approx(sum(record["seconds"].values()), abs=0.2)
    assert list(record["seconds"]) == ["canvases", "vae", "decoder", "pool", "unet", "fast"]
    assert len(record["fast"]["loss"]) == 8 and all(math.isfinite(v) for _, v in record["fast"]["loss"])
    reloaded = load_small(tmp_path / "whole")          # the saved folder loads like any diffusers checkpoint
    assert reloaded.profile == "small" and (tmp_path / "whole" / "loss.png").is_file()
    # no local path travels in the configs
    assert "_name_or_path" not in json.loads((tmp_path / "whole" / "vae" / "config.json").read_text())
    assert json.loads((tmp_path / "whole" / "training.json").read_text())["settings"]["seed"] == 0
    with pytest.raises(Exception, match="already exists"):
        train(settings, out=tmp_path / "whole", **quiet)                       # nothing is overwritten


@pytest.mark.parametrize("tune_encoder", [False, True])
def test_stage_3_tunes_the_encoder_only_when_asked(tmp_path, monkeypatch, tune_encoder):
    from svd_lab.small.train import TrainSettings, Work, train_decoder
    from svd_lab.svd.components import build_components

    drawn = []
    real_lines = data.thin_lines
    monkeypatch.setattr(data, "thin_lines", lambda frames, generator, share: drawn.append(share) or
                        real_lines(frames, generator, share))
    vae = build_components("small", seed=0).vae
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    settings = TrainSettings(decoder_steps=1, decoder_batch=1, tune_encoder=tune_encoder, lines_share=0.75)
    entry = train_decoder(vae, data.leaves_pool(2, seed=7), settings, Work(tmp_path / "work", settings), False,
                          lambda m: None, size=32)
    assert len(entry["loss"]) == 1 and not vae.training
    assert drawn == [0.75]                                     # the lines are drawn, at the asked share
    after = vae.state_dict()
    moved = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert moved == ({"encoder", "quant_conv", "decoder"} if tune_encoder else {"decoder"}), moved


def test_stage_6_batches_draw_fast_pans_at_the_asked_share():
    from svd_lab.errors import UserError
    from svd_lab.small.train import LatentPool, _batch

    n = 40
    pool = LatentPool(torch.randn(n, 10, 4, 8, 8), torch.zeros(n, 3, 3, 64, 64, dtype=torch.uint8),
                      torch.full((n,), 6), torch.arange(n) * 255 // (n - 1))
    for seed in range(5):
        plain = _batch(pool, torch.Generator().manual_seed(seed), 8, 8)
        z, _, _, bucket = _batch(pool, torch.Generator().manual_seed(seed), 8, 8, (0.5, 170))
        assert (bucket[:4] >= 170).all() and z.shape == plain[0].shape == (8, 8, 4, 8, 8)
        assert torch.equal(plain[3], _batch(pool, torch.Generator().manual_seed(seed), 8, 8)[3])
    with pytest.raises(UserError, match="no clip at motion_bucket_id >= 256"):
        _batch(pool, torch.Generator().manual_seed(0), 8, 8, (0.5, 256))


# ------------------------------------------------------------------------------------------- shipped weights
shipped = pytest.mark.skipif(not is_present(), reason="no shipped small SVD in checkpoints/small")


@shipped
def test_shipped_weights_are_small_fp16_safetensors_from_the_recipe():
    from svd_lab.small.train import TrainSettings

    folder = shipped_folder()
    weights = sorted(folder.rglob("*.safetensors"))
    assert {w.parent.name for w in weights} == {"unet", "vae", "image_encoder"}
    assert all(".fp16." in w.name for w in weights)
    log = json.loads((folder / "training.json").read_text())
    assert log["settings"] == {**TrainSettings().__dict__, "seed": 0}, "shipped weights must come from the recipe"
    assert log["total_seconds"] <= 150 * 60, "the recipe must train within 150 minutes on this CPU"
    assert not list(folder.rglob("*.bin")) and not list(folder.rglob("*.ckpt")) and not list(folder.rglob("*.pt"))


@shipped
def test_shipped_weights_fit_in_20_mb():
    folder = shipped_folder()
    assert sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) <= 20 * 10**6


@shipped
def test_load_pipeline_picks_the_small_profile_on_a_cpu_and_the_rocket_moves_as_asked():
    from svd_lab import paths
    from svd_lab.svd.profiles import load_pipeline

    pipe, choice = load_pipeline("svd", profile="auto", device="cpu", progress=False)
    assert choice.profile == "small", choice.reason
    size = pipe.components.native_size
    rocket = str(paths.project_root() / "assets" / "rocket.png")
    motion = {}
    for bucket in (0, 255):
        generation = pipe.run(rocket, motion_bucket_id=bucket, seed=23, progress=False)
        assert generation.frames.shape == (pipe.components.native_frames, 3, size, size)
        motion[bucket] = metrics.displacement(generation.frames)
    expected = float(data.speed_to_step(255, 6, size))
    assert abs(motion[0]) < 0.2 * expected, motion
    assert abs(motion[255] - expected) < 0.3 * expected, motion


@shipped
def test_the_shipped_record_sets_steps_and_guidance_and_a_run_can_override_them():
    from svd_lab.small.model import SAMPLING, load_small
    from svd_lab.svd.pipeline import SVDPipeline

    components = load_small()
    assert components.sampling == SAMPLING
    pipe = SVDPipeline(components, device="cpu", dtype="float32", memory="resident")
    params = pipe.resolve_params()
    assert {k: params[k] for k in SAMPLING} == SAMPLING
    assert params["num_frames"] == components.native_frames and params["height"] == components.native_size
    given = pipe.resolve_params(num_steps=25, min_guidance=1.0, max_guidance=2.5)
    assert (given["num_steps"], given["max_guidance"]) == (25, 2.5)


@pytest.mark.parametrize("sampling, problem", [
    ({"num_steps": 0}, "num_steps: 0"), ({"num_steps": 2.5}, "num_steps: 2.5"),
    ({"max_guidance": "high"}, "max_guidance: 'high'"), ({"max_guidance": float("nan")}, "max_guidance: nan"),
    ({"guidance": 2}, "'guidance' (known: "), ([12], "[12] (a mapping")])
def test_a_record_with_unusable_sampling_defaults_is_refused(tmp_path, sampling, problem):
    from svd_lab.errors import CheckpointLoadError
    from svd_lab.svd.loading import _recorded_sampling

    assert _recorded_sampling(tmp_path) == {}                        # no record: the version's defaults
    (tmp_path / "svd_lab_version.json").write_text(json.dumps({"version": "svd"}))
    assert _recorded_sampling(tmp_path) == {}
    (tmp_path / "svd_lab_version.json").write_text(json.dumps({"version": "svd", "sampling": sampling}))
    with pytest.raises(CheckpointLoadError, match="svd_lab_version.json") as error:
        _recorded_sampling(tmp_path)
    assert problem in str(error.value) and "delete the entry" in str(error.value)


#: criteria of the bar the shipped model is measured to miss (README "The small SVD" has the full table): the test
#: fails on any other miss, and on one of these the day it passes (then remove it here and in the README)
KNOWN_MISSES: dict[str, str] = {}

@pytest.fixture
def every_core():
    """This test samples ~35 videos: unlike the module's tiny networks it gains from every core (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    yield
    torch.set_num_threads(before)


@shipped
@pytest.mark.slow
def test_shipped_model_meets_the_bar_where_the_baselines_do_not(every_core):
    """The bar of issue 24 on a fixed subset (:data:`metrics.QUICK`): videos of the three course images at motion
    buckets 0, 127 and 255 with the model's default settings, (e) on the rocket and the astronaut with two seeds (on
    the rocket alone the seed spread once exceeded the drop), (f) on the course images and the full held-out set (2
    photos, 24 crops: single round trips are cheap); the untrained model (on the rocket) and the static copy must
    fail it. The full evaluation, all five buckets on 29 images, is the benchmark (`svd-lab small eval`): decoding
    costs about 0.35 s per 8-frame video on this CPU (128 channels at full resolution)."""
    evaluation = metrics.evaluate(**metrics.QUICK, log=lambda m: None)
    verdict = evaluation.passes("shipped")
    table = metrics.format_table(evaluation)
    assert not all(evaluation.passes("untrained").values())
    static, ceiling = evaluation.row("static copy"), evaluation.row("ground truth through the VAE")
    assert static.motion_spearman < metrics.BAR["motion_spearman"] and static.fps_share < metrics.BAR["fps_share"]
    assert ceiling.pan_error < static.pan_error
    unexpected = [c for c, ok in verdict.items() if not ok and c not in KNOWN_MISSES]
    assert not unexpected, (unexpected, table)
    reached = [c for c in KNOWN_MISSES if verdict.get(c)]
    assert not reached, f"{reached} now pass: remove them from KNOWN_MISSES (and say so in the README)\n{table}"
    if KNOWN_MISSES:
        pytest.xfail("the shipped model misses the bar on " + "; ".join(f"{c}: {why}" for c, why in
                                                                     KNOWN_MISSES.items()))


def test_every_photo_is_named_with_its_licence_in_assets():
    from svd_lab import paths

    text = (paths.project_root() / "assets" / "LICENSES.md").read_text()
    for name, (what, author, licence) in data.PHOTOS.items():
        assert f"| `{name}()` | {what} | {author} | {licence} |" in text, name
    for name, (source, what, author, licence) in data.HELD_OUT_PHOTOS.items():
        assert f"| {name} | `{source}` | {what} | {author} | {licence} |" in text, name
