r"""UniPC (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of Diffusion Models")
for flow models: the solver the released Wan pipelines use by default.

The idea
--------
Write the flow state as ``x_t = alpha_t x_0 + sigma_t n`` with ``alpha_t = 1 - t`` and ``sigma_t = t`` and turn the
network's velocity into a *data prediction* ``x0(x_t) = x_t - t v(x_t, t)``. In the half-log-SNR
``lambda = log(alpha / sigma)`` the ODE has an exact linear part, so one step from ``s`` to ``t`` (``h = lambda_t -
lambda_s``) is::

    x_t = (sigma_t / sigma_s) x_s - alpha_t (e^{-h} - 1) x0_s  -  alpha_t B(h) sum_k rho_k D_k

The first two terms are DPM-Solver's first-order step (DDIM); ``D_k = (x0_{s_k} - x0_s) / r_k`` are differences
with earlier data predictions (``r_k`` their distance in lambda, in units of h) and the ``rho`` come from a small
linear system that matches the Taylor expansion to the order used (``B(h) = e^{-h} - 1``: the "bh2" variant).
That is the **predictor** (UniP). After the network is evaluated at the new point, the **corrector** (UniC) redoes
the same step with the new prediction included, raising the order by one at no extra network call. The orders
warm up (first step order 1) and drop at the end (``lower_order_final``: the last step is first order, straight to
the data prediction at t = 0).

Equal, bit for bit, to diffusers' ``UniPCMultistepScheduler(use_flow_sigmas=True, prediction_type=
"flow_prediction", solver_type="bh2", predict_x0=True, lower_order_final=True)`` on the schedule
:func:`svd_lab.sampling.flow.unipc_schedule` (``tests/test_wan.py`` checks it).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from svd_lab.progress import progress_bar
from svd_lab.sampling.flow import FlowSchedule, Velocity


def _alpha_sigma(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return 1 - t, t


def _lambda(t: torch.Tensor) -> torch.Tensor:
    """Half log signal-to-noise ratio ``log(alpha_t) - log(sigma_t)`` (+inf at t = 0)."""
    alpha, sigma = _alpha_sigma(t)
    return torch.log(alpha) - torch.log(sigma)


def _coefficients(h: torch.Tensor, rks: list[torch.Tensor], order: int):
    """The terms of one bh2 step of ``order``: ``h_phi_1 = e^{-h} - 1``, ``B(h)``, and the system ``R rho = b``.

    ``R`` rows are ``r^0, r^1, ...`` over the earlier points' distances ``rks`` plus 1 for the current one; ``b_k``
    follow the recursion of the phi functions ``phi_{k+1}(h) = (phi_k(h) - 1/k!) / h``.
    """
    hh = -h                                    # data prediction: the exponent is -h
    h_phi_1 = torch.expm1(hh)
    h_phi_k = h_phi_1 / hh - 1
    b_h = torch.expm1(hh)
    r = torch.stack([*rks, torch.ones(())])
    rows, b, factorial = [], [], 1
    for k in range(1, order + 1):
        rows.append(torch.pow(r, k - 1))
        b.append(h_phi_k * factorial / b_h)
        factorial *= k + 1
        h_phi_k = h_phi_k / hh - 1 / factorial
    return h_phi_1, b_h, torch.stack(rows), torch.stack(b)


def _step(x: torch.Tensor, s: int, t: int, sigmas: torch.Tensor, x0s: list[tuple[int, torch.Tensor]],
          order: int, corrector_x0: torch.Tensor | None = None) -> torch.Tensor:
    """One UniPC step from level index ``s`` (state ``x``) to ``t``.

    ``x0s``: the data predictions so far, newest last, as (level index, prediction). Predictor (``corrector_x0``
    None): uses the newest ``order`` of them. Corrector: ``corrector_x0`` is the prediction at ``t`` and the
    newest ``order`` predictions up to ``s`` are the history.
    """
    alpha_t, sigma_t = _alpha_sigma(sigmas[t])
    _, sigma_s = _alpha_sigma(sigmas[s])
    lambda_s = _lambda(sigmas[s])
    h = _lambda(sigmas[t]) - lambda_s
    m0 = x0s[-1][1]
    rks, differences = [], []
    for index, earlier in reversed(x0s[-order:-1]):        # the earlier points, newest first
        rk = (_lambda(sigmas[index]) - lambda_s) / h
        rks.append(rk)
        differences.append((earlier - m0) / rk)
    h_phi_1, b_h, rows, b = _coefficients(h, rks, order)
    x_t = sigma_t / sigma_s * x - alpha_t * h_phi_1 * m0    # the first-order (DDIM) step
    history = torch.stack(differences, dim=1) if differences else None
    if corrector_x0 is None:
        if history is None:
            return x_t.to(x.dtype)
        # order 2 has the closed form rho = 1/2; higher orders solve the system without its last row and column
        rho = torch.full((1,), 0.5, dtype=x.dtype) if order == 2 else torch.linalg.solve(rows[:-1, :-1], b[:-1]).to(
            x.dtype)
        return (x_t - alpha_t * b_h * torch.einsum("k,bkc...->bc...", rho, history)).to(x.dtype)
    rho = torch.full((1,), 0.5, dtype=x.dtype) if order == 1 else torch.linalg.solve(rows, b).to(x.dtype)
    correction = torch.einsum("k,bkc...->bc...", rho[:-1], history) if history is not None else 0
    return (x_t - alpha_t * b_h * (correction + rho[-1] * (corrector_x0 - m0))).to(x.dtype)


def sample_unipc(velocity: Velocity, noise: torch.Tensor, schedule: FlowSchedule, order: int = 2,
                 callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
                 progress: bool = True) -> torch.Tensor:
    """UniPC-``order`` (bh2, predictor-corrector) over ``schedule``; one ``velocity(x, timestep)`` call per step.

    ``noise``: the state at ``schedule.sigmas[0]`` (any shape with a leading batch dimension). Returns the sample.
    """
    if order < 1:
        raise ValueError(f"order must be at least 1, got {order}")
    sigmas, n = schedule.sigmas.detach().to("cpu", torch.float32), len(schedule)
    x, x0s, previous, used = noise, [], None, 0
    with torch.no_grad(), progress_bar(total=n, desc="sampling (UniPC)", enabled=progress) as bar:
        for i in range(n):
            v = velocity(x, schedule.timesteps[i])
            x0 = x - sigmas[i] * v                              # the data prediction of a flow model
            if previous is not None:                            # UniC: redo the last step with x0 included
                x = _step(previous, i - 1, i, sigmas, x0s, used, corrector_x0=x0)
            x0s = [*x0s[-(order - 1):], (i, x0)] if order > 1 else [(i, x0)]
            used = min(order, n - i, len(x0s))                 # warm-up, and first order for the last step
            previous = x
            x = _step(x, i, i + 1, sigmas, x0s, used)          # UniP
            if callback is not None:
                callback(i, x, sigmas[i + 1])
            bar.update()
    return x

