r"""Training the tiny SVD with SVD's own objective: first the VAE, then the video UNet.

**VAE** (``AutoencoderKLTemporalDecoder``, encoder + temporal decoder): L1 + L2 reconstruction of 8-frame
clips decoded together (the temporal decoder mixes frames within a chunk, as at sampling time), with a little
Gaussian noise on the latents so the decoder tolerates the UNet's imperfect ones. Afterwards the encoder's
output is rescaled exactly (its last 1x1 convolution times ``a``, the decoder's first convolution divided by
``a``) so that ``0.18215 * latent`` -- SVD's latent scaling, kept as it is -- has unit standard deviation, which
is what ``VScalingWithEDMcNoise`` assumes (sigma_data = 1). Stable Diffusion chose 0.18215 the other way round:
one over the standard deviation of its VAE's latents.

**UNet** (``UNetSpatioTemporalConditionModel``), per batch of clips, exactly SVD's conditioning:

    crossattn = CLIP(clean first frame)                          (B, 1, 64)   frozen random CLIP
    concat    = VAE.encode(2 x_0 - 1 + cond_aug n').mode()        (B, 4, 8, 8) unscaled, repeated over frames
    ids       = [fps_id, motion_bucket_id, cond_aug]              (B, 3)
    with probability ``drop``: crossattn = 0 and concat = 0 (ids kept) -- the branch guidance subtracts

    z_0   = 0.18215 VAE.encode(frames).mode()                     (B, T, 4, 8, 8)
    sigma ~ lognormal(p_mean, p_std),  x = z_0 + sigma n
    loss  = || F(c_in x, c_noise) - (z_0 - c_skip x) / c_out ||^2          (v-prediction, VScalingWithEDMcNoise)

The last line is EDM's weighted denoising loss ``lambda(sigma) ||D(x) - z_0||^2`` with ``lambda = 1 / c_out^2``:
for v-scaling the effective target ``(z_0 - c_skip x) / c_out`` is the "velocity" ``(n - sigma z_0) /
sqrt(sigma^2 + 1)`` up to sign, a unit-variance quantity at every noise level.

Data: latents are computed once for a pool of clips (encoding costs more than a UNet step on a CPU); each step
takes random 8-frame windows of the pool's 10-frame clips, fresh noise levels, fresh cond_aug and fresh
conditioning noise. Everything is drawn from the run's seed.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from svd_lab.progress import progress_bar
from svd_lab.sampling.edm import v_scaling_preconditioning
from svd_lab.svd.components import SVDComponents
from svd_lab.svdmini import data
from svd_lab.training import bf16_autocast, lr_factor

LATENT_SCALING = 0.18215


@dataclass
class TrainSettings:
    """Everything that decides a training run (stored with the weights). The defaults are the shipped recipe."""

    seed: int = 0
    vae_steps: int = 1500
    vae_batch: int = 1               # clips of FRAMES frames: 8 images per step
    vae_lr: float = 1e-3
    #: noise on the latents while training the decoder, relative to their standard deviation
    latent_noise: float = 0.1
    pool_clips: int = 2400
    pool_frames: int = 10
    steps: int = 3000
    batch: int = 8
    lr: float = 5e-4
    warmup: int = 100
    #: training noise levels: ln(sigma) ~ N(p_mean, p_std^2)
    p_mean: float = 0.5
    p_std: float = 1.5
    #: probability of dropping the image conditioning (crossattn and concat zeroed, ids kept) for guidance
    drop: float = 0.1
    bf16: bool = True


def _seed(seed: int, step: int, stream: int) -> int:
    """Distinct reproducible data seeds per (run seed, step, stream: 0 pool, 1 VAE, 2 checks)."""
    return (seed * 1_000_003 + step) * 4 + stream


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of images in [0, 1]."""
    mse = ((a.float() - b.float()) ** 2).mean().item()
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


# ------------------------------------------------------------------------------------------- VAE
def vae_roundtrip(vae, frames: torch.Tensor) -> torch.Tensor:
    """(B, T, 3, H, W) in [0, 1] -> decoded mode latents, the same shape, in [0, 1] (each clip decoded together)."""
    t = frames.shape[1]
    with torch.no_grad():
        z = vae.encode(frames.flatten(0, 1) * 2 - 1).latent_dist.mode()
        out = vae.decode(z, num_frames=t).sample
    return ((out + 1) / 2).clamp(0, 1).view_as(frames)


def train_vae(vae, settings: TrainSettings, log=print, progress: bool = True) -> dict:
    """Train encoder + temporal decoder on clips; then rescale the latents (see the module docstring)."""
    vae.train().requires_grad_(True)
    opt = torch.optim.AdamW(vae.parameters(), settings.vae_lr, weight_decay=0.0)
    bar = progress_bar(total=settings.vae_steps, desc="VAE", enabled=progress)
    t0 = time.time()
    losses = []
    for step in range(settings.vae_steps):
        for group in opt.param_groups:
            group["lr"] = settings.vae_lr * lr_factor(step / settings.vae_steps, step, 30)
        clips = data.generate(settings.vae_batch, seed=_seed(settings.seed, step, 1))
        x = clips.frames.flatten(0, 1) * 2 - 1
        with bf16_autocast(settings.bf16):
            z = vae.encode(x).latent_dist.mode()
            noisy = z + settings.latent_noise * z.detach().float().std() * torch.randn_like(z)
            recon = vae.decode(noisy, num_frames=clips.frames.shape[1]).sample
        diff = recon.float() - x
        loss = diff.abs().mean() + (diff ** 2).mean() + 1e-6 * (z.float() ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        losses.append([step + 1, round(loss.item(), 5)])
        bar.update()
        bar.set_postfix(loss=f"{loss.item():.4f}")
    bar.close()
    vae.eval()
    check = data.generate(16, seed=_seed(settings.seed, 0, 2))
    factor = rescale_latents(vae, check.frames)
    quality = psnr(vae_roundtrip(vae, check.frames), check.frames)
    held = data.generate(16, seed=_seed(settings.seed, 1, 2), held_out=True)
    held_quality = psnr(vae_roundtrip(vae, held.frames), held.frames)
    stats = {"steps": settings.vae_steps, "seconds": round(time.time() - t0, 1), "psnr_db": round(quality, 2),
             "held_out_psnr_db": round(held_quality, 2), "latent_rescale": round(factor, 5), "loss": losses}
    log(f"VAE: {settings.vae_steps} steps in {stats['seconds']} s, reconstruction PSNR {stats['psnr_db']} dB "
        f"(held-out crops {stats['held_out_psnr_db']} dB)")
    return stats


@torch.no_grad()
def rescale_latents(vae, frames: torch.Tensor) -> float:
    """Make ``LATENT_SCALING * mode latent`` unit-variance on ``frames``, exactly, without changing what decodes.

    The posterior mean is the first half of ``quant_conv``'s output channels: multiplying that half's weight and
    bias by ``a`` multiplies the latent by ``a`` (the log-variance half gets ``+ 2 ln a``); dividing the weight
    of the decoder's first convolution by ``a`` undoes it. Returns ``a``.
    """
    z = vae.encode(frames.flatten(0, 1) * 2 - 1).latent_dist.mode()
    a = 1.0 / (LATENT_SCALING * z.float().std().item())
    channels = vae.quant_conv.out_channels // 2
    vae.quant_conv.weight[:channels] *= a
    vae.quant_conv.bias[:channels] *= a
    vae.quant_conv.bias[channels:] += 2 * math.log(a)
    vae.decoder.conv_in.weight /= a
    return a


# ------------------------------------------------------------------------------------------- UNet data
@dataclass
class LatentPool:
    """Clips encoded once: ``latents`` (N, F, 4, h, w) unscaled bf16, ``first`` (N, F, 3, H, W) uint8 frames
    (every frame can start a window), ``fps_id`` and ``motion_bucket_id`` (N,)."""

    latents: torch.Tensor
    frames: torch.Tensor
    fps_id: torch.Tensor
    motion_bucket_id: torch.Tensor


@torch.no_grad()
def build_pool(vae, settings: TrainSettings, log=print, progress: bool = True) -> LatentPool:
    chunk = 16
    latents, frames, fps, buckets = [], [], [], []
    bar = progress_bar(total=settings.pool_clips, desc="encoding clips", enabled=progress)
    t0 = time.time()
    for start in range(0, settings.pool_clips, chunk):
        n = min(chunk, settings.pool_clips - start)
        clips = data.generate(n, seed=_seed(settings.seed, start, 0), frames=settings.pool_frames)
        with bf16_autocast(settings.bf16):
            z = vae.encode(clips.frames.flatten(0, 1) * 2 - 1).latent_dist.mode()
        latents.append(z.to(torch.bfloat16).view(n, settings.pool_frames, *z.shape[1:]))
        frames.append((clips.frames * 255).round().to(torch.uint8))
        fps.append(clips.fps_id), buckets.append(clips.motion_bucket_id)
        bar.update(n)
    bar.close()
    log(f"latent pool: {settings.pool_clips} clips x {settings.pool_frames} frames in {time.time() - t0:.0f} s")
    return LatentPool(torch.cat(latents), torch.cat(frames), torch.cat(fps), torch.cat(buckets))


def _batch(pool: LatentPool, generator: torch.Generator, batch: int, frames: int):
    """Random windows: clean scaled latents (B, T, 4, h, w), first frames (B, 3, H, W) in [0, 1], fps, bucket."""
    idx = torch.randint(len(pool.latents), (batch,), generator=generator)
    start = torch.randint(pool.latents.shape[1] - frames + 1, (batch,), generator=generator)
    window = torch.arange(frames)
    z = pool.latents[idx.unsqueeze(1), start.unsqueeze(1) + window].float() * LATENT_SCALING
    first = pool.frames[idx, start].float() / 255.0
    return z, first, pool.fps_id[idx], pool.motion_bucket_id[idx]


def svd_loss(components: SVDComponents, z0: torch.Tensor, first: torch.Tensor, fps_id: torch.Tensor,
             motion_bucket_id: torch.Tensor, settings: TrainSettings, generator: torch.Generator) -> torch.Tensor:
    """SVD's training loss for one batch (see the module docstring). ``z0`` scaled latents (B, T, 4, h, w)."""
    b, t = z0.shape[:2]
    cond_aug = torch.exp(data.COND_AUG_LOG_MEAN + data.COND_AUG_LOG_STD * torch.randn(b, generator=generator))
    with torch.no_grad():
        crossattn = components.image_encoder(components.clip_preprocessing(first)).image_embeds.unsqueeze(1)
        noisy_first = first * 2 - 1 + cond_aug.view(b, 1, 1, 1) * torch.randn(first.shape, generator=generator)
        concat = components.vae.encode(noisy_first).latent_dist.mode()                  # unscaled, as SVD
        keep = (torch.rand(b, generator=generator) >= settings.drop).float()
        crossattn = crossattn * keep.view(b, 1, 1)
        concat = (concat * keep.view(b, 1, 1, 1)).unsqueeze(1).expand(-1, t, -1, -1, -1)
    ids = torch.stack([fps_id.float(), motion_bucket_id.float(), cond_aug], dim=1)
    sigma = torch.exp(settings.p_mean + settings.p_std * torch.randn(b, generator=generator))
    x = z0 + sigma.view(b, 1, 1, 1, 1) * torch.randn(z0.shape, generator=generator)
    c_skip, c_out, c_in, c_noise = v_scaling_preconditioning(sigma.view(b, 1, 1, 1, 1))
    target = (z0 - c_skip * x) / c_out
    with bf16_autocast(settings.bf16):
        raw = components.unet(torch.cat([c_in * x, concat], dim=2), c_noise.view(b),
                              encoder_hidden_states=crossattn, added_time_ids=ids).sample
    return ((raw.float() - target) ** 2).mean()


# ------------------------------------------------------------------------------------------- the whole run
def train(settings: TrainSettings, out: str | os.PathLike | None = None, progress: bool = True, log=print,
          snapshot_every: int = 0, overwrite: bool = False) -> tuple[SVDComponents, dict]:
    """Train VAE then UNet from random weights (``build_components('mini')``); save to ``out`` when given.

    ``snapshot_every``: every this many UNet steps, score the model on a few held-out crops (metric snapshots).
    Returns the trained components (eval mode) and the training record.
    """
    from svd_lab.svd.components import build_components
    from svd_lab.svdmini import metrics
    from svd_lab.svdmini.model import save_mini

    if out is not None and not overwrite and (Path(out) / "model_index.json").exists():
        raise FileExistsError(f"{out} already holds a model; choose another output folder or remove it")
    start = time.time()
    components = build_components("mini", seed=settings.seed)
    components.source = "svd-lab svdmini train"
    vae_stats = train_vae(components.vae, settings, log, progress)
    components.vae.requires_grad_(False)
    pool = build_pool(components.vae, settings, log, progress)
    unet = components.unet
    unet.train().requires_grad_(True)
    opt = torch.optim.AdamW(unet.parameters(), settings.lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(settings.seed + 7)
    record = {"settings": asdict(settings), "vae": vae_stats, "loss": [], "snapshots": [],
              "parameters": components.parameter_counts()}
    bar = progress_bar(total=settings.steps, desc="UNet", enabled=progress)
    unet_start = time.time()
    running = None
    for step in range(settings.steps):
        for group in opt.param_groups:
            group["lr"] = settings.lr * lr_factor(step / settings.steps, step, settings.warmup)
        z0, first, fps_id, bucket = _batch(pool, generator, settings.batch, data.FRAMES)
        loss = svd_loss(components, z0, first, fps_id, bucket, settings, generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        value = loss.item()
        running = value if running is None else 0.98 * running + 0.02 * value
        record["loss"].append([step + 1, round(time.time() - start, 2), round(value, 5)])
        bar.update()
        if (step + 1) % 25 == 0:
            bar.set_postfix(loss=f"{running:.4f}")
        if snapshot_every and (step + 1) % snapshot_every == 0:
            unet.eval()
            snap = metrics.snapshot(components)
            unet.train().requires_grad_(True)  # the pipeline behind the snapshot froze every network
            snap = {"step": step + 1, "seconds": round(time.time() - start, 1), **snap}
            record["snapshots"].append(snap)
            log(f"step {step + 1}: " + ", ".join(f"{k} {v}" for k, v in snap.items() if k != "step"))
    bar.close()
    components.eval()
    record["unet_steps"] = settings.steps
    record["unet_seconds"] = round(time.time() - unet_start, 1)
    record["seconds_per_step"] = round(record["unet_seconds"] / max(settings.steps, 1), 4)
    record["total_seconds"] = round(time.time() - start, 1)
    log(f"UNet: {settings.steps} steps in {record['unet_seconds']} s ({record['seconds_per_step']} s/step), "
        f"final loss (smoothed) {running:.4f}; whole run {record['total_seconds']} s")
    if out is not None:
        save_mini(components, out, record, overwrite=overwrite)
    return components, record


def write_loss_plot(record: dict, path: Path) -> None:
    """The loss curves (VAE and UNet, raw and smoothed) as a PNG, written via a temporary file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def smooth(values):
        out, acc = [], None
        for v in values:
            acc = v if acc is None else 0.98 * acc + 0.02 * v
            out.append(acc)
        return out

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3), dpi=100)
    vae_steps = [r[0] for r in record["vae"]["loss"]]
    vae_loss = [r[1] for r in record["vae"]["loss"]]
    axes[0].plot(vae_steps, vae_loss, alpha=0.3, lw=0.6)
    axes[0].plot(vae_steps, smooth(vae_loss), lw=1.5)
    axes[0].set(yscale="log", xlabel="VAE step", ylabel="L1 + L2", title="VAE")
    steps = [r[0] for r in record["loss"]]
    losses = [r[2] for r in record["loss"]]
    axes[1].plot(steps, losses, alpha=0.25, lw=0.5, label="loss")
    axes[1].plot(steps, smooth(losses), lw=1.5, label="smoothed")
    axes[1].set(yscale="log", xlabel="UNet step", ylabel="v-prediction loss", title="UNet (SVD objective)")
    axes[1].legend()
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def write_training_log(record: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)
