"""Sampling: one EDM (Karras et al. 2022) sampler shared by Stable Video Diffusion and the mini world model."""

from svd_lab.sampling.edm import (
    Denoiser,
    EDMPreconditioning,
    Preconditioning,
    SamplerStep,
    VScalingPreconditioning,
    edm_preconditioning,
    karras_sigmas,
    linear_guidance,
    sample,
    v_scaling_preconditioning,
)

__all__ = [
    "Denoiser",
    "EDMPreconditioning",
    "Preconditioning",
    "SamplerStep",
    "VScalingPreconditioning",
    "edm_preconditioning",
    "karras_sigmas",
    "linear_guidance",
    "sample",
    "v_scaling_preconditioning",
]
