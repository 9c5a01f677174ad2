r"""The EDM sampler (Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative Models").

One module for every model of the course: Stable Video Diffusion (v-prediction, ``v_scaling_preconditioning``)
and the mini world model (EDM F-prediction, ``edm_preconditioning``) both run through :func:`sample`.

The math
--------
Data ``x_0`` is noised as ``x = x_0 + sigma * n`` with ``n ~ N(0, I)``. A *denoiser* ``D(x; sigma)`` estimates
``x_0``. It wraps a raw network ``F`` with a *preconditioning* -- four scalars that depend on sigma only::

    D(x; sigma) = c_skip(sigma) * x + c_out(sigma) * F(c_in(sigma) * x, c_noise(sigma))

``c_in`` keeps the network's input at unit variance, ``c_skip``/``c_out`` decide how much of ``x`` is passed
through versus predicted, ``c_noise`` is the network's noise-level input.

Sampling integrates the probability-flow ODE ``dx/dsigma = (x - D(x; sigma)) / sigma`` from ``sigma_max`` down to
0 with Euler steps over the Karras schedule ``sigma_0 > sigma_1 > ... > sigma_{N-1} > sigma_N = 0``::

    d_i     = (x_i - D(x_i; sigma_i)) / sigma_i
    x_{i+1} = x_i + d_i * (sigma_{i+1} - sigma_i)

The last step (to sigma = 0) returns ``D(x; sigma_{N-1})`` up to rounding. :func:`sample_heun` corrects each
step with the slope at its end (second order: error ~ step size squared), at two network evaluations per step.

Guidance (classifier-free, per frame, as SVD's ``LinearPredictionGuider``): the network runs once on the batch
``[unconditional, conditional]`` and the raw outputs are mixed per frame ``t`` with scale ``s_t``::

    F = F_u + s_t * (F_c - F_u)

Because ``D`` is affine in ``F`` for a fixed ``x`` and sigma, mixing the raw outputs (what diffusers does) equals
mixing the denoised outputs (what sgm does).

Shapes: ``x`` is ``(B, T, C, H, W)`` -- batch, frames, channels, height, width. A still-image model uses T = 1.

Floating point: every step is computed in float32 tensors (sigmas are 0-d float32 tensors on the CPU), and the
v-scaling preconditioning is written with divisions in the same order as the reference implementations, so our
sampler reproduces diffusers' ``EulerDiscreteScheduler`` bit for bit (see tests/test_svd_equivalence.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from svd_lab.progress import progress_bar

Cond = Mapping[str, Any]


# --------------------------------------------------------------------------------------------- noise schedule
def karras_sigmas(
    num_steps: int,
    sigma_min: float = 0.002,
    sigma_max: float = 700.0,
    rho: float = 7.0,
    compute_dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    r"""Karras et al. (2022) eq. 5 noise levels, plus a trailing zero.

    .. math::
        \sigma_i = \Big(\sigma_{max}^{1/\rho}
                   + \tfrac{i}{N-1}\,(\sigma_{min}^{1/\rho} - \sigma_{max}^{1/\rho})\Big)^\rho,
        \quad i = 0..N-1, \qquad \sigma_N = 0

    rho = 7 spends most steps at low noise, where detail is decided. SVD uses sigma_min 0.002, sigma_max 700.

    Args:
        num_steps: N, the number of denoising steps (>= 1).
        compute_dtype: float64 (default) computes like diffusers (numpy float64, then float32); float32 computes
            like sgm's ``EDMDiscretization`` (torch float32 throughout). They differ by a few float32 ulps
            (relative ~1e-6: the power rho = 7 amplifies the rounding of the float32 ramp).

    Returns:
        float32 tensor of shape (N + 1,), decreasing, ending in 0.
    """
    if int(num_steps) != num_steps or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    if not (0 < sigma_min < sigma_max):
        raise ValueError(f"need 0 < sigma_min < sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}")
    min_inv_rho = sigma_min ** (1 / rho)
    max_inv_rho = sigma_max ** (1 / rho)
    if compute_dtype == torch.float64:
        ramp = np.linspace(0, 1, int(num_steps))
        sigmas = (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho
        sigmas = np.concatenate([sigmas, [0.0]]).astype(np.float32)
        return torch.from_numpy(sigmas)
    if compute_dtype == torch.float32:
        ramp = torch.linspace(0, 1, int(num_steps), dtype=torch.float32)
        sigmas = (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho
        return torch.cat([sigmas, sigmas.new_zeros(1)])
    raise ValueError(f"compute_dtype must be torch.float64 or torch.float32, got {compute_dtype}")


def linear_guidance(num_frames: int, min_scale: float, max_scale: float) -> torch.Tensor:
    """Per-frame guidance scales rising linearly from ``min_scale`` (first frame) to ``max_scale`` (last frame).

    SVD conditions on the first frame, so early frames need little guidance and later frames more.
    Returns a float32 tensor of shape (T,) (``torch.linspace``, like both references).
    """
    if int(num_frames) != num_frames or num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}")
    return torch.linspace(float(min_scale), float(max_scale), int(num_frames), dtype=torch.float32)


# --------------------------------------------------------------------------------------------- preconditionings
def _as_sigma(sigma: torch.Tensor | float) -> torch.Tensor:
    return sigma if isinstance(sigma, torch.Tensor) else torch.tensor(float(sigma), dtype=torch.float32)


class Preconditioning:
    """``sigma -> (c_skip, c_out, c_in, c_noise)`` plus the three places those scalars are used.

    Subclasses define :meth:`__call__`. ``scale_input`` and ``combine`` are written out (not derived from the
    tuple) where a reference implementation's rounding must be matched exactly.
    """

    name = "preconditioning"

    def __call__(self, sigma: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def scale_input(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The network input ``c_in * x``."""
        return x * self(sigma)[2]

    def combine(self, x: torch.Tensor, raw: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The denoised estimate ``c_skip * x + c_out * raw``."""
        c_skip, c_out, _, _ = self(sigma)
        return c_skip * x + c_out * raw

    def noise_level(self, sigma: torch.Tensor) -> torch.Tensor:
        """``c_noise``, what the network is told about the noise level."""
        return self(sigma)[3]

    def initial_noise_scale(self, sigma_max: torch.Tensor) -> torch.Tensor:
        """Standard deviation of the starting point ``x_0 = n * scale`` (``n ~ N(0, I)``)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class VScalingPreconditioning(Preconditioning):
    r"""SVD's ``VScalingWithEDMcNoise``: v-prediction with sigma_data = 1.

    .. math::
        c_{skip} = \frac{1}{\sigma^2+1},\quad c_{out} = \frac{-\sigma}{\sqrt{\sigma^2+1}},\quad
        c_{in} = \frac{1}{\sqrt{\sigma^2+1}},\quad c_{noise} = \tfrac14 \ln\sigma

    The network predicts ``v = (n - sigma * x_0) / sqrt(sigma^2 + 1)`` for unit-variance data. The sampler starts
    at ``n * sqrt(sigma_max^2 + 1)`` (data variance 1 plus noise variance sigma^2), as sgm and diffusers do.
    """

    name = "v_scaling"

    def __call__(self, sigma):
        sigma = _as_sigma(sigma)
        c_skip = 1.0 / (sigma**2 + 1.0)
        c_out = -sigma / (sigma**2 + 1.0) ** 0.5
        c_in = 1.0 / (sigma**2 + 1.0) ** 0.5
        return c_skip, c_out, c_in, self.noise_level(sigma)

    # Divisions, in the reference order, so that results are bitwise equal to diffusers' scheduler.
    def scale_input(self, x, sigma):
        return x / ((sigma**2 + 1) ** 0.5)

    def combine(self, x, raw, sigma):
        return raw * (-sigma / (sigma**2 + 1) ** 0.5) + (x / (sigma**2 + 1))

    def noise_level(self, sigma):
        return 0.25 * _as_sigma(sigma).log()

    def initial_noise_scale(self, sigma_max):
        return (_as_sigma(sigma_max) ** 2 + 1) ** 0.5


class EDMPreconditioning(Preconditioning):
    r"""Karras et al. (2022) Table 1 "EDM" preconditioning (F-prediction) for data of std ``sigma_data``.

    .. math::
        c_{skip} = \frac{\sigma_d^2}{\sigma^2+\sigma_d^2},\quad
        c_{out} = \frac{\sigma\,\sigma_d}{\sqrt{\sigma^2+\sigma_d^2}},
        \quad c_{in} = \frac{1}{\sqrt{\sigma^2+\sigma_d^2}},\quad c_{noise} = \tfrac14 \ln\sigma

    Sampling starts at ``n * sigma_max`` (Karras Algorithm 1).
    """

    name = "edm"

    def __init__(self, sigma_data: float = 0.5):
        if not sigma_data > 0:
            raise ValueError(f"sigma_data must be > 0, got {sigma_data}")
        self.sigma_data = float(sigma_data)

    def __call__(self, sigma):
        sigma = _as_sigma(sigma)
        sd2 = self.sigma_data**2
        total = sigma**2 + sd2
        c_skip = sd2 / total
        c_out = sigma * self.sigma_data / total**0.5
        c_in = 1.0 / total**0.5
        return c_skip, c_out, c_in, 0.25 * sigma.log()

    def initial_noise_scale(self, sigma_max):
        return _as_sigma(sigma_max).clone()

    def __repr__(self) -> str:
        return f"EDMPreconditioning(sigma_data={self.sigma_data})"


v_scaling_preconditioning = VScalingPreconditioning()


def edm_preconditioning(sigma_data: float = 0.5) -> EDMPreconditioning:
    """The EDM preconditioning for data with standard deviation ``sigma_data`` (0.5 for images in [-1, 1])."""
    return EDMPreconditioning(sigma_data)


# --------------------------------------------------------------------------------------------- denoiser
class Denoiser:
    """A raw network plus its preconditioning: ``D(x; sigma) = c_skip x + c_out F(c_in x, c_noise)``.

    ``network(x_in, c_noise, cond) -> raw`` takes ``x_in`` (B, T, C, H, W), ``c_noise`` a 0-d tensor on x's
    device, and ``cond`` a dict of conditioning tensors whose first dimension is the batch; it returns a tensor
    shaped like ``x_in`` (it may have a different dtype, e.g. fp16; see :meth:`raw`).
    """

    def __init__(self, network: Callable[[torch.Tensor, torch.Tensor, Cond], torch.Tensor],
                 precondition: Preconditioning):
        self.network = network
        self.precondition = precondition

    def raw(self, x: torch.Tensor, sigma: torch.Tensor, cond: Cond) -> torch.Tensor:
        """``F(c_in x, c_noise)`` -- the raw network output, before combining with x."""
        sigma = _as_sigma(sigma)
        c_noise = self.precondition.noise_level(sigma).to(x.device)
        return self.network(self.precondition.scale_input(x, sigma), c_noise, cond)

    def combine(self, x: torch.Tensor, raw: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self.precondition.combine(x, raw, _as_sigma(sigma))

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor | float, cond: Cond) -> torch.Tensor:
        """The denoised estimate of x_0, shaped like x."""
        sigma = _as_sigma(sigma)
        return self.combine(x, self.raw(x, sigma, cond), sigma)


class KnownDenoiser(Denoiser):
    """A :class:`Denoiser` whose ``D(x; sigma)`` is known in closed form (the ideal denoiser of toy data), so the
    samplers run on it unchanged: its raw output is ``(D - c_skip x) / c_out``, which ``combine`` turns back into
    ``D`` (up to rounding). ``denoise(x, sigma)``: x shaped like the sampler state, sigma a 0-d tensor."""

    def __init__(self, denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 precondition: Preconditioning | None = None):
        super().__init__(network=None, precondition=precondition or edm_preconditioning())
        self.denoise = denoise

    def raw(self, x: torch.Tensor, sigma: torch.Tensor, cond: Cond) -> torch.Tensor:
        sigma = _as_sigma(sigma)
        c_skip, c_out, _, _ = self.precondition(sigma)
        return (self.denoise(x, sigma) - c_skip * x) / c_out


# --------------------------------------------------------------------------------------------- sampler
@dataclass
class SamplerStep:
    """What a per-step callback receives (after the step was taken).

    ``x`` is the new state at ``sigma_next``; ``denoised`` is D(x; sigma), the model's current guess of the clean
    sample -- what notebooks show to visualise denoising. Both are (B, T, C, H, W).
    """

    index: int
    num_steps: int
    sigma: float
    sigma_next: float
    x: torch.Tensor
    denoised: torch.Tensor


def _concat_conditions(uncond: Cond, cond: Cond) -> dict[str, Any]:
    """Batch ``[uncond, cond]`` along dim 0 for every tensor entry; other entries are taken from ``cond``."""
    batched: dict[str, Any] = {}
    for key, value in cond.items():
        if isinstance(value, torch.Tensor):
            if key not in uncond:
                raise KeyError(f"uncond_builder returned no {key!r} entry")
            batched[key] = torch.cat([uncond[key], value], dim=0)
        else:
            batched[key] = value
    return batched


def _checked(noise: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    if noise.ndim != 5:
        raise ValueError(f"noise must be shaped (B, T, C, H, W), got {tuple(noise.shape)}")
    sigmas = torch.as_tensor(sigmas).detach().to("cpu", torch.float32)
    if sigmas.ndim != 1 or sigmas.numel() < 2:
        raise ValueError("sigmas must be a 1-d tensor of at least two noise levels (the last is usually 0)")
    if bool((sigmas[1:] >= sigmas[:-1]).any()):
        raise ValueError("sigmas must be strictly decreasing")
    return sigmas


def guided(denoiser: Denoiser, noise: torch.Tensor, cond: Cond, uncond_builder: Callable[[Cond], Cond] | None = None,
           guidance: torch.Tensor | None = None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``(x, sigma) -> D(x; sigma)`` with per-frame classifier-free guidance mixed on the raw outputs (see
    :func:`sample` for the rule); ``noise`` gives the frame count, device and dtype."""
    use_guidance = guidance is not None and bool((torch.as_tensor(guidance) != 1.0).any())
    if use_guidance:
        if uncond_builder is None:
            raise ValueError("guidance needs an uncond_builder (cond -> unconditional inputs)")
        guidance = torch.as_tensor(guidance, dtype=torch.float32)
        if guidance.shape != (noise.shape[1],):
            raise ValueError(f"guidance must have one scale per frame: shape ({noise.shape[1]},), "
                             f"got {tuple(guidance.shape)}")
        # (T,) -> (1, T, 1, 1, 1): broadcast over batch, channels and pixels.
        guidance = guidance.to(noise.device, noise.dtype).view(1, -1, 1, 1, 1)
        network_cond = _concat_conditions(uncond_builder(cond), cond)
    else:
        network_cond = dict(cond)

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if use_guidance:
            raw_uncond, raw_cond = denoiser.raw(torch.cat([x, x]), sigma, network_cond).chunk(2)
            raw = raw_uncond + guidance * (raw_cond - raw_uncond)
        else:
            raw = denoiser.raw(x, sigma, network_cond)
        return denoiser.combine(x, raw.to(x.dtype), sigma)

    return denoise


def sample(
    denoiser: Denoiser,
    noise: torch.Tensor,
    sigmas: torch.Tensor,
    cond: Cond,
    uncond_builder: Callable[[Cond], Cond] | None = None,
    guidance: torch.Tensor | None = None,
    callback: Callable[[SamplerStep], None] | None = None,
    progress: bool = True,
) -> torch.Tensor:
    r"""Euler EDM sampling (Karras et al. 2022, Algorithm 1 without the stochastic churn).

    Args:
        denoiser: network + preconditioning.
        noise: standard normal noise ``n`` (B, T, C, H, W); the start is
            ``x_0 = n * precondition.initial_noise_scale(sigmas[0])``. The dtype of ``noise`` is the dtype of the
            sampler state (keep it float32; a half-precision network is given float32 inputs to cast itself).
        sigmas: decreasing noise levels ending in 0, e.g. :func:`karras_sigmas` (N + 1,).
        cond: conditioning dict passed to the network (tensors batched like ``noise``).
        uncond_builder: ``cond -> uncond`` (for SVD: zeroed image embedding and image latent). Needed for guidance.
        guidance: per-frame scales (T,), e.g. :func:`linear_guidance`. With guidance (and an uncond_builder) every
            step runs the network once on ``[uncond, cond]`` batched along dim 0 and uses
            ``F = F_u + s_t (F_c - F_u)``. ``None``, or all scales exactly 1, runs the conditional branch only
            (``F_u + 1 * (F_c - F_u) = F_c`` exactly in real arithmetic). **The rule: guidance runs whenever any
            scale differs from 1**, scales below 1 included (they move towards the unconditional output).
            diffusers' pipeline decides differently -- it guides only when ``max_guidance_scale > 1``, so it
            ignores scales below 1 when the maximum is 1 or less, and fails for ``min > 1 >= max`` -- the two
            agree whenever ``max_guidance > 1`` (tests/test_svd_equivalence.py).
        callback: called with a :class:`SamplerStep` after every step.
        progress: show a tqdm progress bar (also switched off by the environment variable TQDM_DISABLE=1).

    Returns:
        The sample at sigma = 0, same shape and dtype as ``noise``.
    """
    sigmas = _checked(noise, sigmas)
    denoise = guided(denoiser, noise, cond, uncond_builder, guidance)
    x = noise * denoiser.precondition.initial_noise_scale(sigmas[0]).to(noise.device)
    num_steps = sigmas.numel() - 1
    with torch.no_grad(), progress_bar(total=num_steps, desc="sampling", enabled=progress) as bar:
        for i in range(num_steps):
            sigma, sigma_next = sigmas[i], sigmas[i + 1]
            denoised = denoise(x, sigma)
            derivative = (x - denoised) / sigma
            x = x + derivative * (sigma_next - sigma)
            if callback is not None:
                callback(SamplerStep(i, num_steps, float(sigma), float(sigma_next), x, denoised))
            bar.update()
    return x


def sample_heun(
    denoiser: Denoiser,
    noise: torch.Tensor,
    sigmas: torch.Tensor,
    cond: Cond,
    uncond_builder: Callable[[Cond], Cond] | None = None,
    guidance: torch.Tensor | None = None,
    callback: Callable[[SamplerStep], None] | None = None,
    progress: bool = True,
) -> torch.Tensor:
    r"""Heun's second-order EDM sampler (Karras et al. 2022, Algorithm 1, deterministic); arguments as :func:`sample`.

    Each step takes the Euler step, evaluates the slope again where it landed, and redoes the step with the mean
    of the two slopes (the last step, to sigma = 0, stays Euler: the slope there is undefined)::

        d_i  = (x_i - D(x_i; sigma_i)) / sigma_i
        x'   = x_i + d_i (sigma_{i+1} - sigma_i)
        d'   = (x' - D(x'; sigma_{i+1})) / sigma_{i+1}
        x_{i+1} = x_i + (d_i + d') / 2 * (sigma_{i+1} - sigma_i)

    Two network evaluations per step (one on the last): the error falls with the square of the step size instead
    of linearly, so it beats Euler at equal network evaluations once the steps are small enough.
    """
    sigmas = _checked(noise, sigmas)
    denoise = guided(denoiser, noise, cond, uncond_builder, guidance)
    x = noise * denoiser.precondition.initial_noise_scale(sigmas[0]).to(noise.device)
    num_steps = sigmas.numel() - 1
    with torch.no_grad(), progress_bar(total=num_steps, desc="sampling (Heun)", enabled=progress) as bar:
        for i in range(num_steps):
            sigma, sigma_next = sigmas[i], sigmas[i + 1]
            denoised = denoise(x, sigma)
            derivative = (x - denoised) / sigma
            euler = x + derivative * (sigma_next - sigma)
            if sigma_next > 0:
                corrected = (euler - denoise(euler, sigma_next)) / sigma_next
                x = x + (derivative + corrected) / 2 * (sigma_next - sigma)
            else:
                x = euler
            if callback is not None:
                callback(SamplerStep(i, num_steps, float(sigma), float(sigma_next), x, denoised))
            bar.update()
    return x
