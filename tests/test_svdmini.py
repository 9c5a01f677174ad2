"""The tiny SVD's data and metrics (issue 15, in progress): clips are deterministic with known ground truth, and the
motion measurements tell a real pan from a static copy. Training and shipped weights are not there yet."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("skimage", reason="the training photos come from scikit-image (pip install 'svd-lab[train]')")

from svd_lab.svdmini import data, metrics


def test_clips_are_deterministic_and_follow_the_speed_rule():
    a = data.generate(3, seed=5, motion_bucket_id=200, fps_id=6)
    b = data.generate(3, seed=5, motion_bucket_id=200, fps_id=6)
    assert torch.equal(a.frames, b.frames) and a.photo == b.photo
    assert not torch.equal(a.frames, data.generate(3, seed=6, motion_bucket_id=200, fps_id=6).frames)
    assert a.frames.shape == (3, data.FRAMES, 3, data.SIZE, data.SIZE)
    assert 0 <= float(a.frames.min()) and float(a.frames.max()) <= 1
    # step = SPEED_AT_255 * bucket / 255 / fps * width, content moving left
    assert torch.allclose(a.step, torch.full((3,), data.SPEED_AT_255 * 200 / 255 / 7 * data.SIZE))
    assert float(data.speed_to_step(255, 5)) == pytest.approx(2 * float(data.speed_to_step(255, 11)))
    assert a.added_time_ids().tolist()[0][:2] == [6.0, 200.0]


def test_the_course_assets_are_held_out():
    assert set(data.HELD_OUT_ASSETS) == {"rocket", "astronaut", "coffee"}
    assert not set(data.HELD_OUT_ASSETS) & set(data.PHOTOS)


def test_measured_displacement_matches_the_ground_truth():
    clips = data.generate(4, seed=3, motion_bucket_id=200, fps_id=6)
    for i in range(4):
        measured = metrics.per_frame_displacement(clips.frames[i])
        assert measured == pytest.approx(float(clips.step[i]), abs=0.1)
        static = clips.frames[i, :1].repeat(data.FRAMES, 1, 1, 1)
        assert abs(metrics.per_frame_displacement(static)) < 0.05
        # the warp error against the true motion is small for the real clip, large for a static copy
        assert metrics.warp_error(clips.frames[i], float(clips.step[i])) < 0.5 * metrics.warp_error(
            static, float(clips.step[i]))


def test_spearman_with_ties():
    assert metrics.spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert metrics.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert metrics.spearman([1, 2, 3, 3], [1, 2, 2, 5]) == pytest.approx(0.8333, abs=1e-3)
