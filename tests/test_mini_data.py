"""The bouncing-ball generator and the physics metrics of the mini world model."""

import torch

from svd_lab.mini import data, metrics


def test_shapes_range_and_determinism():
    a = data.generate(5, seed=3)
    b = data.generate(5, seed=3)
    c = data.generate(5, seed=4)
    assert a.frames.shape == (5, data.FRAMES, 1, data.SIZE, data.SIZE)
    assert a.frames.dtype == torch.float32
    assert a.frames.min() >= 0 and a.frames.max() <= 1
    assert torch.equal(a.frames, b.frames) and torch.equal(a.positions, b.positions)
    assert not torch.equal(a.frames, c.frames)


def test_constant_velocity_and_elastic_bounces():
    v = data.generate(200, seed=1)
    low, high = data.RADIUS, data.SIZE - data.RADIUS
    pos = v.positions[:, :, 0]  # (B, T, 2)
    assert pos.min() >= low - 1e-4 and pos.max() <= high + 1e-4
    speeds = v.speed
    assert speeds.min() >= data.MIN_SPEED and speeds.max() <= data.MAX_SPEED
    # between bounces the displacement per frame equals the velocity; a bounce flips one component's sign
    step = pos[:, 1:] - pos[:, :-1]
    per_frame_speed = step.norm(dim=-1)
    bounced = ((pos[:, 1:] - low).abs() < 2.6) | ((high - pos[:, 1:]).abs() < 2.6)
    free = ~(bounced.any(-1) | ((pos[:, :-1] - low).abs() < 2.6).any(-1) | ((high - pos[:, :-1]).abs() < 2.6).any(-1))
    assert free.sum() > 100
    assert torch.allclose(per_frame_speed[free], speeds[:, None].expand_as(per_frame_speed)[free], atol=1e-4)
    # |v| per axis is conserved through bounces: every |step| component <= |v| component
    assert (step.abs() <= v.velocities[:, None, 0].abs() + 1e-4).all()


def test_reflect_into_is_a_triangle_wave():
    x = torch.tensor([3.0, 10.0, 29.0, 30.0, 31.0, 55.0, 56.0, 2.0, -10.0])
    y = data.reflect_into(x, 3.0, 29.0)
    assert torch.allclose(y, torch.tensor([3.0, 10.0, 29.0, 28.0, 27.0, 3.0, 4.0, 4.0, 16.0]))


def test_ball_is_antialiased_disc_with_centroid_at_centre():
    img = data.render_balls(torch.tensor([[[10.3, 20.7]]]))[0]
    assert img.max() == 1.0
    soft = ((img > 0) & (img < 1)).sum()
    assert soft > 10  # an antialiased edge, not a hard disc
    area = (img > 0.5).sum().item()
    assert abs(area - 3.14159 * data.RADIUS**2) < 6
    cents, _, _, _ = metrics.detect(img[None, None], img[None])
    assert torch.allclose(cents[0, 0], torch.tensor([10.3, 20.7]), atol=0.05)


def test_speed_buckets_requested_are_respected():
    buckets = torch.arange(16) % 8
    v = data.generate(16, seed=5, speed_bucket=buckets)
    assert torch.equal(v.speed_bucket, buckets)
    assert torch.equal(data.speed_to_bucket(v.speed), buckets)
    lo, hi = data.bucket_range(7)
    assert (lo, hi) == (2.25, 2.5)


def test_options_multi_ball_and_gravity():
    v = data.generate(4, seed=2, num_balls=3, gravity=0.2)
    assert v.positions.shape == (4, data.FRAMES, 3, 2)
    assert v.frames.shape == (4, data.FRAMES, 1, data.SIZE, data.SIZE)
    low, high = data.RADIUS, data.SIZE - data.RADIUS
    assert v.positions.min() >= low - 1e-3 and v.positions.max() <= high + 1e-3


def test_bad_arguments_are_refused():
    import pytest

    with pytest.raises(ValueError, match="num_videos"):
        data.generate(0)
    with pytest.raises(ValueError, match="speed buckets"):
        data.generate(2, speed_bucket=torch.tensor([0, 8]))


def test_metrics_on_real_static_and_noise():
    ref = metrics.eval_set(32)
    real = metrics.score_videos(ref.frames, ref.frames[:, 0], ref.speed_bucket)
    assert all(real.passes().values()), real
    assert real.first_frame_error_px < 0.01 and real.track_residual_px < 0.2
    static = metrics.score_videos(metrics.static_copy(ref), ref.frames[:, 0], ref.speed_bucket)
    assert static.track_ok == 1.0  # passes (c) trivially ...
    assert static.speed_correlation == 0.0 and static.speed_in_bucket == 0.0  # ... (d) and (e) catch it
    noise = torch.rand_like(ref.frames)
    bad = metrics.score_videos(noise, ref.frames[:, 0], ref.speed_bucket)
    assert not any(bad.passes().values())


def test_fit_recovers_velocity_through_bounces():
    ref = metrics.eval_set(16)
    cents, _, ref_c, _ = metrics.detect(ref.frames[:, :, 0], ref.frames[:, 0, 0])
    vel, res = metrics.fit_constant_velocity(ref_c, cents, torch.ones(16, data.FRAMES, dtype=torch.bool))
    assert (res < 0.2).all()
    assert torch.allclose(vel.norm(dim=-1), ref.speed, atol=0.05)
