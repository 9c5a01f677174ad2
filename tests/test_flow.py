"""Flow matching (svd_lab.sampling.flow): the shifted schedule, and Euler in t against the exact solution of the
ideal velocity's ODE on Gaussian data."""

from __future__ import annotations

import itertools

import pytest
import torch

from svd_lab.sampling import flow


def test_times_run_from_one_to_zero_and_shift_towards_noise():
    plain, shifted = flow.flow_times(8), flow.flow_times(8, shift=3.0)
    assert plain[0] == 1 and plain[-1] == 0 and len(plain) == 9
    assert shifted[0] == 1 and shifted[-1] == 0
    assert bool((shifted[1:-1] > plain[1:-1]).all())           # every inner step at a higher noise level
    assert float(shifted[4]) == pytest.approx(3 * 0.5 / (1 + 2 * 0.5))
    with pytest.raises(ValueError, match="at least 1"):
        flow.flow_times(0)
    with pytest.raises(ValueError, match="positive"):
        flow.flow_times(4, shift=0)


def test_euler_on_the_ideal_velocity_converges_to_the_data_spread():
    """The ODE is linear, so Euler multiplies the noise by a gain (computed here step by step, the reference); the
    exact gain is the data's std s. Euler's error halves when the steps double (first order)."""
    s = 0.5
    velocity = flow.gaussian_velocity(s)
    noise = torch.randn(20000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def gain(times):
        g = torch.tensor(1.0, dtype=torch.float64)
        for t, t_next in zip(times[:-1].double(), times[1:].double()):
            g = g + (t_next - t) * (t - (1 - t) * s**2) * g / ((1 - t) ** 2 * s**2 + t**2)
        return float(g)

    times = flow.flow_times(16)
    out = flow.sample_flow(velocity, noise, times, progress=False)
    torch.testing.assert_close(out, noise * gain(times), rtol=1e-6, atol=0)
    errors = [abs(gain(flow.flow_times(n)) - s) for n in (8, 16, 32, 64)]
    assert all(0.4 < b / a < 0.6 for a, b in itertools.pairwise(errors)), errors   # first order
    assert out.std().item() == pytest.approx(gain(times), rel=0.02)
    assert abs(gain(flow.flow_times(256)) - s) < 0.004                           # measured 0.0029


def test_bad_times_and_the_callback():
    seen = []
    flow.sample_flow(lambda x, t: torch.zeros_like(x), torch.ones(3), flow.flow_times(4),
                     callback=lambda i, x, t: seen.append((i, float(t))), progress=False)
    assert [i for i, _ in seen] == [0, 1, 2, 3] and seen[-1][1] == 0.0
    with pytest.raises(ValueError, match="strictly decreasing"):
        flow.sample_flow(lambda x, t: x, torch.ones(2), torch.tensor([0.0, 1.0]), progress=False)


def test_heun_in_t_is_second_order_on_the_ideal_velocity():
    """Heun's error on the Gaussian flow falls about 4x when the steps double (Euler's: 2x)."""
    s = 0.5
    velocity = flow.gaussian_velocity(s)
    noise = torch.randn(2000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    errors = [(flow.sample_flow_heun(velocity, noise, flow.flow_times(n), progress=False) - noise * s).abs().max()
              .item() for n in (16, 32, 64)]
    assert all(2.8 < a / b < 5.5 for a, b in itertools.pairwise(errors)), errors
    euler = (flow.sample_flow(velocity, noise, flow.flow_times(32), progress=False) - noise * s).abs().max().item()
    assert errors[1] < euler / 4, (errors, euler)
