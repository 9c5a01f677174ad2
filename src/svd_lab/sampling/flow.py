r"""Flow matching (rectified flow): the sampler of today's video DiTs (Wan, HunyuanVideo, SD3), beside EDM.

The math
--------
Data ``x_0`` and noise ``n ~ N(0, I)`` are joined by a straight line in time ``t`` (1 = noise, 0 = data)::

    x_t = (1 - t) x_0 + t n

A network learns the *velocity* along it, ``v(x_t, t) ~ E[n - x_0 | x_t]`` (the regression target is ``n - x_0``).
Sampling integrates ``dx/dt = v(x, t)`` from ``t = 1`` (pure noise, no scaling needed) down to 0 with Euler
steps::

    x_{i+1} = x_i + (t_{i+1} - t_i) v(x_i, t_i)

Compared with EDM (:mod:`svd_lab.sampling.edm`): the noise level runs over [0, 1] instead of [0, sigma_max], the
start is the noise itself, and the model predicts a velocity, not a denoised image. The two are related by
``sigma = t / (1 - t)`` on the scaled state ``x / (1 - t)``. Wan and SD3 *shift* the schedule towards high noise
for large images: ``t' = s t / (1 + (s - 1) t)`` (:func:`flow_times`).

Shapes: ``x`` is ``(B, T, C, H, W)`` as in :mod:`svd_lab.sampling.edm`, or any shape for toy data.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from svd_lab.progress import progress_bar

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def flow_times(num_steps: int, shift: float = 1.0) -> torch.Tensor:
    """``num_steps + 1`` times from 1 down to 0, evenly spaced, then shifted: ``t' = s t / (1 + (s - 1) t)``.

    ``shift`` > 1 spends more steps at high noise (large images need it: their pixels are more redundant, so the
    same t destroys less of them; diffusers' Wan 2.2 tests use 3.0).
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    if not shift > 0:
        raise ValueError(f"shift must be positive, got {shift}")
    t = torch.linspace(1.0, 0.0, num_steps + 1, dtype=torch.float64)
    return (shift * t / (1 + (shift - 1) * t)).to(torch.float32)


def sample_flow(velocity: Velocity, noise: torch.Tensor, times: torch.Tensor,
                callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
                progress: bool = True) -> torch.Tensor:
    """Euler integration of ``dx/dt = velocity(x, t)`` from ``times[0]`` (1: the noise) down to ``times[-1]`` (0).

    ``velocity(x, t)`` gets the state and a 0-d float32 tensor ``t``; ``callback(i, x, t_next)`` runs after each
    step. Returns the sample, shaped like ``noise``.
    """
    times = torch.as_tensor(times).detach().to("cpu", torch.float32)
    if times.ndim != 1 or times.numel() < 2:
        raise ValueError("times must be a 1-d tensor of at least two values, from 1 down to 0")
    if bool((times[1:] >= times[:-1]).any()):
        raise ValueError("times must be strictly decreasing")
    x = noise
    with torch.no_grad(), progress_bar(total=times.numel() - 1, desc="sampling (flow)", enabled=progress) as bar:
        for i in range(times.numel() - 1):
            t, t_next = times[i], times[i + 1]
            x = x + (t_next - t).to(x.dtype) * velocity(x, t)
            if callback is not None:
                callback(i, x, t_next)
            bar.update()
    return x


def gaussian_velocity(data_std: float) -> Velocity:
    """The ideal velocity for data ~ N(0, data_std^2), in closed form (a reference for tests and the primer)::

        v(x, t) = E[n - x_0 | x_t = x] = (t - (1 - t) s^2) x / ((1 - t)^2 s^2 + t^2)

    Its ODE has the exact solution ``x(t) = x(1) sqrt((1 - t)^2 s^2 + t^2)``: samples end with std ``s``.
    """
    var = data_std**2

    def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.to(x.dtype)
        return (t - (1 - t) * var) * x / ((1 - t) ** 2 * var + t**2)

    return velocity
