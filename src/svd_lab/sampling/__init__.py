"""Sampling: the EDM (Karras et al. 2022) samplers -- Euler, shared by Stable Video Diffusion and the mini world
model, and Heun's second-order method beside it -- and flow matching (:mod:`svd_lab.sampling.flow`), the sampler of
today's video DiTs."""

from svd_lab.sampling.edm import (
    Denoiser,
    EDMPreconditioning,
    KnownDenoiser,
    Preconditioning,
    SamplerStep,
    VScalingPreconditioning,
    edm_preconditioning,
    karras_sigmas,
    linear_guidance,
    sample,
    sample_heun,
    v_scaling_preconditioning,
)

__all__ = [
    "Denoiser",
    "EDMPreconditioning",
    "KnownDenoiser",
    "Preconditioning",
    "SamplerStep",
    "VScalingPreconditioning",
    "edm_preconditioning",
    "karras_sigmas",
    "linear_guidance",
    "sample",
    "sample_heun",
    "v_scaling_preconditioning",
]
