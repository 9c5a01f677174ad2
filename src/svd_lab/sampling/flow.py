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

Released video DiTs run on a *discrete* version of this schedule that their diffusers pipelines define
(:class:`FlowSchedule`): the noise levels ``sigmas`` (t above, ending at 0) and the ``timesteps`` the network is told
(``1000 t``, rounded down to integers for UniPC). :func:`euler_schedule` and :func:`unipc_schedule` build them
exactly as ``FlowMatchEulerDiscreteScheduler`` and ``UniPCMultistepScheduler(use_flow_sigmas=True)`` do, so
:func:`sample_flow` and :func:`svd_lab.sampling.unipc.sample_unipc` reproduce those pipelines bit for bit.

Shapes: ``x`` is ``(B, T, C, H, W)`` as in :mod:`svd_lab.sampling.edm`, ``(B, C, T, H, W)`` for Wan, or any shape
for toy data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
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


@dataclass(frozen=True)
class FlowSchedule:
    """A discrete flow schedule: ``sigmas`` (N + 1 noise levels t, float32, decreasing to 0) and the N
    ``timesteps`` the network is told at each step (float32 or int64, about ``1000 * sigmas[:-1]``)."""

    sigmas: torch.Tensor
    timesteps: torch.Tensor

    def __post_init__(self):
        if self.sigmas.ndim != 1 or self.timesteps.ndim != 1 or self.sigmas.numel() != self.timesteps.numel() + 1:
            raise ValueError("a flow schedule has N + 1 sigmas and N timesteps")

    def __len__(self) -> int:
        return self.timesteps.numel()


def _shifted(sigmas, shift: float):
    """``s t / (1 + (s - 1) t)``: more of the steps at high noise for ``shift`` > 1."""
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def euler_schedule(num_steps: int, shift: float = 1.0, num_train_timesteps: int = 1000) -> FlowSchedule:
    """The schedule of diffusers' ``FlowMatchEulerDiscreteScheduler(shift=shift)`` (no dynamic shifting).

    A quirk kept on purpose, since released pipelines run it: the timesteps are spaced evenly between the *shifted*
    ends of the training schedule, 1 and ``shifted(1 / num_train_timesteps)``, and then shifted again.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    if not shift > 0:
        raise ValueError(f"shift must be positive, got {shift}")
    train = _shifted(torch.tensor([1.0, 1.0 / num_train_timesteps], dtype=torch.float32), shift)
    sigma_max, sigma_min = train[0].item(), train[1].item()
    steps = np.linspace(sigma_max * num_train_timesteps, sigma_min * num_train_timesteps, num_steps)
    sigmas = torch.from_numpy(_shifted(steps / num_train_timesteps, shift)).to(torch.float32)
    return FlowSchedule(torch.cat([sigmas, torch.zeros(1)]), sigmas * num_train_timesteps)


def unipc_schedule(num_steps: int, shift: float = 1.0, num_train_timesteps: int = 1000) -> FlowSchedule:
    """The schedule of diffusers' ``UniPCMultistepScheduler(use_flow_sigmas=True, flow_shift=shift)``, the default
    of the released Wan pipelines: N + 1 levels evenly from 1 to ``1 / num_train_timesteps``, the last dropped,
    shifted; the first nudged below 1 (UniPC takes ``log(1 - t)``); integer timesteps (``1000 t`` rounded down);
    a final 0 (``final_sigmas_type="zero"``)."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    if not shift > 0:
        raise ValueError(f"shift must be positive, got {shift}")
    sigmas = _shifted(np.linspace(1, 1 / num_train_timesteps, num_steps + 1)[:-1], shift)
    if abs(sigmas[0] - 1) < 1e-6:
        sigmas[0] -= 1e-6
    timesteps = torch.from_numpy(sigmas * num_train_timesteps).to(torch.int64)
    return FlowSchedule(torch.from_numpy(np.append(sigmas, 0.0).astype(np.float32)), timesteps)


def sample_flow(velocity: Velocity, noise: torch.Tensor, times: torch.Tensor | FlowSchedule,
                callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
                progress: bool = True) -> torch.Tensor:
    """Euler integration of ``dx/dt = velocity(x, t)`` from ``times[0]`` (1: the noise) down to ``times[-1]`` (0).

    ``times`` is a 1-d tensor of t (``velocity(x, t)`` then gets a 0-d float32 ``t``) or a :class:`FlowSchedule`
    (``velocity`` gets the schedule's timestep, what a released network expects). ``callback(i, x, t_next)`` runs
    after each step. Returns the sample, shaped like ``noise``.
    """
    model_times = None
    if isinstance(times, FlowSchedule):
        times, model_times = times.sigmas, times.timesteps
    times = torch.as_tensor(times).detach().to("cpu", torch.float32)
    if times.ndim != 1 or times.numel() < 2:
        raise ValueError("times must be a 1-d tensor of at least two values, from 1 down to 0")
    if bool((times[1:] >= times[:-1]).any()):
        raise ValueError("times must be strictly decreasing")
    x = noise
    with torch.no_grad(), progress_bar(total=times.numel() - 1, desc="sampling (flow)", enabled=progress) as bar:
        for i in range(times.numel() - 1):
            t, t_next = times[i], times[i + 1]
            if model_times is None:
                x = x + (t_next - t).to(x.dtype) * velocity(x, t)
            else:  # as diffusers' scheduler: the update in float32, the state back in the network's dtype
                v = velocity(x, model_times[i])
                x = (x.float() + (t_next - t) * v).to(v.dtype)
            if callback is not None:
                callback(i, x, t_next)
            bar.update()
    return x


def sample_flow_heun(velocity: Velocity, noise: torch.Tensor, times: torch.Tensor,
                     callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
                     progress: bool = True) -> torch.Tensor:
    """Heun's second-order method in t: the Euler step, the velocity again where it lands, the step redone with the
    mean of the two (the last step, to t = 0, stays Euler, as EDM's Heun does). Two velocity calls per step."""
    times = torch.as_tensor(times).detach().to("cpu", torch.float32)
    if times.ndim != 1 or times.numel() < 2 or bool((times[1:] >= times[:-1]).any()):
        raise ValueError("times must be a strictly decreasing 1-d tensor of at least two values, from 1 down to 0")
    x = noise
    with torch.no_grad(), progress_bar(total=times.numel() - 1, desc="sampling (flow, Heun)", enabled=progress) as bar:
        for i in range(times.numel() - 1):
            t, t_next = times[i], times[i + 1]
            dt = (t_next - t).to(x.dtype)
            v = velocity(x, t)
            x_euler = x + dt * v
            x = x_euler if float(t_next) == 0 else x + dt * (v + velocity(x_euler, t_next)) / 2
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
