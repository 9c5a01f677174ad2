r"""Does the tiny SVD obey its conditioning? Five measured scores on images it never saw in training.

Evaluation images: the course's three assets (rocket, astronaut, coffee: held out from training) at the mini
size, and 32 crops from the held-out bottom band of the training photos (:mod:`svd_lab.svdmini.data`). Videos
are sampled at the mini profile's default settings (25 Euler steps, guidance 1.0 -> 2.5, seed 23 + image index).

Motion is measured by **phase correlation**: for grey, Hann-windowed frames ``g_0`` and ``g_t``, the inverse FFT
of the normalised cross-power spectrum ``G_0 G_t^* / |G_0 G_t^*|`` peaks at their relative shift; a parabola
through the peak and its neighbours gives sub-pixel precision. The *per-frame displacement* of a video is the
least-squares slope (through the origin) of the shift of frame t against t, counted positive in the direction
of the data's pan (content moving left).

Scores:

(a) frame-0 fidelity: PSNR (dB) of the first generated frame against the VAE round trip of the input;
(b) motion follows motion_bucket_id: Spearman correlation between motion_bucket_id (0, 64, 127, 191, 255) and the
    measured per-frame displacement, over all (image, bucket) videos at fps_id 6;
(c) fps_id: share of (image, bucket > 0) pairs whose displacement at fps_id 6 exceeds that at fps_id 12 (lower
    fps = bigger steps between frames);
(d) temporal coherence: mean absolute error (0..1 scale) between frame t and frame 0 moved by the ground-truth
    camera motion (t times the requested step), over the part of the frame that was visible in frame 0,
    averaged over t >= 1 and the bucket > 0 videos;
(e) cond_aug: frame-0 PSNR at cond_aug 0, 0.02, 0.1, 0.3 (bucket 127), averaged over the images; passes when it
    does not increase.

Baselines: *real clips* (each image panned by exactly the requested step, through the same VAE round trip),
*static copy* (the input repeated, through the VAE: fails b and c by construction), the *untrained* model
(random weights of the same architecture) and the model under test.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from svd_lab.svdmini import data

BUCKETS = (0, 64, 127, 191, 255)
FPS_DEFAULT, FPS_LOW_RATE = 6, 12
COND_AUGS = (0.0, 0.02, 0.1, 0.3)
EVAL_SEED = 1234
NUM_CROPS = 32
#: the bar for the shipped model (issue 15)
BAR = {"frame0_psnr_db": 24.0, "motion_spearman": 0.9, "fps_share": 0.9, "warp_ratio_to_static": 0.5}


# ------------------------------------------------------------------------------------------- measuring motion
def _hann(h: int, w: int) -> torch.Tensor:
    return torch.hann_window(h, periodic=False).view(-1, 1) * torch.hann_window(w, periodic=False).view(1, -1)


def _subpixel(c_minus: float, c_0: float, c_plus: float) -> float:
    denom = c_minus - 2 * c_0 + c_plus
    return 0.0 if abs(denom) < 1e-12 else 0.5 * (c_minus - c_plus) / denom


def phase_shift(reference: torch.Tensor, moved: torch.Tensor) -> tuple[float, float]:
    """(dy, dx) in pixels such that ``moved(y, x) ~ reference(y + dy, x + dx)`` (content moved by -dx in x).

    Both are (3, H, W) or (H, W) images; colour is averaged to grey.
    """
    a = reference.float().mean(0) if reference.ndim == 3 else reference.float()
    b = moved.float().mean(0) if moved.ndim == 3 else moved.float()
    h, w = a.shape
    win = _hann(h, w)
    fa = torch.fft.fft2((a - a.mean()) * win)
    fb = torch.fft.fft2((b - b.mean()) * win)
    cross = fb * fa.conj()
    cross = cross / cross.abs().clamp_min(1e-9)
    corr = torch.fft.ifft2(cross).real
    peak = int(torch.argmax(corr))
    py, px = divmod(peak, w)
    dy = py + _subpixel(corr[(py - 1) % h, px].item(), corr[py, px].item(), corr[(py + 1) % h, px].item())
    dx = px + _subpixel(corr[py, (px - 1) % w].item(), corr[py, px].item(), corr[py, (px + 1) % w].item())
    dy = dy - h if dy > h / 2 else dy
    dx = dx - w if dx > w / 2 else dx
    return -dy, -dx


def per_frame_displacement(frames: torch.Tensor) -> float:
    """Least-squares pixels per frame of a video (T, 3, H, W), positive = content moving left (the data's pan)."""
    t = frames.shape[0]
    if t < 2:
        return 0.0
    shifts = torch.tensor([phase_shift(frames[0], frames[i])[1] for i in range(1, t)])
    times = torch.arange(1, t, dtype=torch.float32)
    return float((shifts * times).sum() / (times ** 2).sum())


def warp_error(frames: torch.Tensor, step: float) -> float:
    """Mean |frame t - frame 0 moved left by t * step| over the columns frame 0 could show, t >= 1 (0..1)."""
    t, _, _, w = frames.shape
    expected = data.pan_image(frames[0], step, t)
    errors = []
    for i in range(1, t):
        visible = w - math.ceil(i * step) - 1
        if visible < 4:
            continue
        errors.append((frames[i, ..., :visible] - expected[i, ..., :visible]).abs().mean().item())
    return float(sum(errors) / len(errors)) if errors else float("nan")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.float() - b.float()) ** 2).mean().item()
    return 99.0 if mse == 0 else 10 * math.log10(1.0 / mse)


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    def ranks(values):
        order = sorted(range(len(values)), key=lambda i: values[i])
        r = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return torch.tensor(r)

    rx, ry = ranks(x), ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = (rx.norm() * ry.norm()).item()
    return float((rx * ry).sum().item() / denom) if denom > 0 else 0.0


# ------------------------------------------------------------------------------------------- evaluation images
def evaluation_images(num_crops: int = NUM_CROPS, assets: bool = True) -> list[tuple[str, torch.Tensor]]:
    """(name, image (3, 64, 64) in [0, 1]): the three held-out course assets and held-out crops."""
    from svd_lab.paths import project_root
    from svd_lab.svd.images import image_to_tensor, load_image

    images = []
    if assets:
        for name in data.HELD_OUT_ASSETS:
            path = project_root() / "assets" / f"{name}.png"
            images.append((name, image_to_tensor(load_image(path, width=data.SIZE, height=data.SIZE))[0]))
    if num_crops:
        crops = data.generate(num_crops, seed=EVAL_SEED, frames=1, held_out=True, motion_bucket_id=0, fps_id=6)
        images += [(f"crop{i:02d}:{name}", crops.frames[i, 0]) for i, name in enumerate(crops.photo)]
    return images


# ------------------------------------------------------------------------------------------- generating
@dataclass
class Job:
    image: int            # index into the image list
    motion_bucket_id: int
    fps_id: int
    cond_aug: float


def generate_jobs(pipe, images: list[torch.Tensor], jobs: list[Job], num_frames: int, num_steps: int,
                  min_guidance: float, max_guidance: float, batch: int = 16) -> list[torch.Tensor]:
    """Videos (T, 3, H, W) in [0, 1] for each job, as ``pipe.run`` makes them, batched through the sampler.

    Each job's noise comes from its own ``torch.Generator('cpu').manual_seed(23 + image index)``, drawn in the
    pipeline's order (conditioning noise, then latent noise); only the batching differs from ``pipe.run``.
    """
    from svd_lab.sampling import edm
    from svd_lab.svd import conditioning

    videos = []
    for start in range(0, len(jobs), batch):
        chunk = jobs[start:start + batch]
        conds, noises = [], []
        for job in chunk:
            image = images[job.image].unsqueeze(0)
            h, w = image.shape[-2:]
            generator = torch.Generator("cpu").manual_seed(23 + job.image)
            conds.append(pipe.encode(image, num_frames, job.fps_id, job.motion_bucket_id, job.cond_aug, generator))
            noises.append(conditioning.randn((1, num_frames, 4, h // 8, w // 8), generator, pipe.device))
        cond = {key: torch.cat([c[key] for c in conds]) for key in conds[0]}
        noise = torch.cat(noises)
        sigmas = edm.karras_sigmas(num_steps, 0.002, 700.0, 7.0)
        guidance = edm.linear_guidance(num_frames, min_guidance, max_guidance)
        denoiser = edm.Denoiser(conditioning.UNetNetwork(pipe.components.unet), edm.v_scaling_preconditioning)
        latents = edm.sample(denoiser, noise, sigmas, cond, uncond_builder=conditioning.unconditional,
                             guidance=guidance, progress=False)
        for i in range(len(chunk)):
            videos.append(pipe.decode(latents[i:i + 1], num_frames))
    return videos


def _roundtrip_clips(vae, clips: torch.Tensor) -> torch.Tensor:
    from svd_lab.svdmini.train import vae_roundtrip

    return vae_roundtrip(vae, clips)


# ------------------------------------------------------------------------------------------- scores
@dataclass
class Scores:
    name: str
    frame0_psnr_db: float
    motion_spearman: float
    fps_share: float
    warp_error: float
    warp_ratio_to_static: float | None = None
    cond_aug_psnr_db: list | None = None
    cond_aug_monotone: bool | None = None
    displacement_by_bucket: dict = field(default_factory=dict)
    videos: int = 0

    def passes(self) -> dict[str, bool]:
        return {"frame0_psnr_db": self.frame0_psnr_db >= BAR["frame0_psnr_db"],
                "motion_spearman": self.motion_spearman >= BAR["motion_spearman"],
                "fps_share": self.fps_share >= BAR["fps_share"],
                "warp_ratio_to_static": (self.warp_ratio_to_static is not None
                                         and self.warp_ratio_to_static <= BAR["warp_ratio_to_static"]),
                "cond_aug_monotone": bool(self.cond_aug_monotone)}

    def meets_bar(self) -> bool:
        return all(self.passes().values())

    def to_dict(self) -> dict:
        return {**asdict(self), "passes": self.passes()}


def _score(name: str, images: list[torch.Tensor], video_for, reference_frame0: list[torch.Tensor],
           cond_aug_psnr: list[float] | None) -> Scores:
    """Scores from ``video_for(image index, bucket, fps_id) -> (T, 3, H, W)``."""
    buckets, displacement, psnrs, warps = [], [], [], []
    by_bucket: dict[int, list[float]] = {b: [] for b in BUCKETS}
    low_rate_wins, low_rate_pairs = 0, 0
    for i in range(len(images)):
        for bucket in BUCKETS:
            video = video_for(i, bucket, FPS_DEFAULT)
            d = per_frame_displacement(video)
            buckets.append(bucket), displacement.append(d)
            by_bucket[bucket].append(d)
            if bucket == 127:
                psnrs.append(psnr(video[0], reference_frame0[i]))
            if bucket > 0:
                warps.append(warp_error(video, float(data.speed_to_step(bucket, FPS_DEFAULT))))
                d_low = per_frame_displacement(video_for(i, bucket, FPS_LOW_RATE))
                low_rate_pairs += 1
                low_rate_wins += int(d > d_low)
    monotone = None
    if cond_aug_psnr is not None:
        monotone = all(b <= a for a, b in itertools.pairwise(cond_aug_psnr))
    return Scores(name=name, frame0_psnr_db=round(sum(psnrs) / len(psnrs), 2),
                  motion_spearman=round(spearman(buckets, displacement), 3),
                  fps_share=round(low_rate_wins / max(low_rate_pairs, 1), 3),
                  warp_error=round(sum(warps) / len(warps), 4),
                  cond_aug_psnr_db=None if cond_aug_psnr is None else [round(v, 2) for v in cond_aug_psnr],
                  cond_aug_monotone=monotone,
                  displacement_by_bucket={b: round(sum(v) / len(v), 3) for b, v in by_bucket.items()},
                  videos=len(images) * (2 * len(BUCKETS) - 1))


def score_model(components, images: list[torch.Tensor], name: str, num_steps: int | None = None,
                cond_augs: tuple = COND_AUGS, batch: int = 16) -> Scores:
    """Sample every evaluation video from ``components`` and score them (see the module docstring)."""
    from svd_lab.svd.pipeline import SVDPipeline
    from svd_lab.svd.versions import get_version
    from svd_lab.svdmini.train import vae_roundtrip

    pipe = SVDPipeline(components, device="cpu", dtype="float32", memory="resident")
    spec = get_version(components.version)
    steps = num_steps or spec.num_steps
    jobs = []
    for i in range(len(images)):
        for bucket in BUCKETS:
            jobs.append(Job(i, bucket, FPS_DEFAULT, spec.cond_aug))
            if bucket > 0:
                jobs.append(Job(i, bucket, FPS_LOW_RATE, spec.cond_aug))
        for aug in cond_augs:
            if aug != spec.cond_aug:
                jobs.append(Job(i, 127, FPS_DEFAULT, aug))
    videos = generate_jobs(pipe, images, jobs, data.FRAMES, steps, spec.min_guidance, spec.max_guidance, batch)
    table = {(j.image, j.motion_bucket_id, j.fps_id, j.cond_aug): v for j, v in zip(jobs, videos)}
    reference = [vae_roundtrip(components.vae, img.view(1, 1, *img.shape))[0, 0] for img in images]
    cond_aug_psnr = [sum(psnr(table[(i, 127, FPS_DEFAULT, aug)][0], reference[i]) for i in range(len(images)))
                     / len(images) for aug in cond_augs]
    scores = _score(name, images, lambda i, b, f: table[(i, b, f, spec.cond_aug)], reference, cond_aug_psnr)
    scores.videos = len(videos)
    return scores


def score_reference(vae, images: list[torch.Tensor], name: str) -> Scores:
    """'real clips' (each image panned by the requested step) or 'static copy', both through the VAE."""
    from svd_lab.svdmini.train import vae_roundtrip

    reference = [vae_roundtrip(vae, img.view(1, 1, *img.shape))[0, 0] for img in images]
    cache: dict = {}

    def video_for(i, bucket, fps):
        step = float(data.speed_to_step(bucket, fps)) if name == "real clips" else 0.0
        key = (i, step)
        if key not in cache:
            clip = data.pan_image(images[i], step, data.FRAMES)
            cache[key] = vae_roundtrip(vae, clip.unsqueeze(0))[0]
        return cache[key]

    return _score(name, images, video_for, reference, None)


def evaluate(model_folder: str | Path | None = None, num_crops: int = NUM_CROPS, assets: bool = True,
             baselines: bool = True, num_steps: int | None = None, log=print) -> list[Scores]:
    """The metric table: real clips, static copy, untrained and the model (default: the shipped one)."""
    from svd_lab.svd.components import build_components
    from svd_lab.svdmini.model import load_mini

    named = evaluation_images(num_crops, assets)
    images = [img for _, img in named]
    model = load_mini(model_folder)
    rows = []
    if baselines:
        rows.append(score_reference(model.vae, images, "real clips"))
        rows.append(score_reference(model.vae, images, "static copy"))
        log(f"baselines scored on {len(images)} images")
        rows.append(score_model(build_components("mini", seed=0), images, "untrained", num_steps))
        log("untrained model scored")
    rows.append(score_model(model, images, "trained" if model_folder else "shipped", num_steps))
    static = next((r for r in rows if r.name == "static copy"), None)
    if static is None:
        static = score_reference(model.vae, images, "static copy")
    for row in rows:
        row.warp_ratio_to_static = round(row.warp_error / static.warp_error, 3) if static.warp_error else None
    return rows


def snapshot(components, num_crops: int = 4, num_steps: int = 10) -> dict:
    """A cheap progress check during training: frame-0 PSNR, bucket Spearman and warp error on a few crops."""
    named = evaluation_images(num_crops, assets=False)
    images = [img for _, img in named]
    scores = score_model(components, images, "snapshot", num_steps, cond_augs=(0.02,), batch=32)
    return {"frame0_psnr_db": scores.frame0_psnr_db, "motion_spearman": scores.motion_spearman,
            "fps_share": scores.fps_share, "warp_error": scores.warp_error}


def format_table(rows: list[Scores]) -> str:
    """A Markdown table of the scores, with the bar as the first line."""
    augs = "/".join(str(a) for a in COND_AUGS)
    head = ("| | (a) frame-0 PSNR dB | (b) bucket Spearman | (c) fps share | (d) warp error (x static) "
            f"| (e) PSNR at cond_aug {augs} |")
    bar = (f"| bar | >= {BAR['frame0_psnr_db']} | >= {BAR['motion_spearman']} | >= {BAR['fps_share']:.0%} "
           f"| <= {BAR['warp_ratio_to_static']} x static | decreasing |")
    lines = [head, "|---|---|---|---|---|---|", bar]
    for r in rows:
        ratio = f" ({r.warp_ratio_to_static:.2f}x)" if r.warp_ratio_to_static is not None else ""
        aug = ("n/a" if r.cond_aug_psnr_db is None else
               " / ".join(f"{v:.2f}" for v in r.cond_aug_psnr_db) + (" ok" if r.cond_aug_monotone else " NOT monotone"))
        lines.append(f"| {r.name} | {r.frame0_psnr_db:.2f} | {r.motion_spearman:.3f} | {r.fps_share:.0%} "
                     f"| {r.warp_error:.4f}{ratio} | {aug} |")
    return "\n".join(lines)
