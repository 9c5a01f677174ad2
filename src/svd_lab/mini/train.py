r"""Training the mini world model: first the autoencoder, then the video DiT with the EDM objective (or flow
matching, :func:`flow_loss`, the objective of Wan and SD3: ``TrainSettings(objective="flow")``).

EDM training (Karras et al. 2022): draw a clean latent video ``z_0``, a noise level ``ln sigma ~ N(P_mean, P_std^2)``
(EDM's image default -1.2, 1.2; the shipped model centres it at 0.0, see :class:`TrainSettings`) and noise ``n``;
the network sees ``c_in (z_0 + sigma n)`` and ``c_noise`` and is trained so that the
denoiser ``D = c_skip x + c_out F`` recovers ``z_0`` under the weight ``lambda = (sigma^2 + sd^2) / (sigma sd)^2``.
Since ``lambda c_out^2 = 1`` this is plain regression of ``F`` onto the *effective target*
``(z_0 - c_skip x) / c_out``, a unit-variance quantity at every noise level -- the point of the preconditioning.

The preconditioning comes from the sampler module (:func:`svd_lab.sampling.edm.edm_preconditioning`), so training
and sampling cannot disagree about it.

Every batch is fresh: videos are generated from ``(seed, step)``, so a run with the same seed and step count is
reproducible (up to floating-point differences between machines and thread counts). The learning rate warms up
linearly and then follows a cosine to 10% over the run; the run's "progress" is the larger of the step fraction
and, with a time limit, the elapsed-time fraction -- so a ``--minutes`` run also ends on a low learning rate.
"""

from __future__ import annotations

import io
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from svd_lab.atomic import write_bytes_atomic, write_text_atomic
from svd_lab.mini import data
from svd_lab.mini.autoencoder import AutoencoderConfig, FrameAutoencoder
from svd_lab.mini.dit import DiTConfig, VideoDiT
from svd_lab.mini.model import SIGMA_DATA, MiniWorldModel
from svd_lab.pixels import psnr
from svd_lab.progress import progress_bar
from svd_lab.training import bf16_autocast, lr_factor, smooth

#: EDM's noise-level distribution for images (Karras et al. 2022): ln(sigma) ~ N(-1.2, 1.2^2). The shipped model
#: centres it higher (TrainSettings.p_mean).
EDM_P_MEAN, EDM_P_STD = -1.2, 1.2


@dataclass
class TrainSettings:
    """Everything that decides a training run (stored with the weights). The defaults are the shipped model's
    recipe: ``TrainSettings()`` is what ``tools/train_mini.sh`` trains (16,000 DiT steps, seed 0)."""

    seed: int = 0
    #: DiT optimiser steps (the shipped weights use a fixed count); None with ``minutes`` = until time is up
    steps: int | None = 16000
    #: wall-clock limit for the whole run (autoencoder included), or None
    minutes: float | None = None
    autoencoder_steps: int = 400
    #: with a time limit, the autoencoder gets at most this share of it
    autoencoder_time_share: float = 0.2
    autoencoder_batch: int = 16
    autoencoder_lr: float = 2e-3
    #: noise added to latents while training the decoder, relative to the latents' std (robust decoding)
    latent_noise: float = 0.1
    batch: int = 32
    lr: float = 1e-3
    warmup: int = 200
    weight_decay: float = 0.0
    #: training noise levels: ln(sigma) ~ N(p_mean, p_std^2). EDM uses -1.2, 1.2 for pixels, EDM2 -0.4, 1.0 for
    #: latents; centred at 0 the noise levels where the ball's direction and speed are decided get trained
    #: (3,000-step trials: presence 69% / 85% / 89% and in-bucket speed 41% / 50% / 66% for p_mean -1.2 / -0.4 / 0)
    p_mean: float = 0.0
    p_std: float = 1.2
    bf16: bool = True
    #: "edm" (the shipped model: a preconditioned denoiser) or "flow" (flow matching: a velocity on the straight
    #: path from data to noise, as Wan trains). Flow draws logit(t) ~ N(p_mean, p_std^2): the same distribution
    #: of noise levels, since its t corresponds to EDM's sigma = t / (1 - t)
    objective: str = "edm"
    #: diffuse the change from the first frame instead of the latents (see MiniWorldModel)
    residual: bool = True
    dit: dict = field(default_factory=lambda: DiTConfig().to_dict())
    autoencoder: dict = field(default_factory=lambda: AutoencoderConfig().to_dict())


def train_autoencoder(settings: TrainSettings, deadline: float | None = None, log=print,
                      progress: bool = True) -> tuple[FrameAutoencoder, dict]:
    """Train the frame autoencoder on fresh bouncing-ball frames; set its latent ``scale`` so that the scaled
    latents have standard deviation ``SIGMA_DATA`` (0.5). Returns the model and ``{"psnr_db", "steps", ...}``."""

    torch.manual_seed(settings.seed)
    ae = FrameAutoencoder(AutoencoderConfig.from_dict(settings.autoencoder))
    opt = torch.optim.AdamW(ae.parameters(), settings.autoencoder_lr, weight_decay=0.0)
    steps = settings.autoencoder_steps
    t0 = time.time()
    done = 0
    bar = progress_bar(total=steps, desc="autoencoder", enabled=progress)
    ae.train()
    for step in range(steps):
        if deadline is not None and time.time() > deadline:
            break
        for group in opt.param_groups:
            group["lr"] = settings.autoencoder_lr * lr_factor(step / steps, step, 50)
        videos = data.generate(settings.autoencoder_batch, seed=_batch_seed(settings.seed, step, stream=1))
        x = data.to_model_space(videos.frames)
        with bf16_autocast(settings.bf16):
            z = ae.encode_raw(x)
            noisy = z + settings.latent_noise * z.detach().float().std() * torch.randn_like(z)
            recon = ae.decode_raw(noisy)
        # reconstruction + a small L2 on the latents, which keeps them bounded (a poor man's KL term)
        loss = ((recon.float() - x) ** 2).mean() + 1e-4 * (z.float() ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done = step + 1
        bar.update()
        bar.set_postfix(loss=f"{loss.item():.4f}")
    bar.close()
    ae.eval()
    check = data.generate(64, seed=_batch_seed(settings.seed, 0, stream=3))
    with torch.no_grad():
        raw = ae.encode_raw(data.to_model_space(check.frames))
        ae.scale.fill_(SIGMA_DATA / raw.std().item())
        recon = data.from_model_space(ae.decode_raw(raw))
    stats = {"psnr_db": round(psnr(check.frames, recon), 2), "steps": done,
             "seconds": round(time.time() - t0, 1), "scale": float(ae.scale)}
    log(f"autoencoder: {done} steps in {stats['seconds']} s, reconstruction PSNR {stats['psnr_db']} dB")
    return ae, stats


def autoencoder_psnr(ae: FrameAutoencoder, seed: int = 0, videos: int = 64) -> float:
    """Reconstruction PSNR (dB) of the autoencoder on ``videos`` fresh videos."""
    check = data.generate(videos, seed=_batch_seed(seed, 0, stream=3))
    with torch.no_grad():
        recon = data.from_model_space(ae.decode(ae.encode(data.to_model_space(check.frames))))
    return round(psnr(check.frames, recon), 2)


def _residual_scale(ae: FrameAutoencoder, seed: int) -> float:
    """``k`` such that ``k (z - z_first)`` has standard deviation ``SIGMA_DATA`` over 256 fresh videos."""
    videos = data.generate(256, seed=_batch_seed(seed, 1, stream=3))
    with torch.no_grad():
        z = ae.encode(data.to_model_space(videos.frames))
    return round(SIGMA_DATA / (z - z[:, :1]).std().item(), 4)


def _batch_seed(seed: int, step: int, stream: int) -> int:
    """Distinct, reproducible data seeds per (run seed, step, stream: 0 DiT, 1 autoencoder, 3 checks)."""
    return (seed * 1_000_003 + step) * 4 + stream


def edm_loss(dit: VideoDiT, latents: torch.Tensor, first_latent: torch.Tensor, labels: torch.Tensor,
             bf16: bool = True, generator: torch.Generator | None = None,
             p_mean: float = TrainSettings.p_mean, p_std: float = TrainSettings.p_std) -> torch.Tensor:
    """The EDM loss for a batch of clean latent videos (B, T, C, h, w) (see the module docstring)."""
    from svd_lab.sampling.edm import edm_preconditioning

    b = latents.shape[0]
    sigma = torch.exp(p_mean + p_std * torch.randn(b, generator=generator)).view(b, 1, 1, 1, 1)
    noisy = latents + sigma * torch.randn(latents.shape, generator=generator)
    c_skip, c_out, c_in, c_noise = edm_preconditioning(SIGMA_DATA)(sigma)
    target = (latents - c_skip * noisy) / c_out
    with bf16_autocast(bf16):
        raw = dit(c_in * noisy, c_noise.reshape(b), {"first_frame": first_latent, "labels": labels})
    return ((raw.float() - target) ** 2).mean()


def flow_loss(dit: VideoDiT, latents: torch.Tensor, first_latent: torch.Tensor, labels: torch.Tensor,
              bf16: bool = True, generator: torch.Generator | None = None,
              p_mean: float = TrainSettings.p_mean, p_std: float = TrainSettings.p_std) -> torch.Tensor:
    """The flow-matching loss: ``x_t = (1 - t) z_0 + t n``, target velocity ``n - z_0``, plain mean squared error.

    No preconditioning: the path's ends are the data and the noise themselves. ``logit(t) ~ N(p_mean, p_std^2)``
    (SD3's logit-normal; with EDM's p_mean and p_std it trains the same noise levels as :func:`edm_loss`). The
    network is told :func:`svd_lab.mini.model.flow_c_noise` -- EDM's ``ln(sigma) / 4`` at the equivalent sigma.
    """
    from svd_lab.mini.model import flow_c_noise

    b = latents.shape[0]
    t = torch.sigmoid(p_mean + p_std * torch.randn(b, generator=generator)).view(b, 1, 1, 1, 1)
    noise = torch.randn(latents.shape, generator=generator)
    noisy = (1 - t) * latents + t * noise
    with bf16_autocast(bf16):
        raw = dit(noisy, flow_c_noise(t.reshape(b)), {"first_frame": first_latent, "labels": labels})
    return ((raw.float() - (noise - latents)) ** 2).mean()


LOSSES = {"edm": edm_loss, "flow": flow_loss}


@dataclass
class _Schedule:
    """When a run stops and how far along it is: a step count, a deadline, or both (whichever comes first)."""

    total: int | None
    deadline: float | None
    start: float

    def done(self, step: int) -> bool:
        return (self.total is not None and step >= self.total) or (
            self.deadline is not None and time.time() >= self.deadline)

    def fraction(self, step: int) -> float:
        """Progress 0 -> 1: the larger of the step fraction and, with a deadline, the elapsed-time fraction."""
        fraction = step / self.total if self.total else 0.0
        if self.deadline is not None:
            fraction = max(fraction, (time.time() - self.start) / max(self.deadline - self.start, 1e-9))
        return fraction


def _log_timing(record: dict, step: int, dit_start: float) -> None:
    record["dit_steps"] = step
    record["dit_seconds"] = round(time.time() - dit_start, 1)
    record["seconds_per_step"] = round(record["dit_seconds"] / max(step, 1), 4)


def _dit_step(model: MiniWorldModel, opt: torch.optim.Optimizer, settings: TrainSettings, step: int,
              lr_scale: float, generator: torch.Generator) -> float:
    """One optimiser step of the DiT on a fresh batch; returns the loss."""
    for group in opt.param_groups:
        group["lr"] = settings.lr * lr_scale
    videos = data.generate(settings.batch, seed=_batch_seed(settings.seed, step, stream=0))
    model.dit.train()
    with torch.no_grad(), bf16_autocast(settings.bf16):
        latents = model.autoencoder.encode(data.to_model_space(videos.frames)).float()
    first = latents[:, :1]
    loss = LOSSES[settings.objective](model.dit, model.to_diffusion_space(latents, first), first,
                                      videos.speed_bucket, settings.bf16, generator, settings.p_mean, settings.p_std)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.dit.parameters(), 1.0)
    opt.step()
    return loss.item()


def _snapshot(model: MiniWorldModel, step: int, seconds: float, videos: int) -> dict:
    """Metric snapshot of the model so far on ``videos`` generated videos (NaN scores recorded as None)."""
    from svd_lab.mini import metrics

    scores = metrics.evaluate_model(model.eval(), num_videos=videos, settings=None, batch=videos)
    return {"step": step, "seconds": round(seconds, 1),
            **{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in scores.to_dict().items()}}


def train(settings: TrainSettings, out: str | os.PathLike | None = None, progress: bool = True, log=print,
          snapshot_every: int = 0, snapshot_videos: int = 16, checkpoint_every: int = 0,
          overwrite: bool = False, facts: dict | None = None,
          autoencoder: FrameAutoencoder | None = None) -> tuple[MiniWorldModel, dict]:
    """Train autoencoder then DiT; optionally save to ``out`` (weights, ``training.json``, ``loss.png``).

    Args:
        snapshot_every: every this many DiT steps, score ``snapshot_videos`` generated videos (metric snapshots).
        checkpoint_every: every this many DiT steps, save the weights to ``out`` (so a long run can be stopped).
        autoencoder: a trained autoencoder to reuse (its training is then skipped).
    Returns:
        the trained model and the training record (losses, snapshots, timings).
    """
    from svd_lab.mini.model import DIT_FILE, save_model

    if settings.steps is None and settings.minutes is None:
        raise ValueError("give a step count, a time limit in minutes, or both")
    if settings.objective not in LOSSES:
        raise ValueError(f"unknown objective {settings.objective!r}: use one of {', '.join(LOSSES)}")
    if out is not None and not overwrite and (Path(out) / DIT_FILE).exists():
        raise FileExistsError(f"{out} already holds a mini model; choose another output folder or remove it")
    start = time.time()

    # 1. the autoencoder: trained (within its share of a time limit) or reused, then frozen
    if autoencoder is None:
        ae_deadline = start + 60 * settings.minutes * settings.autoencoder_time_share if settings.minutes else None
        ae, ae_stats = train_autoencoder(settings, ae_deadline, log, progress)
    else:
        ae, ae_stats = autoencoder.eval(), {"psnr_db": autoencoder_psnr(autoencoder, settings.seed), "steps": 0,
                                            "seconds": 0.0, "scale": float(autoencoder.scale), "reused": True}
    ae.requires_grad_(False)

    # 2. the DiT, what it diffuses (latents or their change from the first frame), the optimiser
    residual_scale = _residual_scale(ae, settings.seed) if settings.residual else None
    what = f"the change from the first frame, scale {residual_scale}" if residual_scale else "the latents"
    log(f"diffusing {what}")
    torch.manual_seed(settings.seed + 1)
    model = MiniWorldModel(ae, VideoDiT(DiTConfig(**settings.dit)), residual_scale, objective=settings.objective)
    opt = torch.optim.AdamW(model.dit.parameters(), settings.lr, weight_decay=settings.weight_decay)
    generator = torch.Generator().manual_seed(settings.seed + 2)
    record = {"settings": asdict(settings), "autoencoder": ae_stats, "loss": [], "snapshots": [],
              "dit_parameters": sum(p.numel() for p in model.dit.parameters())}

    def save(complete: bool) -> None:
        _log_timing(record, step, dit_start)
        save_model(model, out, facts={**(facts or {}), "steps": step, "seed": settings.seed,
                                      "autoencoder_psnr_db": ae_stats["psnr_db"], "complete": complete},
                   overwrite=True)
        _write_training_log(Path(out), record)

    # 3. the DiT's steps, with snapshots and periodic saves
    dit_start = time.time()
    schedule = _Schedule(settings.steps, start + 60 * settings.minutes if settings.minutes else None, dit_start)
    bar = progress_bar(total=settings.steps, desc="video DiT", enabled=progress)
    step, running = 0, None
    while not schedule.done(step):
        value = _dit_step(model, opt, settings, step, lr_factor(schedule.fraction(step), step, settings.warmup),
                          generator)
        step += 1
        running = smooth([running, value])[-1] if running is not None else value
        record["loss"].append([step, round(time.time() - start, 2), round(value, 5)])
        bar.update()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{running:.4f}")
        if snapshot_every and step % snapshot_every == 0:
            snap = _snapshot(model, step, time.time() - start, snapshot_videos)
            record["snapshots"].append(snap)
            log(f"step {step}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                             for k, v in snap.items() if k != "step"))
        if out is not None and checkpoint_every and step % checkpoint_every == 0:
            save(complete=False)
    bar.close()

    # 4. the record, and the final save
    model.eval()
    _log_timing(record, step, dit_start)
    record["total_seconds"] = round(time.time() - start, 1)
    log(f"video DiT: {step} steps in {record['dit_seconds']} s ({record['seconds_per_step']} s/step), "
        f"final loss (smoothed) {running:.4f}")
    if out is not None:
        save(complete=True)
    return model, record


def _write_training_log(folder: Path, record: dict) -> None:
    """training.json (the whole record) and loss.png (the loss curve, smoothed), each written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / "training.json", json.dumps(record, indent=1), overwrite=True)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the plot is a convenience; the numbers are in training.json
        return
    steps = [r[0] for r in record["loss"]]
    losses = [r[2] for r in record["loss"]]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(steps, losses, alpha=0.25, lw=0.5, label="loss")
    ax.plot(steps, smooth(losses), lw=1.5, label="smoothed")
    ax.set_yscale("log")
    ax.set_xlabel("DiT step")
    ax.set_ylabel(f"{record['settings'].get('objective', 'edm').upper()} loss")
    ax.set_title("mini world model training")
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    write_bytes_atomic(folder / "loss.png", buffer.getvalue(), overwrite=True)
