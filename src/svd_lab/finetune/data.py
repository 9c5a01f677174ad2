r"""Your videos as SVD training windows, with SVD's micro-conditioning measured from the data.

**Sources** (:func:`find_sources`): ``DATA`` is a video file, or a folder holding video files (``.mp4``, ``.webm``,
``.gif``, ``.mov``, ``.mkv``, ``.avi``: read with imageio-ffmpeg and PIL, the stack ``svd-lab`` writes videos with)
and/or folders of frames (SVD_Xtend's layout: ``DATA/<clip>/<frames sorted by name>``, any image format PIL reads).

**Windows** (:func:`load_windows`): each clip is cut into windows of ``frames`` frames, taking every ``stride``-th
frame, starting every ``hop`` source frames; every frame is converted as ``svd-lab sample`` converts an input image
(grey, RGBA, 16-bit: :func:`svd_lab.svd.images.to_rgb`; transparent areas white) and resized (Lanczos) and
centre-cropped to ``size``.

**Micro-conditioning**, per window, as SVD's UNet receives it (``added_time_ids``):

- ``fps_id = round(fps / stride) - 1``: SVD's convention (the pipeline passes ``fps - 1``), from the file's frame
  rate (frame folders have none: ``--fps``, default 7, SVD's own default ``fps_id`` 6, plus 1).
- ``motion_bucket_id``: the window's measured motion. Each pair of consecutive frames is split into a 2x2 grid
  (a zoom moves the four quarters apart, a pan moves them together) and each cell's sub-pixel shift is measured
  (:func:`svd_lab.small.metrics.frame_shift`: phase correlation refined by Gauss-Newton); the window's speed is
  the median displacement magnitude over cells and frame pairs in pixels per frame, ``m`` (a median: a flat cell
  with no texture gives a wild shift, and a mean of magnitudes would count its noise as motion). It is mapped to
  a bucket by the calibration the shipped small SVD was trained with (:func:`svd_lab.small.data.speed_to_step`):
  bucket 255 means content crossing ``SPEED_AT_255`` (20 %) of the frame width per second, so
  ``bucket = clamp(round(255 * m * fps / (0.2 * width)), 0, 255)``. SVD's paper derives its motion scores from
  optical-flow magnitudes too, but Stability never published the mapping to buckets, so for svd/svd_xt this scale
  is ours: ``--motion-bucket-id N`` fixes one value for every window instead (SVD_Xtend fixes 127).
- ``cond_aug`` is drawn per training example as SVD's training draws it (log-normal; see
  :func:`svd_lab.small.train.svd_loss`), not stored here.

A clip that cannot be read, or is shorter than one window, is skipped with a one-line reason
(:attr:`Dataset.skipped`); no usable window at all is an :class:`~svd_lab.errors.InputError`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from svd_lab.errors import InputError

VIDEO_SUFFIXES = (".mp4", ".webm", ".gif", ".mov", ".mkv", ".avi", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
#: frame rate assumed for folders of frames (no file header to read it from): SVD's default fps_id 6, plus one
FOLDER_FPS = 7.0
MOTION_GRID = 2


class DataError(InputError):
    """A dataset that cannot be trained on: the message says what was found and what to do."""


@dataclass
class Source:
    path: Path
    kind: str               # "video" or "frames"

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class Dataset:
    """Windows ready for training: ``frames`` (N, T, 3, H, W) uint8, per window ``fps_id``, ``motion_bucket_id``,
    the measured speed ``motion`` (pixels per frame at the training size) and the ``clip`` it came from."""

    frames: torch.Tensor
    fps_id: torch.Tensor
    motion_bucket_id: torch.Tensor
    motion: torch.Tensor
    clip: list[str]
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.frames.shape[0]

    def report(self) -> str:
        clips = sorted(set(self.clip))
        lines = [(f"{len(self)} windows of {self.frames.shape[1]} frames at {self.frames.shape[-1]}x"
                  f"{self.frames.shape[-2]} from {len(clips)} clip(s); fps_id "
                  f"{_span(self.fps_id)}, motion_bucket_id {_span(self.motion_bucket_id)}")]
        lines += [f"skipped {reason}" for reason in self.skipped]
        return "\n".join(lines)

    def subset(self, keep: list[int]) -> Dataset:
        index = torch.tensor(keep, dtype=torch.long)
        return Dataset(self.frames[index], self.fps_id[index], self.motion_bucket_id[index], self.motion[index],
                       [self.clip[i] for i in keep], list(self.skipped))


def _span(values: torch.Tensor) -> str:
    lo, hi = int(values.min()), int(values.max())
    return str(lo) if lo == hi else f"{lo}..{hi}"


def find_sources(root: str | os.PathLike) -> list[Source]:
    """The clips under ``root`` (a video file, or a folder of videos and/or frame folders), sorted by name."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"no data at {root}: pass a video file or a folder of videos / frame folders")
    if root.is_file():
        if root.suffix.lower() not in VIDEO_SUFFIXES:
            raise DataError(f"{root} is not a video ({', '.join(VIDEO_SUFFIXES)}): pass a video or a folder of them")
        return [Source(root, "video")]
    sources = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES:
            sources.append(Source(entry, "video"))
        elif entry.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in entry.iterdir()):
            sources.append(Source(entry, "frames"))
    if not sources and any(p.suffix.lower() in IMAGE_SUFFIXES for p in root.iterdir()):
        sources.append(Source(root, "frames"))          # DATA itself is one clip's frames
    if not sources:
        raise DataError(f"{root} holds no videos ({', '.join(VIDEO_SUFFIXES)}) and no folders of frames: nothing to "
                        "train on")
    return sources


def _frames_of(source: Source, height: int, width: int, folder_fps: float) -> tuple[list[np.ndarray], float]:
    """Every frame of a clip as (height, width, 3) uint8, and its frame rate."""
    from PIL import Image

    from svd_lab.svd.images import resize_and_crop, to_rgb

    def convert(img: Image.Image) -> np.ndarray:
        return np.asarray(resize_and_crop(to_rgb(img), width, height))

    if source.kind == "frames":
        files = sorted(p for p in source.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        frames = []
        for path in files:
            with Image.open(path) as img:
                img.load()
                frames.append(convert(img))
        return frames, folder_fps
    if source.path.suffix.lower() == ".gif":
        from PIL import ImageSequence

        with Image.open(source.path) as img:
            durations, frames = [], []
            for frame in ImageSequence.Iterator(img):
                durations.append(frame.info.get("duration", 100) or 100)
                frames.append(convert(frame.copy()))
        return frames, 1000.0 / float(np.mean(durations))
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(source.path), pix_fmt="rgb24")
    meta = next(reader)
    w, h = meta["size"]
    frames = [convert(Image.fromarray(np.frombuffer(b, np.uint8).reshape(h, w, 3))) for b in reader]
    return frames, float(meta["fps"])


def measure_motion(frames: torch.Tensor, grid: int = MOTION_GRID) -> float:
    """Median displacement magnitude in pixels per frame of a window (T, 3, H, W) in [0, 1] (module docstring)."""
    from svd_lab.small.metrics import frame_shift

    t, _, h, w = frames.shape
    ch, cw = h // grid, w // grid
    magnitudes = []
    for i in range(t - 1):
        for gy in range(grid):
            for gx in range(grid):
                cell = (slice(None), slice(gy * ch, (gy + 1) * ch), slice(gx * cw, (gx + 1) * cw))
                dx, dy = frame_shift(frames[i][cell], frames[i + 1][cell])
                magnitudes.append(math.hypot(dx, dy))
    return float(np.median(magnitudes)) if magnitudes else 0.0


def motion_to_bucket(pixels_per_frame: float, fps: float, width: int) -> int:
    """The motion bucket whose speed (the small SVD's calibration) is ``pixels_per_frame`` at ``fps``."""
    from svd_lab.small.data import SPEED_AT_255

    return int(min(255, max(0, round(255 * pixels_per_frame * fps / (SPEED_AT_255 * width)))))


def load_windows(root: str | os.PathLike, frames: int, height: int, width: int, stride: int = 1,
                 hop: int | None = None, folder_fps: float = FOLDER_FPS, motion_bucket_id: int | None = None,
                 log=None) -> Dataset:
    """Every training window of the clips under ``root`` (see the module docstring), (height, width) pixels."""
    if frames < 2 or min(height, width) < 8 or stride < 1:
        raise DataError(f"frames must be >= 2, height and width >= 8, stride >= 1; got {frames}, {height}, {width}, "
                        f"{stride}")
    if motion_bucket_id is not None and not 0 <= motion_bucket_id <= 255:
        raise DataError(f"motion_bucket_id must be in 0..255, got {motion_bucket_id}")
    hop = hop or max(1, frames * stride // 2)
    span = (frames - 1) * stride + 1
    windows, fps_ids, buckets, motions, clips, skipped = [], [], [], [], [], []
    for source in find_sources(root):
        try:
            clip, fps = _frames_of(source, height, width, folder_fps)
        except Exception as exc:  # noqa: BLE001 - any decoder failure: skip the clip, say why
            skipped.append(f"{source.name}: unreadable ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
            continue
        if len(clip) < span:
            skipped.append(f"{source.name}: {len(clip)} frames, a window needs {span} ({frames} frames, stride "
                           f"{stride})")
            continue
        if not math.isfinite(fps) or fps <= 0:
            skipped.append(f"{source.name}: no usable frame rate ({fps})")
            continue
        effective_fps = fps / stride
        for start in range(0, len(clip) - span + 1, hop):
            window = torch.from_numpy(np.stack(clip[start:start + span:stride])).permute(0, 3, 1, 2).contiguous()
            motion = measure_motion(window.float() / 255.0)
            windows.append(window)
            fps_ids.append(max(0, round(effective_fps) - 1))
            buckets.append(motion_to_bucket(motion, effective_fps, width) if motion_bucket_id is None
                           else motion_bucket_id)
            motions.append(motion)
            clips.append(source.name)
    if not windows:
        why = "; ".join(skipped) if skipped else "no clips"
        raise DataError(f"no training window in {root} ({why}): each clip needs at least {span} frames")
    dataset = Dataset(torch.stack(windows), torch.tensor(fps_ids), torch.tensor(buckets),
                      torch.tensor(motions, dtype=torch.float32), clips, skipped)
    if log is not None:
        log(dataset.report())
    return dataset
