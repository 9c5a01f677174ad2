"""The mini world model: autoencoder + video DiT, sampled with the SVD sampler; saving and loading as safetensors.

``MiniWorldModel.generate`` is image-to-video exactly as SVD does it, in miniature: encode the conditioning frame,
start from noise in latent space, run :func:`svd_lab.sampling.edm.sample` (Euler EDM over a Karras schedule) with
the EDM preconditioning (sigma_data 0.5) and a per-frame guidance ramp on the speed bucket, decode with the
autoencoder.

Files (one folder, default ``checkpoints/mini/``): ``autoencoder.safetensors`` and ``dit.safetensors``; each stores
its config as JSON in the safetensors metadata (key ``config``), plus ``kind`` and training facts.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from svd_lab.errors import CheckpointLoadError
from svd_lab.mini import data
from svd_lab.mini.autoencoder import AutoencoderConfig, FrameAutoencoder
from svd_lab.mini.dit import DiTConfig, VideoDiT

AUTOENCODER_FILE = "autoencoder.safetensors"
DIT_FILE = "dit.safetensors"
SIGMA_DATA = 0.5


@dataclass
class SamplingSettings:
    """Defaults used by ``svd-lab mini eval`` / ``sample`` and the tests (the shipped weights are judged with them)."""

    steps: int = 20
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    #: guidance on the speed bucket, rising over frames like SVD's (frame 0 is pinned by the first-frame condition)
    guidance_min: float = 1.0
    guidance_max: float = 2.0
    #: "euler" (first order) or "heun" (second order: two network calls per step but the last)
    solver: str = "euler"


def flow_c_noise(t: torch.Tensor) -> torch.Tensor:
    """What a flow-trained mini DiT is told about the noise level ``t``: ``ln(t / (1 - t)) / 4``, EDM's
    ``c_noise = ln(sigma) / 4`` at the equivalent ``sigma = t / (1 - t)`` (so both objectives feed the same
    embedding the same range). t is kept inside [1e-5, 1 - 1e-3]: the sampler starts at t = 1 (sigma infinite)."""
    t = t.float().clamp(1e-5, 1 - 1e-3)
    return torch.log(t / (1 - t)) / 4


class MiniWorldModel(torch.nn.Module):
    """Autoencoder + video DiT. ``generate(first_frames, speed_buckets) -> videos``.

    What the DiT diffuses (``residual_scale``):

    * ``None``: the latent video ``z`` itself (what SVD does);
    * a number ``k``: the *change from the first frame*, ``y = k (z - z_first)`` for every frame. Frame 0 of ``y``
      is exactly zero and the other frames hold only what moved (the ball leaving its start, arriving elsewhere),
      so the DiT spends its capacity on motion. ``k`` rescales ``y`` to the standard deviation 0.5 that the EDM
      preconditioning assumes (``sigma_data``).
    """

    def __init__(self, autoencoder: FrameAutoencoder, dit: VideoDiT, residual_scale: float | None = None,
                 objective: str = "edm"):
        super().__init__()
        self.autoencoder, self.dit = autoencoder, dit
        self.residual_scale = residual_scale
        self.objective = objective      # "edm" (a denoiser) or "flow" (a velocity): how the DiT was trained

    def to_diffusion_space(self, latents: torch.Tensor, first_latent: torch.Tensor) -> torch.Tensor:
        """Latent video (B, T, C, h, w) -> what the DiT models (the latents, or the scaled change from frame 0)."""
        if self.residual_scale is None:
            return latents
        return (latents - first_latent) * self.residual_scale

    def from_diffusion_space(self, y: torch.Tensor, first_latent: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_diffusion_space`."""
        if self.residual_scale is None:
            return y
        return first_latent + y / self.residual_scale

    @property
    def frames(self) -> int:
        return self.dit.config.frames

    def network(self, x_in: torch.Tensor, c_noise: torch.Tensor, cond: dict) -> torch.Tensor:
        """The sampler's raw network: the DiT under bf16 autocast on CPU, float32 out. Always bf16 (unlike training,
        see :func:`svd_lab.training.cpu_has_native_bf16`), so sampled videos and their metrics are the same kind
        on every CPU; emulated bf16 costs little in inference (the 64-video evaluation: 6.7 s on an AVX2-only CPU)."""
        with torch.autocast("cpu", torch.bfloat16, enabled=x_in.device.type == "cpu"):
            return self.dit(x_in, c_noise, cond).float()

    @torch.no_grad()
    def generate(
        self,
        first_frames: torch.Tensor,
        speed_buckets: torch.Tensor,
        seed: int = 0,
        settings: SamplingSettings | None = None,
        callback=None,
        progress: bool = False,
    ) -> torch.Tensor:
        """Image-to-video.

        Args:
            first_frames: (B, 1, H, W) or (B, 1, 1, H, W) intensities in [0, 1] (a ball on black).
            speed_buckets: (B,) int64 in 0..7, the requested speed bucket (motion micro-condition).
            seed: seeds the initial noise (same seed, same videos).
        Returns:
            (B, T, 1, H, W) intensities in [0, 1].
        """
        from svd_lab.sampling.edm import (
            Denoiser,
            edm_preconditioning,
            karras_sigmas,
            linear_guidance,
            sample,
            sample_heun,
        )

        s = settings or SamplingSettings()
        if first_frames.ndim == 4:
            first_frames = first_frames[:, None]
        b = first_frames.shape[0]
        speed_buckets = torch.as_tensor(speed_buckets, dtype=torch.long).reshape(-1)
        if speed_buckets.shape != (b,):
            raise ValueError(f"need one speed bucket per first frame: got {speed_buckets.numel()} for {b} frames")
        if speed_buckets.min() < 0 or speed_buckets.max() >= self.dit.config.num_classes:
            raise ValueError(f"speed buckets must be in 0..{self.dit.config.num_classes - 1}")
        self.eval()
        first_latent = self.autoencoder.encode(data.to_model_space(first_frames.float()))  # (B, 1, C, h, w)
        cfg = self.dit.config
        gen = torch.Generator().manual_seed(int(seed))
        noise = torch.randn(b, cfg.frames, cfg.in_channels, cfg.height, cfg.width, generator=gen)
        cond = {"first_frame": first_latent, "labels": speed_buckets}

        def uncond_builder(c: dict) -> dict:
            # Guidance on the motion condition only: the unconditional branch keeps the first frame.
            return {"first_frame": c["first_frame"], "labels": self.dit.null_labels(c["labels"].shape[0])}

        guidance = linear_guidance(cfg.frames, s.guidance_min, s.guidance_max)
        if s.solver not in ("euler", "heun"):
            raise ValueError(f"unknown solver {s.solver!r}: euler or heun")
        if self.objective == "flow":
            latents = self._sample_flow(noise, cond, uncond_builder(cond), guidance, s, callback, progress)
        else:
            denoiser = Denoiser(self.network, edm_preconditioning(SIGMA_DATA))
            sigmas = karras_sigmas(s.steps, s.sigma_min, s.sigma_max)
            run = sample_heun if s.solver == "heun" else sample
            latents = run(denoiser, noise, sigmas, cond, uncond_builder=uncond_builder, guidance=guidance,
                          callback=callback, progress=progress)
        return data.from_model_space(self.autoencoder.decode(self.from_diffusion_space(latents, first_latent)))


    def _sample_flow(self, noise, cond, uncond, guidance, s: SamplingSettings, callback, progress):
        """Flow sampling from t = 1 (the noise) to 0, guidance on the velocity per frame like SVD's."""
        from svd_lab.sampling.flow import flow_times, sample_flow, sample_flow_heun

        w = guidance.view(1, -1, 1, 1, 1).to(noise)

        def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            c = flow_c_noise(t.reshape(1)).expand(x.shape[0])
            conditional, unconditional = self.network(x, c, cond), self.network(x, c, uncond)
            return unconditional + w * (conditional - unconditional)

        run = sample_flow_heun if s.solver == "heun" else sample_flow
        return run(velocity, noise, flow_times(s.steps), callback=callback, progress=progress)


# ------------------------------------------------------------------------------------------------ files
def _save_module(module: torch.nn.Module, config: dict, path: Path, extra: dict | None = None,
                 dtype: torch.dtype = torch.float16) -> None:
    """Write ``module``'s state dict (floating tensors cast to ``dtype``) to ``path``, atomically."""
    from safetensors.torch import save

    tensors = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in module.state_dict().items()}
    metadata = {"config": json.dumps(config), **{k: json.dumps(v) for k, v in (extra or {}).items()}}
    from svd_lab.atomic import write_bytes_atomic

    write_bytes_atomic(path, save(tensors, metadata=metadata), overwrite=True)


def save_model(model: MiniWorldModel, folder: str | os.PathLike, facts: dict | None = None,
               overwrite: bool = False) -> Path:
    """Save as ``folder/autoencoder.safetensors`` + ``folder/dit.safetensors`` (float16 weights: the shipped pair
    stays well under 10 MB; the model runs in bf16 autocast anyway). Refuses to overwrite unless told."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    targets = [folder / AUTOENCODER_FILE, folder / DIT_FILE]
    if not overwrite and any(t.exists() for t in targets):
        raise FileExistsError(f"{folder} already holds a mini model; choose another --out or remove it first")
    facts = {"kind": "svd-lab-mini", **(facts or {}), "residual_scale": model.residual_scale,
             "objective": model.objective}
    _save_module(model.autoencoder, model.autoencoder.config.to_dict(), targets[0], facts)
    _save_module(model.dit, model.dit.config.to_dict(), targets[1], facts)
    return folder


def read_facts(folder: str | os.PathLike) -> dict:
    """The metadata stored with the DiT weights (training command, steps, seed, ...)."""
    from safetensors import safe_open

    with safe_open(str(Path(folder) / DIT_FILE), "pt") as f:
        meta = f.metadata() or {}
    return {k: json.loads(v) for k, v in meta.items()}


def load_model(folder: str | os.PathLike) -> MiniWorldModel:
    """Load a mini model saved by :func:`save_model` (weights back to float32, eval mode)."""
    from safetensors import SafetensorError, safe_open

    folder = Path(folder)
    missing = [name for name in (AUTOENCODER_FILE, DIT_FILE) if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"no mini model in {folder}: missing {', '.join(missing)} "
                                f"(train one with `svd-lab mini train --out {folder}`)")
    modules = []
    residual_scale, objective = None, "edm"
    for name, build in ((AUTOENCODER_FILE, lambda c: FrameAutoencoder(AutoencoderConfig.from_dict(c))),
                        (DIT_FILE, lambda c: VideoDiT(DiTConfig(**c)))):
        path = folder / name
        try:
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
                if "config" not in meta:
                    raise CheckpointLoadError(f"{path} is not an svd-lab mini model file (no config metadata)")
                module = build(json.loads(meta["config"]))
                if name == DIT_FILE:
                    residual_scale = json.loads(meta.get("residual_scale", "null"))
                    objective = json.loads(meta.get("objective", '"edm"'))
                state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a mapping)
            state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
            module.load_state_dict(state)
        except CheckpointLoadError:
            raise
        except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as exc:
            # SafetensorError: a damaged header or data; RuntimeError: wrong keys or shapes in load_state_dict;
            # ValueError/TypeError: unreadable config metadata. All mean "not a usable mini model file".
            raise CheckpointLoadError(
                f"{path} is corrupted or not an svd-lab mini model ({type(exc).__name__}: {str(exc)[:200]}); "
                f"restore it with `git checkout -- {path}` (the shipped weights) or train again with "
                f"`svd-lab mini train --out DIR`") from None
        modules.append(module.eval())
    return MiniWorldModel(*modules, residual_scale=residual_scale, objective=objective).eval()


def setup_notebook(notebook: str, *, profile: str = "auto", device: str = "cpu", seed: int = 23,
                   mini_dir=None, output_dir=None) -> tuple[MiniWorldModel, Path, Path]:
    """The set-up notebooks 01 and 02 share: check their parameters, seed everything, make the output folder
    (``outputs/notebooks/<notebook>`` unless given) and load the world model (the shipped weights unless
    ``mini_dir``). Returns (model, output folder, weights folder)."""
    from svd_lab import paths
    from svd_lab.record import reproducible

    if profile not in ("auto", "mini"):
        raise ValueError(f"profile {profile!r}: this notebook runs the mini world model only (use 'auto' or 'mini')")
    if device != "cpu":
        raise ValueError("the mini world model runs on the CPU: set device = 'cpu'")
    reproducible(seed)
    out_dir = Path(output_dir) if output_dir else paths.outputs_dir() / "notebooks" / notebook
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = Path(mini_dir) if mini_dir else paths.shipped_checkpoints_dir() / "mini"
    return load_model(weights), out_dir, weights
