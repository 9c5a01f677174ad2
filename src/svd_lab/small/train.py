r"""Training the small SVD with SVD's own objective, in stages that resume after an interruption.

**Stages** (each writes its result into the work folder, ``<out>.work``; running the same command again continues
from the last checkpoint and gives the same weights as an uninterrupted run):

1. ``canvases``: the dead-leaves canvases (:func:`svd_lab.small.data.leaves_pool`) the clips are cut from.
2. ``vae``: the VAE (``AutoencoderKLTemporalDecoder``: encoder + temporal decoder) on small crops, checkpointed
   every ``checkpoint_every`` steps; then its latents are rescaled (below) and its quality against the thumbnail
   baseline is logged.
3. ``decoder``: that VAE, rounded to fp16 as a shipped model holds it, trained on whole frames at the model's size
   (encoder and decoder; the decoder alone if not ``tune_encoder``; below), then rescaled again. It is the VAE that
   ships: every latent the UNet learns from is encoded after this stage.
4. ``pool``: clips encoded once (encoding costs more than a UNet step on a CPU).
5. ``unet``: the video UNet, checkpointed likewise.
6. ``fast``: that UNet, rounded to fp16 as a shipped model holds it, trained on at a lower learning rate with half of
   every batch from fast pans (below); then the folder ``out`` is written (fp16 safetensors, diffusers layout,
   ``training.json`` and ``loss.png`` beside the networks) and the work folder removed.

Every step draws its data and noise from its own generator, seeded by (run seed, step), and checkpoints hold the
optimiser's state, so a resumed run repeats exactly what the interrupted one would have done.

**VAE**: L1 + L2 + an edge term (L1 of the horizontal and vertical differences: sharp edges count) on small random
crops (the networks are convolutional: a 32x32 crop costs a quarter of a 64x64 frame) of short clips, decoded in
chunks of a random length that divides the clip (the temporal decoder must work for any ``decoding_t``), with a
little Gaussian noise on the latents so the decoder tolerates the UNet's imperfect ones. Afterwards the encoder's
output is rescaled exactly (its last 1x1 convolution times ``a``, the decoder's first convolution divided by ``a``)
so that ``0.18215 * latent`` -- SVD's latent scaling, kept as it is -- has unit standard deviation, which is what
``VScalingWithEDMcNoise`` assumes (sigma_data = 1).

**Whole frames** (stage 3, named ``decoder`` in the record). The VAE of stage 2 sees 32x32 crops, but every
GroupNorm of diffusers' VAE normalises over the whole image, so a 64x64 frame reaches the networks with other
statistics than they trained on: measured on the first model of this recipe, a smooth held-out crop (the cat) came
back at 31.8 dB whole and at 37.0 dB cut into four 32x32 tiles, and whole frames carried colour casts of 0.02-0.04.
Stage 3 trains the VAE on whole frames at the model's size, with :func:`svd_lab.small.data.smooth_fields` replacing
half the clips (slow ramps, like the rocket's sky; a field blended into the clip instead pulls its colours towards
grey and the decoder learns fewer saturated ones) and :func:`svd_lab.small.data.thin_lines` drawn into half (masts
and wires: the detail a 9x9 thumbnail blurs away). Until 2026-12-07 this stage ran last, on the VAE of a trained
UNet, and moved the latents that UNet had learned (by 23% of their norm on average): the videos' colour drifted
more than the VAE's round trips. Every probe of this stage is in ``docs/small_svd_levers.md``; the shipped run's
numbers are in README "The small SVD".

**UNet** (``UNetSpatioTemporalConditionModel``), per batch of clips, exactly SVD's conditioning:

    crossattn = CLIP(clean first frame)                          (B, 1, D)    frozen random CLIP
    concat    = VAE.encode(2 x_0 - 1 + cond_aug n').mode()        (B, C, h, w) unscaled, repeated over frames
    ids       = [fps_id, motion_bucket_id, cond_aug]              (B, 3)
    with probability ``drop``: crossattn = 0 and concat = 0 (ids kept) -- the branch guidance subtracts

    z_0   = 0.18215 VAE.encode(frames).mode()                     (B, T, C, h, w)
    sigma ~ lognormal(p_mean, p_std),  x = z_0 + sigma n
    loss  = || F(c_in x, c_noise) - (z_0 - c_skip x) / c_out ||^2          (v-prediction, VScalingWithEDMcNoise)

The last line is EDM's weighted denoising loss ``lambda(sigma) ||D(x) - z_0||^2`` with ``lambda = 1 / c_out^2``:
for v-scaling the effective target ``(z_0 - c_skip x) / c_out`` is the "velocity" ``(n - sigma z_0) /
sqrt(sigma^2 + 1)`` up to sign, a unit-variance quantity at every noise level.

**Fast pans** (stage 6). The colour of the last frames of the fastest pans drifts most (the largest colour errors of
every evaluation are at motion bucket 255), and a uniform draw of buckets gives such clips a third of the batches at
most. Stage 6 continues the UNet for ``fast_steps`` steps (learning rate ``fast_lr``, warm-up, cosine) with
``fast_share`` of every batch drawn from the pool's clips at ``motion_bucket_id >= fast_bucket``. Measured on two
draws of held-out crops, it lowered the largest colour error of bucket-255 videos where the same steps on the
uniform draw did not (``docs/small_svd_levers.md``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from svd_lab.atomic import write_text_atomic
from svd_lab.errors import UserError
from svd_lab.progress import progress_bar
from svd_lab.sampling.edm import v_scaling_preconditioning
from svd_lab.small import data
from svd_lab.svd.components import SVDComponents
from svd_lab.training import bf16_autocast, load_state, lr_factor, save_state

LATENT_SCALING = 0.18215
STAGES = ("canvases", "vae", "decoder", "pool", "unet", "fast")
#: the decoder stage draws from the VAE's random stream with its steps counted from here (distinct within a run)
DECODER_STREAM_OFFSET = 10_000_000
#: and the fast-pan stage from the UNet's
FAST_STREAM_OFFSET = 50_000_000


@dataclass
class TrainSettings:
    """Everything that decides a training run (stored with the weights). The defaults are the shipped recipe."""

    seed: int = 0
    canvases: int = 800              # dead-leaves canvases the clips are cut from
    vae_steps: int = 3000
    vae_batch: int = 6               # clips per VAE step
    vae_frames: int = 3              # frames per VAE clip, decoded in chunks of 1 or 3
    vae_crop: int = 32               # pixels: VAE training crops (the VAE is convolutional)
    vae_lr: float = 4e-4
    edge_weight: float = 0.5         # weight of the edge (image-gradient) L1 term
    #: noise on the latents while training the decoder, relative to their standard deviation
    latent_noise: float = 0.1
    pool_clips: int = 3000
    pool_frames: int = 10
    steps: int = 5000
    batch: int = 8
    lr: float = 5e-4
    warmup: int = 100
    #: training noise levels: ln(sigma) ~ N(p_mean, p_std^2)
    p_mean: float = 0.5
    p_std: float = 1.5
    #: probability of dropping the image conditioning (crossattn and concat zeroed, ids kept) for guidance
    drop: float = 0.1
    #: bfloat16 autocast (only where the CPU has bf16 instructions). Off: float32 is the same on every machine, and
    #: in bf16 the temporal decoder's 3D convolutions returned NaN gradients within two steps (AVX512-BF16 EPYC)
    bf16: bool = False
    decoder_steps: int = 1000        # stage 3: the VAE on whole frames
    decoder_batch: int = 4           # clips per stage-3 step (vae_frames frames each, at the model's frame size)
    decoder_lr: float = 1e-4
    smooth_share: float = 0.5        # stage 3: share of the clips given a smooth field (data.smooth_fields)
    smooth_whole: bool = True        # stage 3: the field replaces the clip (False: it blends in, weight 0.3-1)
    lines_share: float = 0.5         # stage 3: share of the clips with thin segments drawn in (data.thin_lines)
    #: stage 3 trains the encoder with the decoder
    tune_encoder: bool = True
    fast_steps: int = 700            # stage 6: the UNet on with fast pans in every batch
    fast_lr: float = 1e-4
    fast_share: float = 0.5          # stage 6: share of every batch from clips at motion_bucket_id >= fast_bucket
    fast_bucket: int = 170
    checkpoint_every: int = 250      # optimiser steps between resumable checkpoints (every network)


def _seed(seed: int, step: int, stream: int) -> int:
    """Distinct reproducible seeds per (run seed, step, stream: 0 pool, 1 VAE, 2 checks, 3 UNet)."""
    return (seed * 1_000_003 + step) * 4 + stream


# ------------------------------------------------------------------------------------------- the work folder
class Work:
    """The work folder of a run: one file per finished stage, one checkpoint per running stage, the log."""

    def __init__(self, folder: Path, settings: TrainSettings):
        self.folder = folder
        self.settings = settings
        folder.mkdir(parents=True, exist_ok=True)
        recorded = folder / "settings.json"
        mine = json.dumps(asdict(settings), indent=1, sort_keys=True)
        if recorded.is_file() and recorded.read_text() != mine:
            raise UserError(f"{folder} holds a run with other settings ({_differences(recorded, asdict(settings))}); "
                            "remove it to start again, or rerun the command that started it (same --seed and step "
                            "options, same svd-lab version)")
        if not recorded.is_file():
            write_text_atomic(recorded, mine)
        self.log_path = folder / "log.json"
        self.log = json.loads(self.log_path.read_text()) if self.log_path.is_file() else {}

    def path(self, name: str) -> Path:
        return self.folder / name

    def save_log(self) -> None:
        write_text_atomic(self.log_path, json.dumps(self.log, indent=1), overwrite=True)


def _differences(recorded: Path, mine: dict) -> str:
    """What differs between a work folder's recorded settings and ``mine``: 'name: A there, B here; ...'."""
    try:
        theirs = json.loads(recorded.read_text())
    except (OSError, ValueError):
        return "its settings.json is unreadable"
    missing = object()
    names = sorted(set(theirs) | set(mine))
    changed = [f"{n}: {theirs.get(n, 'absent')} there, {mine.get(n, 'absent')} here" for n in names
               if theirs.get(n, missing) != mine.get(n, missing)]
    return "; ".join(changed) or "the same values, written differently"


# ------------------------------------------------------------------------------------------- VAE
def _optimise(opt, loss: torch.Tensor, parameters) -> float:
    """One optimiser step on ``loss`` (gradients clipped to norm 1); returns the loss value."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, 1.0)
    opt.step()
    return loss.item()


def vae_roundtrip(vae, frames: torch.Tensor) -> torch.Tensor:
    """(B, T, 3, H, W) in [0, 1] -> decoded mode latents, the same shape, in [0, 1] (each clip decoded together)."""
    t = frames.shape[1]
    with torch.no_grad():
        z = vae.encode(frames.flatten(0, 1) * 2 - 1).latent_dist.mode()
        out = vae.decode(z, num_frames=t).sample
    return ((out + 1) / 2).clamp(0, 1).view_as(frames)


def _edges(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def vae_loss(vae, clips: data.Clips, settings: TrainSettings, generator: torch.Generator) -> torch.Tensor:
    """Reconstruction loss of one batch of clips, decoded in chunks of a random length that divides the clip."""
    t = clips.frames.shape[1]
    x = clips.frames.flatten(0, 1) * 2 - 1
    chunks = [c for c in range(1, t + 1) if t % c == 0]
    chunk = chunks[int(torch.randint(len(chunks), (1,), generator=generator))]
    with bf16_autocast(settings.bf16):
        z = vae.encode(x).latent_dist.mode()
        noise = torch.randn(z.shape, generator=generator)
        noisy = z + settings.latent_noise * z.detach().float().std() * noise
        recon = vae.decode(noisy, num_frames=chunk).sample        # (b t / chunk) clips of `chunk` frames each
    diff = recon.float() - x
    edges = sum((a - e).abs().mean() for a, e in zip(_edges(recon.float()), _edges(x)))
    return diff.abs().mean() + (diff ** 2).mean() + settings.edge_weight * edges + 1e-6 * (z.float() ** 2).mean()


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


def _loop(name: str, total: int, modules: dict, optimizer, step_fn, work: Work, settings: TrainSettings,
          progress: bool, log, every=None) -> dict:
    """Run ``step_fn(step) -> loss`` from the last checkpoint to ``total`` steps, checkpointing as it goes.

    Returns the stage's log entry: losses per step and seconds spent (summed over sessions). ``every(step)``
    runs after each step (snapshots).
    """
    checkpoint = work.path(f"{name}-state.safetensors")
    entry = load_state(checkpoint, modules, optimizer) if checkpoint.is_file() else {"step": 0, "seconds": 0.0,
                                                                                    "loss": []}
    if entry["step"]:
        log(f"{name}: resuming at step {entry['step']} of {total}")
    bar = progress_bar(total=total, initial=entry["step"], desc=name, enabled=progress)
    started = time.time() - entry["seconds"]
    for step in range(entry["step"], total):
        value = step_fn(step)
        entry["loss"].append([step + 1, round(value, 5)])
        bar.update()
        if every is not None:
            every(step, entry)
        if (step + 1) % settings.checkpoint_every == 0 or step + 1 == total:
            entry["step"], entry["seconds"] = step + 1, round(time.time() - started, 1)
            save_state(checkpoint, modules, optimizer, entry)
    bar.close()
    return entry


def train_vae(vae, canvases: torch.Tensor, settings: TrainSettings, work: Work, progress: bool, log) -> dict:
    """Stage 2: start the VAE as a thumbnail codec (:func:`svd_lab.small.init.thumbnail_init`), train encoder +
    temporal decoder, rescale the latents (see the module docstring)."""
    from svd_lab.small.init import thumbnail_init

    calibration = data.generate(32, seed=_seed(settings.seed, 1, 2), frames=1, size=settings.vae_crop,
                                leaves=canvases).frames[:, 0]
    thumbnail_init(vae, calibration)
    vae.train().requires_grad_(True)
    opt = torch.optim.AdamW(vae.parameters(), settings.vae_lr, weight_decay=0.0)

    def step_fn(step: int) -> float:
        for group in opt.param_groups:
            group["lr"] = settings.vae_lr * lr_factor(step / settings.vae_steps, step, 50)
        generator = torch.Generator().manual_seed(_seed(settings.seed, step, 1))
        clips = data.generate(settings.vae_batch, seed=_seed(settings.seed, step, 1), frames=settings.vae_frames,
                              size=settings.vae_crop, leaves=canvases)
        loss = vae_loss(vae, clips, settings, generator)
        return _optimise(opt, loss, vae.parameters())

    entry = _loop("vae", settings.vae_steps, {"vae": vae}, opt, step_fn, work, settings, progress, log)
    vae.eval().requires_grad_(False)
    check = data.generate(16, seed=_seed(settings.seed, 0, 2), leaves=canvases)
    entry["latent_rescale"] = round(rescale_latents(vae, check.frames), 5)
    return entry


#: held-out crops in the training log's VAE table (beside the course images and the held-out photos)
QUALITY_CROPS = 8


def vae_quality(vae) -> dict:
    """The VAE against the thumbnail baseline (PSNR dB, pixel space) on the evaluation images, for the log."""
    from svd_lab.small import metrics

    images = metrics.evaluation_images(QUALITY_CROPS)
    ours, thumb, values = metrics.vae_scores(vae, images)
    return {"latent_values": values, "psnr_db": ours, "thumbnail_psnr_db": thumb}


def train_decoder(vae, canvases: torch.Tensor, settings: TrainSettings, work: Work, progress: bool, log,
                  size: int = data.SIZE) -> dict:
    """Stage 3: the VAE (the decoder alone if not ``settings.tune_encoder``) on whole ``size`` x ``size`` clips, a
    share blended with smooth fields and a share with thin lines drawn in (see the module docstring)."""
    vae.eval().requires_grad_(False)
    tuned = vae if settings.tune_encoder else vae.decoder
    tuned.train().requires_grad_(True)
    opt = torch.optim.AdamW(tuned.parameters(), settings.decoder_lr, weight_decay=0.0)

    def step_fn(step: int) -> float:
        for group in opt.param_groups:
            group["lr"] = settings.decoder_lr * lr_factor(step / settings.decoder_steps, step, 20)
        seed = _seed(settings.seed, DECODER_STREAM_OFFSET + step, 1)
        generator = torch.Generator().manual_seed(seed)
        clips = data.generate(settings.decoder_batch, seed=seed, frames=settings.vae_frames, size=size,
                              leaves=canvases)
        clips.frames = data.smooth_fields(clips.frames, generator, settings.smooth_share,
                                           settings.smooth_whole)
        if settings.lines_share:           # (0: draws nothing from the generator, as before lines existed)
            clips.frames = data.thin_lines(clips.frames, generator, settings.lines_share)
        loss = vae_loss(vae, clips, settings, generator)
        return _optimise(opt, loss, tuned.parameters())

    key = "vae" if settings.tune_encoder else "decoder"          # the checkpoint's name for what it holds
    entry = _loop("decoder", settings.decoder_steps, {key: tuned}, opt, step_fn, work, settings, progress, log)
    vae.eval().requires_grad_(False)
    return entry


def _quality_line(quality: dict) -> str:
    """The first five images of a :func:`vae_quality` entry for the log: VAE / thumbnail PSNR dB."""
    ours, thumb = quality["psnr_db"], quality["thumbnail_psnr_db"]
    return "PSNR vs thumbnail: " + ", ".join(f"{n} {ours[n]:.1f}/{thumb[n]:.1f}" for n in list(ours)[:5])


# ------------------------------------------------------------------------------------------- UNet data
@dataclass
class LatentPool:
    """Clips encoded once: ``latents`` (N, F, C, h, w) unscaled float32, ``first`` (N, S, 3, H, W) uint8 (the frames
    a window can start at: S = F - FRAMES + 1), ``fps_id`` and ``motion_bucket_id`` (N,)."""

    latents: torch.Tensor
    first: torch.Tensor
    fps_id: torch.Tensor
    motion_bucket_id: torch.Tensor

    def save(self, path: Path) -> None:
        from safetensors.torch import save

        from svd_lab.atomic import write_bytes_atomic

        write_bytes_atomic(path, save({k: v.contiguous() for k, v in asdict(self).items()}), overwrite=True)

    @classmethod
    def load(cls, path: Path) -> LatentPool:
        from safetensors.torch import load_file

        return cls(**{k: v.clone() for k, v in load_file(path).items()})


@torch.no_grad()
def build_pool(vae, canvases: torch.Tensor, settings: TrainSettings, progress: bool, log) -> LatentPool:
    """Stage 3: ``pool_clips`` clips of ``pool_frames`` frames, encoded (posterior mode, unscaled)."""
    chunk = 16
    latents, first, fps, buckets = [], [], [], []
    starts = settings.pool_frames - data.FRAMES + 1
    bar = progress_bar(total=settings.pool_clips, desc="encoding clips", enabled=progress)
    for start in range(0, settings.pool_clips, chunk):
        n = min(chunk, settings.pool_clips - start)
        clips = data.generate(n, seed=_seed(settings.seed, start, 0), frames=settings.pool_frames, leaves=canvases)
        with bf16_autocast(settings.bf16):
            z = vae.encode(clips.frames.flatten(0, 1) * 2 - 1).latent_dist.mode()
        latents.append(z.float().view(n, settings.pool_frames, *z.shape[1:]))
        first.append((clips.frames[:, :starts] * 255).round().to(torch.uint8))
        fps.append(clips.fps_id), buckets.append(clips.motion_bucket_id)
        bar.update(n)
    bar.close()
    return LatentPool(torch.cat(latents), torch.cat(first), torch.cat(fps), torch.cat(buckets))


def _batch(pool: LatentPool, generator: torch.Generator, batch: int, frames: int,
           fast: tuple[float, int] | None = None):
    """Random windows: clean scaled latents (B, T, C, h, w), first frames (B, 3, H, W) in [0, 1], fps, bucket.

    ``fast`` = (share, bucket): the first ``round(share * B)`` windows come from clips at ``motion_bucket_id >=
    bucket`` instead of the whole pool (stage 6). Without it the draws are those of stage 5."""
    idx = torch.randint(len(pool.latents), (batch,), generator=generator)
    if fast is not None:
        share, bucket = fast
        quick = (pool.motion_bucket_id >= bucket).nonzero().flatten()
        if len(quick) == 0:
            raise UserError(f"the latent pool holds no clip at motion_bucket_id >= {bucket} (fast_bucket)")
        k = round(share * batch)
        idx[:k] = quick[torch.randint(len(quick), (k,), generator=generator)]
    start = torch.randint(pool.first.shape[1], (batch,), generator=generator)
    window = torch.arange(frames)
    z = pool.latents[idx.unsqueeze(1), start.unsqueeze(1) + window] * LATENT_SCALING
    first = pool.first[idx, start].float() / 255.0
    return z, first, pool.fps_id[idx], pool.motion_bucket_id[idx]


def svd_loss(components: SVDComponents, z0: torch.Tensor, first: torch.Tensor, fps_id: torch.Tensor,
             motion_bucket_id: torch.Tensor, settings, generator: torch.Generator, autocast=None) -> torch.Tensor:
    """SVD's training loss for one batch (see the module docstring). ``z0`` scaled latents (B, T, C, h, w).

    ``settings`` gives ``p_mean``, ``p_std``, ``drop`` (and ``bf16`` when ``autocast`` is None). The random numbers
    are drawn on the CPU from ``generator`` and moved to the batch's device, so a run repeats exactly on any device;
    ``autocast``: a context manager for the UNet call (mixed precision; default bf16 autocast when asked for).
    """
    b, t = z0.shape[:2]
    device = z0.device

    def randn(*shape):
        return torch.randn(*shape, generator=generator).to(device)

    cond_aug = torch.exp(data.COND_AUG_LOG_MEAN + data.COND_AUG_LOG_STD * randn(b))
    with torch.no_grad():
        crossattn = components.image_encoder(components.clip_preprocessing(first)).image_embeds.unsqueeze(1)
        noisy_first = first * 2 - 1 + cond_aug.view(b, 1, 1, 1) * randn(*first.shape)
        concat = components.vae.encode(noisy_first).latent_dist.mode()                  # unscaled, as SVD
        keep = (torch.rand(b, generator=generator).to(device) >= settings.drop).float()
        crossattn = crossattn * keep.view(b, 1, 1)
        concat = (concat * keep.view(b, 1, 1, 1)).unsqueeze(1).expand(-1, t, -1, -1, -1)
    ids = torch.stack([fps_id.float().to(device), motion_bucket_id.float().to(device), cond_aug], dim=1)
    sigma = torch.exp(settings.p_mean + settings.p_std * randn(b))
    x = z0 + sigma.view(b, 1, 1, 1, 1) * randn(*z0.shape)
    c_skip, c_out, c_in, c_noise = v_scaling_preconditioning(sigma.view(b, 1, 1, 1, 1))
    target = (z0 - c_skip * x) / c_out
    with autocast if autocast is not None else bf16_autocast(getattr(settings, "bf16", False)):
        raw = components.unet(torch.cat([c_in * x, concat], dim=2), c_noise.view(b),
                              encoder_hidden_states=crossattn, added_time_ids=ids).sample
    return ((raw.float() - target) ** 2).mean()


def train_unet(components: SVDComponents, pool: LatentPool, settings: TrainSettings, work: Work, progress: bool,
               log, snapshot_every: int = 0) -> dict:
    """Stage 4: the UNet (started by :func:`svd_lab.small.init.unet_init`) with SVD's objective on random windows
    of the pool."""
    from svd_lab.small import metrics
    from svd_lab.small.init import unet_init

    unet = components.unet
    unet_init(unet)
    unet.train().requires_grad_(True)
    opt = torch.optim.AdamW(unet.parameters(), settings.lr, weight_decay=0.0)

    def step_fn(step: int) -> float:
        for group in opt.param_groups:
            group["lr"] = settings.lr * lr_factor(step / settings.steps, step, settings.warmup)
        generator = torch.Generator().manual_seed(_seed(settings.seed, step, 3))
        z0, first, fps_id, bucket = _batch(pool, generator, settings.batch, data.FRAMES)
        loss = svd_loss(components, z0, first, fps_id, bucket, settings, generator)
        return _optimise(opt, loss, unet.parameters())

    def snapshot(step: int, entry: dict) -> None:
        if snapshot_every and (step + 1) % snapshot_every == 0:
            unet.eval()
            snap = {"step": step + 1, **metrics.snapshot(components)}
            unet.train().requires_grad_(True)  # the pipeline behind the snapshot froze every network
            entry.setdefault("snapshots", []).append(snap)
            log(f"step {step + 1}: " + ", ".join(f"{k} {v}" for k, v in snap.items() if k != "step"))

    entry = _loop("unet", settings.steps, {"unet": unet}, opt, step_fn, work, settings, progress, log, snapshot)
    components.eval()
    return entry


def train_fast(components: SVDComponents, pool: LatentPool, settings: TrainSettings, work: Work, progress: bool,
               log) -> dict:
    """Stage 6: the UNet of stage 5 (rounded to fp16 by the caller) on, with ``fast_share`` of every batch from
    fast pans (see the module docstring)."""
    unet = components.unet
    unet.train().requires_grad_(True)
    opt = torch.optim.AdamW(unet.parameters(), settings.fast_lr, weight_decay=0.0)
    fast = (settings.fast_share, settings.fast_bucket)

    def step_fn(step: int) -> float:
        for group in opt.param_groups:
            group["lr"] = settings.fast_lr * lr_factor(step / settings.fast_steps, step, 20)
        generator = torch.Generator().manual_seed(_seed(settings.seed, FAST_STREAM_OFFSET + step, 3))
        z0, first, fps_id, bucket = _batch(pool, generator, settings.batch, data.FRAMES, fast)
        loss = svd_loss(components, z0, first, fps_id, bucket, settings, generator)
        return _optimise(opt, loss, unet.parameters())

    entry = _loop("fast", settings.fast_steps, {"unet": unet}, opt, step_fn, work, settings, progress, log)
    components.eval()
    return entry


# ------------------------------------------------------------------------------------------- the whole run
def work_folder(out: str | os.PathLike) -> Path:
    """Where a run writing ``out`` keeps its stages: ``<out>.work`` beside it."""
    out = Path(out)
    return out.with_name(out.name + ".work")


def train(settings: TrainSettings, out: str | os.PathLike, progress: bool = True, log=print,
          snapshot_every: int = 0, until: str | None = None) -> tuple[SVDComponents | None, dict]:
    """Run (or continue) the stages and write the model to ``out``; returns the components (eval mode) and the
    training record. ``until``: stop after that stage (``canvases``, ``vae``, ``decoder``, ``pool``, ``unet``), e.g.
    to split the run over sessions; the next call continues. ``out`` must not exist (nothing is overwritten)."""
    from svd_lab.small.model import save_small
    from svd_lab.svd.components import build_components

    out = Path(out)
    if out.exists():
        raise UserError(f"{out} already exists; choose another output folder (nothing is overwritten)")
    if until is not None and until not in STAGES[:-1]:
        raise UserError(f"until must be one of {', '.join(STAGES[:-1])}, got {until!r}")
    work = Work(work_folder(out), settings)

    # 1. canvases
    canvases_file = work.path("canvases.safetensors")
    if not canvases_file.is_file():
        t0 = time.time()
        canvases = data.leaves_pool(settings.canvases, seed=_seed(settings.seed, 0, 0))
        _save_tensor(canvases_file, canvases)
        work.log["canvases"] = {"count": settings.canvases, "seconds": round(time.time() - t0, 1)}
        work.save_log()
        log(f"canvases: {settings.canvases} dead-leaves images in {work.log['canvases']['seconds']} s")
    canvases = _load_tensor(canvases_file)
    if until == "canvases":
        return None, work.log

    components = build_components("small", seed=settings.seed)
    components.source = "svd-lab small train"
    vae = components.vae

    # 2. the VAE on crops
    vae_file = work.path("vae.safetensors")
    if not vae_file.is_file():
        entry = train_vae(vae, canvases, settings, work, progress, log)
        entry["quality"] = vae_quality(vae)
        _keep_vae(work, "vae", vae, entry, f"VAE: {settings.vae_steps} steps", log)
    vae_entry = load_state(vae_file, {"vae": vae})
    vae.eval().requires_grad_(False)
    if until == "vae":
        return None, work.log

    # 3. the VAE on whole frames, before any latent is encoded: the UNet learns the latents of the VAE that ships
    decoder_file = work.path("decoder.safetensors")
    if not decoder_file.is_file():
        _round_to_half(vae)
        before = vae_quality(vae)
        entry = train_decoder(vae, canvases, settings, work, progress, log, components.native_size)
        check = data.generate(16, seed=_seed(settings.seed, 0, 2), leaves=canvases)
        entry["latent_rescale"] = round(rescale_latents(vae, check.frames), 5)
        entry["quality_before"], entry["quality"] = before, vae_quality(vae)
        _keep_vae(work, "decoder", vae, entry, f"decoder: {settings.decoder_steps} steps", log)
    decoder_entry = load_state(decoder_file, {"vae": vae})
    vae.eval().requires_grad_(False)
    if until == "decoder":
        return None, work.log

    # 4. pool
    pool_file = work.path("pool.safetensors")
    if not pool_file.is_file():
        t0 = time.time()
        build_pool(vae, canvases, settings, progress, log).save(pool_file)
        work.log["pool"] = {"clips": settings.pool_clips, "seconds": round(time.time() - t0, 1)}
        work.save_log()
        log(f"latent pool: {settings.pool_clips} clips x {settings.pool_frames} frames in "
            f"{work.log['pool']['seconds']} s")
    pool = LatentPool.load(pool_file)
    if until == "pool":
        return None, work.log

    # 5. UNet
    unet_file = work.path("unet.safetensors")
    if not unet_file.is_file():
        entry = train_unet(components, pool, settings, work, progress, log, snapshot_every)
        save_state(unet_file, {"unet": components.unet}, meta=entry)
        work.log["unet"] = {k: v for k, v in entry.items() if k != "loss"}
        work.save_log()
        log(f"UNet: {settings.steps} steps in {entry['seconds']} s")
    unet_entry = load_state(unet_file, {"unet": components.unet})
    if until == "unet":
        return None, work.log

    # 6. the UNet on fast pans, from stage 5 as it would ship (so a run may take stages 1-5 from a shipped model)
    if not work.path("fast-state.safetensors").is_file():
        _round_to_half(components.unet)
    fast_entry = train_fast(components, pool, settings, work, progress, log)
    from svd_lab.baselines import machine_signature

    seconds = {"canvases": work.log["canvases"]["seconds"], "vae": vae_entry["seconds"],
               "decoder": decoder_entry["seconds"], "pool": work.log["pool"]["seconds"],
               "unet": unet_entry["seconds"], "fast": fast_entry["seconds"]}
    # the machine goes with the weights: float results differ between CPU kinds (SIMD paths) and torch versions,
    # so the same recipe is bit-for-bit repeatable on the same kind of machine only
    record = {"settings": asdict(settings), "machine": machine_signature(),
              "parameters": components.parameter_counts(),
              "vae": vae_entry, "decoder": decoder_entry, "pool": work.log["pool"],
              "unet": {k: v for k, v in unet_entry.items() if k not in ("loss", "snapshots")},
              "loss": unet_entry["loss"], "snapshots": unet_entry.get("snapshots", []), "fast": fast_entry,
              "seconds": seconds, "total_seconds": round(sum(seconds.values()), 1),
              "unet_steps": settings.steps,
              "seconds_per_step": round(unet_entry["seconds"] / max(settings.steps, 1), 4)}
    log(f"UNet: {settings.steps} steps in {unet_entry['seconds']} s ({record['seconds_per_step']} s/step), then "
        f"{settings.fast_steps} on fast pans in {fast_entry['seconds']} s")
    save_small(components, out, record)
    shutil.rmtree(work.folder, ignore_errors=True)
    return components, record


def _keep_vae(work: Work, name: str, vae, entry: dict, done: str, log) -> None:
    """A finished VAE stage: its weights and record into ``<work>/<name>.safetensors``, its summary into the log."""
    save_state(work.path(f"{name}.safetensors"), {"vae": vae}, meta=entry)
    work.log[name] = {k: v for k, v in entry.items() if k != "loss"}
    work.save_log()
    log(f"{done} in {entry['seconds']} s; {_quality_line(entry['quality'])}")


@torch.no_grad()
def _round_to_half(module: torch.nn.Module) -> None:
    """Round every parameter to float16 and back, as a shipped checkpoint holds it: stage 3 starts from the stage-2
    VAE as it would ship, so a run may take stages 1-2 from a shipped model's fp16 VAE and continue exactly."""
    for parameter in module.parameters():
        parameter.copy_(parameter.half().float())


def _save_tensor(path: Path, tensor: torch.Tensor) -> None:
    from safetensors.torch import save

    from svd_lab.atomic import write_bytes_atomic

    write_bytes_atomic(path, save({"tensor": tensor.contiguous()}), overwrite=True)


def _load_tensor(path: Path) -> torch.Tensor:
    from safetensors.torch import load_file

    return load_file(path)["tensor"].clone()
