"""The small SVD's picture: what a viewer sees, with the numbers that describe it measured on the same pixels.

Left: the input, its VAE round trip and the thumbnail baseline with as many values as the latent (PSNR against the
input under each). Right: the frames of the videos sampled at motion buckets 0, 127 and 255 (default settings,
one seed), each row with its measured motion and colour error. Bottom: the measured shift between consecutive
frames, accumulated over time, against the true pan of the training rule.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch

from svd_lab.pixels import colour_error, psnr, quantize, thumbnail
from svd_lab.small import data, metrics

FIGURE_BUCKETS = (0, 127, 255)


def sample_rows(pipe, image_tensor: torch.Tensor, seed: int = 23) -> dict[int, torch.Tensor]:
    """Videos (T, 3, H, W) at :data:`FIGURE_BUCKETS`, as ``pipe.run`` makes them with the default settings."""
    return {bucket: pipe.run(image_tensor, motion_bucket_id=bucket, seed=seed, progress=False).frames
            for bucket in FIGURE_BUCKETS}


def measure(image: torch.Tensor, videos: dict[int, torch.Tensor], vae) -> dict:
    """The numbers the figure shows, all in pixel space against the input or its true pan."""
    size = image.shape[-1]
    round_trip = quantize(metrics.vae_round_trip(vae, image.unsqueeze(0))[0])
    with torch.no_grad():
        values = vae.encode(image.unsqueeze(0) * 2 - 1).latent_dist.mode()[0].numel()
    out = {"vae_psnr_db": round(psnr(image, round_trip), 2),
           "thumbnail_psnr_db": round(psnr(image, thumbnail(image, values)), 2), "latent_values": values,
           "buckets": {}}
    for bucket, video in videos.items():
        step = float(data.speed_to_step(bucket, metrics.FPS_DEFAULT, size))
        truth = data.pan_image(image, step, video.shape[0])
        out["buckets"][bucket] = {
            "frame0_psnr_db": round(psnr(image, quantize(video[0])), 2),
            "shifts_px": [round(s, 3) for s in metrics.frame_shifts(video)],
            "px_per_frame": round(metrics.displacement(video), 3), "true_px_per_frame": round(step, 3),
            "colour_error_max": round(float(colour_error(video, truth).max()), 4)}
    return out


def render(image: torch.Tensor, round_trip: torch.Tensor, thumb: torch.Tensor, videos: dict[int, torch.Tensor],
           numbers: dict) -> bytes:
    """The figure as PNG bytes (see the module docstring)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def show(ax, picture, title):
        ax.imshow(picture.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])

    frames = next(iter(videos.values())).shape[0]
    rows = len(videos)
    fig = plt.figure(figsize=(2.2 + 1.05 * frames, 1.25 * rows + 2.6), dpi=110)
    grid = fig.add_gridspec(rows + 1, frames + 2, height_ratios=[1] * rows + [1.9], hspace=0.45, wspace=0.08)
    side = int((numbers["latent_values"] // 3) ** 0.5)
    left = [(image, "input"), (round_trip, f"VAE round trip\n{numbers['vae_psnr_db']:.1f} dB"),
            (thumb, f"{side}x{side} thumbnail\n{numbers['thumbnail_psnr_db']:.1f} dB")]
    for r, (picture, title) in enumerate(left[:rows]):
        show(fig.add_subplot(grid[r, 0]), picture, title)
    for r, (bucket, video) in enumerate(videos.items()):
        b = numbers["buckets"][bucket]
        for t in range(frames):
            ax = fig.add_subplot(grid[r, 2 + t])
            title = f"t={t}"
            if t == 0:
                title = f"bucket {bucket}: {b['px_per_frame']:.2f} px/frame (true {b['true_px_per_frame']:.2f})\nt=0"
            show(ax, video[t], title)
            if t == 0:
                ax.title.set_horizontalalignment("left")
                ax.title.set_position((0, 1))
    ax = fig.add_subplot(grid[rows, 1:])
    for bucket in videos:
        b = numbers["buckets"][bucket]
        measured = [0.0]
        for s in b["shifts_px"]:
            measured.append(measured[-1] + s)
        line, = ax.plot(range(frames), measured, marker="o", label=f"bucket {bucket}: measured")
        ax.plot(range(frames), [t * b["true_px_per_frame"] for t in range(frames)], ls="--", color=line.get_color(),
                label=f"bucket {bucket}: true pan")
    ax.set(xlabel="frame t", ylabel="content moved left (px)",
           title="shift between consecutive frames, accumulated (measured in pixels)")
    ax.legend(fontsize=7, ncol=3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def write_figure(image, out: str | os.PathLike, model_folder=None, seed: int = 23) -> dict:
    """Sample, measure and draw (see the module docstring); write the PNG to ``out`` (refused if it exists)."""
    from svd_lab.atomic import write_bytes_atomic
    from svd_lab.small.model import load_small
    from svd_lab.svd.images import image_to_tensor, load_image
    from svd_lab.svd.pipeline import SVDPipeline

    components = load_small(model_folder)
    pipe = SVDPipeline(components, device="cpu", dtype="float32", memory="resident")
    size = components.native_size
    picture = image_to_tensor(load_image(image, width=size, height=size))[0]
    videos = sample_rows(pipe, picture, seed)
    numbers = measure(picture, videos, components.vae)
    round_trip = quantize(metrics.vae_round_trip(components.vae, picture.unsqueeze(0))[0])
    png = render(picture, round_trip, thumbnail(picture, numbers["latent_values"]), videos, numbers)
    write_bytes_atomic(Path(out), png)
    return numbers
