"""Clips for the fine-tuning lesson: camera pans the shipped small SVD was never trained on, written as mp4 files.

The small SVD only ever saw content moving *left* (:func:`svd_lab.small.data.generate`). :func:`write_pan_clips`
renders the same kind of clip -- a crop gliding over a dead-leaves canvas (by default; ``leaves_share`` below 1 mixes
in scikit-image's photos, as the small SVD's training did, and needs the train extra), at the speed a motion bucket
asks -- and plays it backwards, so the content moves *right*: a motion the model has never made.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

#: canvases for the lesson's clips: another seed than the small SVD's training canvases
DEMO_SEED = 5_000_000


def pan_clips(count: int, frames: int, size: int, motion_bucket_id: int, fps_id: int, direction: str = "right",
              seed: int = 0, leaves_share: float = 1.0) -> torch.Tensor:
    """(count, T, 3, size, size) in [0, 1]: pans at the speed of ``motion_bucket_id`` (the small SVD's calibration),
    content moving ``direction`` ("left", as in training, or "right"). ``leaves_share``: the share of dead-leaves
    clips (1.0, the default, needs no photos)."""
    from svd_lab.small import data

    if direction not in ("left", "right"):
        raise ValueError(f"direction must be 'left' or 'right', got {direction!r}")
    leaves = data.leaves_pool(max(count, 4), seed=DEMO_SEED + seed)
    clips = data.generate(count, seed=DEMO_SEED + seed, frames=frames, size=size, motion_bucket_id=motion_bucket_id,
                          fps_id=fps_id, leaves=leaves,
                          leaves_share=leaves_share)
    return clips.frames.flip(1) if direction == "right" else clips.frames


def write_pan_clips(folder: str | os.PathLike, count: int, frames: int, size: int, motion_bucket_id: int = 200,
                    fps_id: int = 6, direction: str = "right", seed: int = 0,
                    leaves_share: float = 1.0) -> list[Path]:
    """Write :func:`pan_clips` as ``folder/clip-NN.mp4`` at ``fps_id + 1`` frames per second; returns the paths."""
    from svd_lab.video import Video

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, clip in enumerate(pan_clips(count, frames, size, motion_bucket_id, fps_id, direction, seed, leaves_share)):
        paths.append(Video(clip, fps=fps_id + 1).save_mp4(folder / f"clip-{i:02d}.mp4", crf=12))
    return paths
