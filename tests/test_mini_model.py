"""The shipped mini world model (checkpoints/mini/): it loads, samples through the SVD sampler, and is scored on
the fixed evaluation videos against the issue's bar. Numbers asserted here are what the shipped weights reach
(see /tmp/notes/issue-6.md and checkpoints/mini/training.json); they fail if the weights or the sampler regress."""

import pytest
import torch

from svd_lab.mini import metrics
from svd_lab.mini.model import DIT_FILE, MiniWorldModel, SamplingSettings, load_model, read_facts
from svd_lab.mini.recipe import SHIPPED_SEED, SHIPPED_STEPS
from svd_lab.paths import project_root

SHIPPED = project_root() / "checkpoints" / "mini"

# What the shipped model must reach on the 64 fixed videos (the bar, where it is met; see the note).
EXPECTED = {
    "first_frame_error_px": ("<=", 1.0),
    "presence": (">=", 0.95),
    "track_ok": (">=", 0.80),
    "speed_correlation": (">=", 0.9),
    "speed_in_bucket": (">=", 0.80),
}

needs_weights = pytest.mark.skipif(not (SHIPPED / DIT_FILE).is_file(), reason="no shipped weights in checkpoints/mini")


@needs_weights
def test_shipped_weights_are_small_and_documented():
    total = sum(p.stat().st_size for p in SHIPPED.glob("*.safetensors"))
    assert total <= 10 * 1024 * 1024
    facts = read_facts(SHIPPED)
    assert facts["kind"] == "svd-lab-mini" and facts["complete"] is True
    assert facts["steps"] == SHIPPED_STEPS and facts["seed"] == SHIPPED_SEED
    assert f"--steps {SHIPPED_STEPS} --seed {SHIPPED_SEED}" in facts["command"]
    script = (project_root() / "tools" / "train_mini.sh").read_text()
    assert f"--steps {SHIPPED_STEPS} --seed {SHIPPED_SEED}" in script


@pytest.fixture(scope="module")
def shipped() -> MiniWorldModel:
    if not (SHIPPED / DIT_FILE).is_file():
        pytest.skip("no shipped weights in checkpoints/mini")
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


def test_shipped_model_meets_the_bar_on_the_fixed_videos(shipped):
    scores = metrics.evaluate_model(shipped)
    for key, (op, limit) in EXPECTED.items():
        value = getattr(scores, key)
        assert (value <= limit) if op == "<=" else (value >= limit), (key, value, scores)


def test_bad_speed_bucket_is_refused(shipped):
    with pytest.raises(ValueError, match="speed buckets"):
        shipped.generate(torch.zeros(1, 1, 32, 32), torch.tensor([8]))
