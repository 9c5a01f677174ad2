"""Videos: frames in memory, playable files on disk, and numbered output folders.

:class:`Video` holds uint8 frames (T, H, W, 3), a frame rate and the parameters that made it. Files are written by
piping raw RGB frames into the ffmpeg that ``imageio-ffmpeg`` ships:

- MP4: H.264, yuv420p (what browsers, phones and notebooks play), ``+faststart``;
- GIF: a palette computed from all frames (``palettegen``/``paletteuse``).

Every frame is written. Two popular writers do not guarantee that: moviepy 2.2.1's ``ImageSequenceClip`` drops
the last frame at fps 7 (a float duration rounds down), and PIL's GIF writer merges identical consecutive frames
(a still tiny-profile video loses frames). :func:`count_frames` reads a file back so tests can check.

Writes are atomic: ffmpeg writes a hidden temporary file in the target folder, which is then moved into place;
an existing file is never replaced (unless ``overwrite=True`` for an explicit path).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from svd_lab.atomic import new_temporary_beside, place, write_bytes_atomic
from svd_lab.errors import RunError

OUTPUT_NAME = re.compile(r"^(\d{6})\.(mp4|gif|png|json)$")


class VideoWriteError(RunError):
    """ffmpeg failed or is missing, or the output cannot be written."""


def ffmpeg_executable() -> str:
    """The ffmpeg binary bundled with imageio-ffmpeg (or the one named by IMAGEIO_FFMPEG_EXE)."""
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise VideoWriteError("imageio-ffmpeg is not installed: pip install imageio-ffmpeg") from exc
    return imageio_ffmpeg.get_ffmpeg_exe()


def as_uint8_frames(frames: Any) -> np.ndarray:
    """The one frame conversion: (T, H, W, 3) uint8 from uint8 or float [0, 1] arrays or tensors.

    Accepted layouts: channels last (T, H, W, C) with C = 3 or 4 (alpha is dropped, as Stability's script does for
    RGBA inputs) or channels first (T, 3, H, W). Floats are clipped to [0, 1] and rounded, not
    truncated: the same rule as diffusers' ``numpy_to_pil``.
    """
    try:
        import torch

        if isinstance(frames, torch.Tensor):
            frames = frames.detach().cpu()
            frames = frames.float().numpy() if frames.is_floating_point() else frames.numpy()
    except ImportError:  # pragma: no cover
        pass
    arr = np.asarray(frames)
    if arr.ndim != 4:
        raise ValueError(f"expected frames shaped (T, H, W, 3) or (T, 3, H, W) (4-d), got shape {arr.shape}")
    if arr.shape[-1] not in (3, 4) and arr.shape[1] == 3:  # channels first, as the pipeline's tensors are
        arr = arr.transpose(0, 2, 3, 1)
    if arr.shape[-1] not in (3, 4):
        raise ValueError(f"expected frames shaped (T, H, W, 3) or (T, 3, H, W) (3 colour channels), got shape "
                         f"{arr.shape}")
    arr = arr[..., :3]
    if arr.shape[0] == 0:
        raise ValueError("the video has no frames: a video needs at least one frame")
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(f"frames must be uint8, or floats in [0, 1]; got dtype {arr.dtype}")
        arr = (np.clip(arr, 0.0, 1.0) * 255).round().astype(np.uint8)
    return np.ascontiguousarray(arr)


def _run_ffmpeg(frames: np.ndarray, fps: float, out: Path, output_args: list[str]) -> None:
    t, h, w, _ = frames.shape
    cmd = [ffmpeg_executable(), "-y", "-hide_banner", "-loglevel", "error",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{fps:g}", "-i", "-",
           "-frames:v", str(t), *output_args, str(out)]
    try:
        proc = subprocess.run(cmd, input=frames.tobytes(), capture_output=True, check=False)
    except OSError as exc:
        raise VideoWriteError(f"could not run ffmpeg ({cmd[0]}): {exc}") from exc
    if proc.returncode != 0:
        raise VideoWriteError(f"ffmpeg failed writing {out.name}: {proc.stderr.decode(errors='replace').strip()}")


def _pad_even(frames: np.ndarray) -> np.ndarray:
    """yuv420p stores colour at half resolution: width and height must be even. Pad by repeating the edge."""
    _, h, w, _ = frames.shape
    if h % 2 == 0 and w % 2 == 0:
        return frames
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")


@dataclass
class Video:
    """A generated clip: ``frames`` uint8 (T, H, W, 3), ``fps``, and the parameters that made it.

    ``fps`` defaults to ``fps_id + 1`` when the parameters have an fps_id (SVD's conditioning says "this clip
    runs at fps_id + 1 frames per second"), else 7.
    """

    frames: np.ndarray
    fps: float | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.frames = as_uint8_frames(self.frames)
        if self.fps is None:
            fps_id = self.params.get("fps_id")
            self.fps = float(fps_id) + 1 if fps_id is not None else 7.0
        if not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    def __len__(self) -> int:
        return self.num_frames

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    def pil_frames(self) -> list:
        from PIL import Image

        return [Image.fromarray(f) for f in self.frames]

    def __repr__(self) -> str:
        return f"Video({self.num_frames} frames, {self.width}x{self.height}, {self.fps:g} fps)"

    # -- files
    def save_mp4(self, path: str | os.PathLike, fps: float | None = None, crf: int = 17,
                 overwrite: bool = False) -> Path:
        """Write H.264 yuv420p MP4 (every frame) atomically; returns the path."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists; not overwriting it (pass overwrite=True to replace it)")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = new_temporary_beside(path)
        try:
            _run_ffmpeg(_pad_even(self.frames), fps or self.fps, tmp,
                        ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(int(crf)),
                         "-preset", "medium", "-movflags", "+faststart", "-f", "mp4"])
            place(tmp, path, overwrite)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    def save_gif(self, path: str | os.PathLike, fps: float | None = None, overwrite: bool = False) -> Path:
        """Write an endlessly looping GIF (every frame; GIF delays are in 1/100 s) atomically."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists; not overwriting it (pass overwrite=True to replace it)")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = new_temporary_beside(path)
        try:
            _run_ffmpeg(self.frames, fps or self.fps, tmp,
                        ["-filter_complex", "split[a][b];[a]palettegen=stats_mode=full[p];[b][p]paletteuse",
                         "-loop", "0", "-f", "gif"])
            place(tmp, path, overwrite)
        finally:
            tmp.unlink(missing_ok=True)
        return path


def count_frames(path: str | os.PathLike) -> int:
    """Number of frames actually stored in a video file (decoded, not read from the header)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix.lower() == ".gif":
        from PIL import Image

        with Image.open(path) as img:
            return int(img.n_frames)
    import imageio_ffmpeg

    return int(imageio_ffmpeg.count_frames_and_secs(str(path))[0])


def read_video(path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """Decode every frame of an .mp4 or .gif file: (uint8 frames (T, H, W, 3), frames per second)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no video file at {path}")
    if path.suffix.lower() == ".gif":
        from PIL import Image, ImageSequence

        with Image.open(path) as img:
            frames, durations = [], []
            for frame in ImageSequence.Iterator(img):
                frames.append(np.asarray(frame.convert("RGB")))
                durations.append(frame.info.get("duration", 100) or 100)
        return np.stack(frames), 1000.0 / float(np.mean(durations))
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    meta = next(reader)
    w, h = meta["size"]
    return np.stack([np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in reader]), float(meta["fps"])


def read_frames(path: str | os.PathLike) -> np.ndarray:
    """Decode a video file to uint8 frames (T, H, W, 3) (tests and notebooks compare them)."""
    return read_video(path)[0]


# ------------------------------------------------------------------------------------------- output folders
def next_output_number(folder: str | os.PathLike) -> int:
    """1 + the largest NNNNNN of NNNNNN.{mp4,gif,png,json} in folder (0 for an empty or missing folder)."""
    folder = Path(folder)
    numbers = [int(m.group(1)) for p in folder.iterdir() if (m := OUTPUT_NAME.match(p.name))] \
        if folder.is_dir() else []
    return max(numbers, default=-1) + 1


def save_numbered(video: Video, folder: str | os.PathLike, conditioning_image=None, gif: bool = False,
                  mp4: bool = True) -> dict[str, Path]:
    """Save ``video`` as ``folder/NNNNNN.mp4`` (numbered after the existing outputs, never overwriting) with
    ``NNNNNN.png`` (the conditioning image, if given), ``NNNNNN.json`` (``video.params``) and optionally
    ``NNNNNN.gif`` beside it. Returns the written paths by kind.

    The mp4 (or gif) claims the number: written to a temporary file, then linked to its final name, which fails if
    another run took the number in the meantime -- then the next number is tried.
    """
    if not (mp4 or gif):
        raise ValueError("nothing to save: mp4 and gif are both off")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    number = next_output_number(folder)
    first_kind = "mp4" if mp4 else "gif"
    for _ in range(1000):
        stem = folder / f"{number:06d}"
        try:
            first = (video.save_mp4 if mp4 else video.save_gif)(stem.with_suffix(f".{first_kind}"))
            break
        except FileExistsError:
            number += 1
    else:  # pragma: no cover - would need 1000 concurrent writers
        raise RuntimeError(f"could not find a free output number in {folder}")
    written = {first_kind: first}
    if gif and mp4:
        written["gif"] = video.save_gif(stem.with_suffix(".gif"))
    if conditioning_image is not None:
        import io

        buffer = io.BytesIO()
        conditioning_image.save(buffer, format="PNG")
        written["png"] = stem.with_suffix(".png")
        write_bytes_atomic(written["png"], buffer.getvalue())
    params = {**video.params, "fps": video.fps, "num_frames_written": video.num_frames,
              "files": {kind: p.name for kind, p in written.items()}}
    written["json"] = stem.with_suffix(".json")
    write_bytes_atomic(written["json"], (json.dumps(params, indent=2, default=str) + "\n").encode())
    return written
