"""The shipped mini world model (checkpoints/mini/): it loads, samples through the SVD sampler, and is scored on
the fixed evaluation videos against the issue's bar (measured numbers: README, "The mini world model", and
checkpoints/mini/training.json); the tests fail if the weights, the sampler or the metrics regress."""

import pytest
import torch

from svd_lab.mini import metrics
from svd_lab.mini.model import DIT_FILE, MiniWorldModel, SamplingSettings, load_model, read_facts
from svd_lab.mini.train import TrainSettings
from svd_lab.paths import project_root

SHIPPED = project_root() / "checkpoints" / "mini"
# the shipped recipe is TrainSettings' defaults
SHIPPED_SEED, SHIPPED_STEPS = TrainSettings.seed, TrainSettings.steps

# The shipped model must pass the issue's bar on the 64 fixed videos with the default sampling settings (20 steps,
# guidance 1 -> 2): (a) <= 1 px, (b) >= 95%, (c) >= 80%, (d) >= 0.9, (e) >= 80%. Measured (16,000 steps):
# (a) 0.11 px, (b) 99.4%, (c) 95.3%, (d) 0.943, (e) 95.3%.
EXPECTED = metrics.BAR


def test_the_bar_is_the_issues_bar():
    # written out here so that loosening metrics.BAR cannot quietly make the quality test pass
    assert metrics.BAR == {"first_frame_error_px": ("<=", 1.0), "presence": (">=", 0.95), "track_ok": (">=", 0.80),
                           "speed_correlation": (">=", 0.9), "speed_in_bucket": (">=", 0.80)}
    assert (metrics.TRACK_TOLERANCE_PX, metrics.MIN_PRESENT_FRAMES, metrics.EVAL_VIDEOS) == (1.5, 6, 64)


def test_shipped_weights_are_committed():
    # The weights ship with the repository: their absence is a broken checkout, not a reason to skip.
    assert (SHIPPED / DIT_FILE).is_file(), f"{SHIPPED / DIT_FILE} is missing: git checkout checkpoints/mini"


def test_shipped_weights_are_small_and_documented():
    total = sum(p.stat().st_size for p in SHIPPED.glob("*.safetensors"))
    assert total <= 10 * 1024 * 1024
    facts = read_facts(SHIPPED)
    assert facts["kind"] == "svd-lab-mini" and facts["complete"] is True
    assert facts["steps"] == SHIPPED_STEPS and facts["seed"] == SHIPPED_SEED
    assert f"--steps {SHIPPED_STEPS} --seed {SHIPPED_SEED}" in facts["command"]
    script = (project_root() / "tools" / "train_mini.sh").read_text()
    assert f"--steps {SHIPPED_STEPS} --seed {SHIPPED_SEED}" in script


def test_the_defaults_are_the_shipped_recipe():
    """TrainSettings() (and the DiTConfig() inside it) is exactly what trained the shipped weights."""
    import json
    from dataclasses import asdict

    recorded = json.loads((SHIPPED / "training.json").read_text())["settings"]
    # settings added after the shipped run default to what that run did: the EDM objective (the only one then)
    assert asdict(TrainSettings()) == {"objective": "edm", **recorded}


@pytest.fixture(scope="module")
def shipped() -> MiniWorldModel:
    return load_model(SHIPPED)


def test_shipped_model_samples_through_the_svd_sampler(shipped, monkeypatch):
    from svd_lab.sampling import edm

    calls = []
    real_sample = edm.sample

    def spy(denoiser, *a, **k):
        calls.append((type(denoiser.precondition).__name__, denoiser.precondition.sigma_data, k.get("guidance")))
        return real_sample(denoiser, *a, **k)

    monkeypatch.setattr(edm, "sample", spy)
    frames = metrics.eval_set(2).frames[:, 0]
    video = shipped.generate(frames, torch.tensor([0, 7]), settings=SamplingSettings(steps=4))
    assert video.shape == (2, 8, 1, 32, 32) and 0 <= video.min() and video.max() <= 1
    assert calls and calls[0][0] == "EDMPreconditioning" and calls[0][1] == 0.5
    assert calls[0][2].shape == (8,)


def test_shipped_model_is_deterministic_by_seed(shipped):
    frames = metrics.eval_set(2).frames[:, 0]
    quick = SamplingSettings(steps=4)
    a = shipped.generate(frames, torch.tensor([1, 2]), seed=5, settings=quick)
    b = shipped.generate(frames, torch.tensor([1, 2]), seed=5, settings=quick)
    assert torch.equal(a, b)


def test_shipped_model_quality_on_the_fixed_videos(shipped):
    scores = metrics.evaluate_model(shipped)
    for key, (op, limit) in EXPECTED.items():
        value = getattr(scores, key)
        assert (value <= limit) if op == "<=" else (value >= limit), (key, value, scores)
    assert all(scores.passes().values()), scores


def test_bad_speed_bucket_is_refused(shipped):
    with pytest.raises(ValueError, match="speed buckets"):
        shipped.generate(torch.zeros(1, 1, 32, 32), torch.tensor([8]))


def test_a_corrupted_weights_file_is_one_clear_error(tmp_path, capsys):
    """`svd-lab mini eval --model DIR` with a damaged safetensors file: a message, no traceback (exit 2)."""
    import shutil

    from svd_lab.cli import main
    from svd_lab.mini.model import DIT_FILE
    from svd_lab.paths import checkpoints_dir

    folder = tmp_path / "mini"
    shutil.copytree(checkpoints_dir() / "mini", folder)
    data = (folder / DIT_FILE).read_bytes()
    (folder / DIT_FILE).write_bytes(data[:8] + b"{not json" + data[17:])
    assert main(["mini", "eval", "--model", str(folder), "--videos", "2"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "is corrupted or not an svd-lab mini model" in err
    (folder / DIT_FILE).write_bytes(data[: len(data) // 2])  # truncated
    assert main(["mini", "eval", "--model", str(folder), "--videos", "2"]) == 2
    assert "is corrupted" in capsys.readouterr().err
