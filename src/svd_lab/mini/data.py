"""Bouncing-ball videos: an unlimited, deterministic, procedurally generated data set with ground truth.

Each video shows antialiased balls (radius ~3 px) on a black square, moving with constant velocity and bouncing
elastically off the walls (optionally under gravity). Everything is generated on the fly with vectorised torch
code from a seed: no download, nothing on disk, and the trajectories that produced each video come with it, so
that samples from a model can be scored against physics (see :mod:`svd_lab.mini.metrics`).

Coordinates: pixel ``(row i, column j)`` covers the square ``[i, i+1) x [j, j+1)``; its centre is ``(i+0.5, j+0.5)``.
A ball of radius ``r`` bounces when its centre reaches ``r`` or ``size - r``, i.e. when its edge touches the wall.

Speed buckets (the analogue of SVD's ``motion_bucket_id``): ``NUM_SPEED_BUCKETS`` buckets, each
``BUCKET_WIDTH`` px/frame wide, covering ``[MIN_SPEED, MAX_SPEED)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

FRAMES = 8
SIZE = 32
RADIUS = 3.0
MIN_SPEED = 0.5
MAX_SPEED = 2.5
NUM_SPEED_BUCKETS = 8
BUCKET_WIDTH = (MAX_SPEED - MIN_SPEED) / NUM_SPEED_BUCKETS  # 0.25 px/frame


def speed_to_bucket(speed: torch.Tensor) -> torch.Tensor:
    """Speed in px/frame -> bucket index in ``0 .. NUM_SPEED_BUCKETS-1`` (speeds outside the range are clamped)."""
    bucket = torch.floor((torch.as_tensor(speed, dtype=torch.float64) - MIN_SPEED) / BUCKET_WIDTH)
    return bucket.clamp(0, NUM_SPEED_BUCKETS - 1).long()


def bucket_range(bucket: int) -> tuple[float, float]:
    """The speeds ``[low, high)`` in px/frame covered by a bucket."""
    if not 0 <= bucket < NUM_SPEED_BUCKETS:
        raise ValueError(f"speed bucket must be in 0..{NUM_SPEED_BUCKETS - 1}, got {bucket}")
    low = MIN_SPEED + bucket * BUCKET_WIDTH
    return low, low + BUCKET_WIDTH


@dataclass
class BallVideos:
    """A batch of generated videos and the physics that produced them.

    Attributes:
        frames: (B, T, 1, H, W) float32 intensities in [0, 1] (1 = ball, 0 = background).
        positions: (B, T, N, 2) float32 ball centres ``(row, column)`` in pixels, for N balls.
        velocities: (B, N, 2) float32 initial velocities (px/frame).
        speed_bucket: (B,) int64 bucket of the first ball's speed (the motion micro-condition).
    """

    frames: torch.Tensor
    positions: torch.Tensor
    velocities: torch.Tensor
    speed_bucket: torch.Tensor

    @property
    def speed(self) -> torch.Tensor:
        """(B,) speed of the first ball in px/frame."""
        return self.velocities[:, 0].norm(dim=-1)


def reflect_into(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Fold an unbounded straight-line coordinate into ``[low, high]`` with mirror reflections (elastic bounces).

    A free particle at ``x = x0 + v t`` bouncing between walls at ``low`` and ``high`` is at the triangle wave of
    period ``2 L`` (``L = high - low``): ``low + L - |((x - low) mod 2L) - L|``. Exact for any number of bounces.
    """
    span = high - low
    phase = torch.remainder(x - low, 2 * span)
    return low + span - (phase - span).abs()


def render_balls(positions: torch.Tensor, size: int = SIZE, radius: float = RADIUS) -> torch.Tensor:
    """Draw antialiased discs.

    Args:
        positions: (..., N, 2) centres (row, column) in pixels.
    Returns:
        (..., size, size) intensities in [0, 1]: each pixel is ``clamp(radius + 0.5 - distance, 0, 1)`` (a one-pixel
        linear ramp across the edge, a cheap area-coverage estimate), the brightest ball wins where balls overlap.
    """
    centres = torch.arange(size, dtype=torch.float32) + 0.5
    rows = positions[..., 0, None, None]  # (..., N, 1, 1)
    cols = positions[..., 1, None, None]
    dist = torch.sqrt((centres[:, None] - rows) ** 2 + (centres[None, :] - cols) ** 2)  # (..., N, size, size)
    coverage = (radius + 0.5 - dist).clamp(0.0, 1.0)
    return coverage.amax(dim=-3)


def generate(
    num_videos: int,
    seed: int = 0,
    *,
    frames: int = FRAMES,
    size: int = SIZE,
    radius: float = RADIUS,
    num_balls: int = 1,
    gravity: float = 0.0,
    speed_bucket: torch.Tensor | None = None,
    substeps: int = 8,
) -> BallVideos:
    """Generate ``num_videos`` bouncing-ball videos, deterministically from ``seed``.

    Args:
        num_videos: batch size B.
        seed: the same seed (and arguments) always gives the same videos, on any machine.
        frames, size, radius: T, H = W, and the ball radius in pixels.
        num_balls: balls per video (they pass through each other; only walls bounce them).
        gravity: downward acceleration in px/frame^2 (0 = constant velocity; then positions are exact).
        speed_bucket: optional (B,) int64 requested speed buckets; the speed is drawn uniformly inside the bucket
            (for the first ball; other balls draw from the whole range). Default: uniform over the whole range.
        substeps: integration substeps per frame when ``gravity > 0``.
    Returns:
        :class:`BallVideos` with frames (B, T, 1, size, size).
    """
    if num_videos < 1:
        raise ValueError(f"num_videos must be >= 1, got {num_videos}")
    if num_balls < 1:
        raise ValueError(f"num_balls must be >= 1, got {num_balls}")
    if not 0 < radius < size / 2:
        raise ValueError(f"radius must be in (0, {size / 2}), got {radius}")
    gen = torch.Generator().manual_seed(int(seed))
    low, high = radius, size - radius
    start = low + (high - low) * torch.rand(num_videos, num_balls, 2, generator=gen)
    angle = 2 * math.pi * torch.rand(num_videos, num_balls, generator=gen)
    speed = MIN_SPEED + (MAX_SPEED - MIN_SPEED) * torch.rand(num_videos, num_balls, generator=gen)
    if speed_bucket is not None:
        speed_bucket = torch.as_tensor(speed_bucket, dtype=torch.long)
        if speed_bucket.shape != (num_videos,):
            raise ValueError(f"speed_bucket must have shape ({num_videos},), got {tuple(speed_bucket.shape)}")
        if speed_bucket.min() < 0 or speed_bucket.max() >= NUM_SPEED_BUCKETS:
            raise ValueError(f"speed buckets must be in 0..{NUM_SPEED_BUCKETS - 1}")
        within = torch.rand(num_videos, generator=gen)
        speed[:, 0] = MIN_SPEED + (speed_bucket.float() + within) * BUCKET_WIDTH
    velocity = torch.stack([speed * torch.sin(angle), speed * torch.cos(angle)], dim=-1)  # (B, N, 2)

    time = torch.arange(frames, dtype=torch.float32)
    if gravity == 0.0:
        free = start[:, None] + velocity[:, None] * time[None, :, None, None]  # (B, T, N, 2)
        positions = reflect_into(free, low, high)
    else:
        positions = _integrate_with_gravity(start, velocity, frames, gravity, low, high, substeps)
    video = render_balls(positions, size, radius)[:, :, None]  # (B, T, 1, H, W)
    return BallVideos(
        frames=video.contiguous(),
        positions=positions,
        velocities=velocity,
        speed_bucket=speed_to_bucket(speed[:, 0]),
    )


def _integrate_with_gravity(start, velocity, frames, gravity, low, high, substeps):
    """Semi-implicit Euler with ``substeps`` per frame; walls reflect position and flip the velocity component."""
    pos, vel = start.clone(), velocity.clone()
    accel = torch.tensor([gravity, 0.0])  # rows grow downwards
    dt = 1.0 / substeps
    out = [pos.clone()]
    for _ in range(frames - 1):
        for _ in range(substeps):
            vel = vel + accel * dt
            pos = pos + vel * dt
            below, above = pos < low, pos > high
            pos = torch.where(below, 2 * low - pos, torch.where(above, 2 * high - pos, pos))
            vel = torch.where(below | above, -vel, vel)
        out.append(pos.clone())
    return torch.stack(out, dim=1)


def to_model_space(frames: torch.Tensor) -> torch.Tensor:
    """[0, 1] intensities -> [-1, 1], the range the autoencoder sees."""
    return frames * 2.0 - 1.0


def from_model_space(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] intensities, clamped."""
    return ((x + 1.0) * 0.5).clamp(0.0, 1.0)
