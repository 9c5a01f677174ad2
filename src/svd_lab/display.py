"""Show videos in a notebook: inline player (HTML5 video or GIF), frame grid, frame scrubber, side by side.

Every function accepts a "video" in any of these forms (see :func:`as_frames`):

- a :class:`svd_lab.video.Video` (or anything with ``frames`` uint8 (T, H, W, 3) and ``fps``),
- a uint8 array or tensor (T, H, W, 3), or a float one in [0, 1],
- a path to an .mp4 or .gif file.

Tiny-profile videos are 64x64 pixels: the inline players scale them up with nearest-neighbour sampling
(``image-rendering: pixelated``) so each generated pixel stays visible instead of being blurred.

Progress bars: :func:`progress` wraps ``tqdm.auto`` (a widget in Jupyter, text in a terminal) and is silent when
``progress=False`` or the environment sets ``TQDM_DISABLE=1`` (the Makefile and the course runner do), so
papermill logs and executed notebooks hold no bar updates.
"""

from __future__ import annotations

import base64
import html
import io
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from svd_lab.progress import progress_bar, progress_enabled  # noqa: F401  (progress_enabled: re-exported)
from svd_lab.video import as_uint8_frames, read_video

DEFAULT_FPS = 7.0
MIN_DISPLAY_WIDTH = 256  # px: small videos are scaled up to at least this width on screen


# --------------------------------------------------------------------------------------------------------------
# Inputs


def as_frames(video: Any) -> np.ndarray:
    """The frames of ``video`` (a path, a :class:`~svd_lab.video.Video`, an array or tensor) as uint8 (T, H, W, 3).

    Float input is taken to be in [0, 1] and rounded; grey (T, H, W) or RGBA (T, H, W, 4) frames become RGB
    (:func:`svd_lab.video.as_uint8_frames`).
    """
    if isinstance(video, (str, Path)):
        return read_video(video)[0]
    frames = getattr(video, "frames", video)
    if callable(frames):  # a Video whose frames are behind a method
        frames = frames()
    if hasattr(frames, "detach"):  # torch tensor
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames)
    if frames.ndim == 3:  # grey (T, H, W)
        frames = np.repeat(frames[..., None], 3, axis=-1)
    if frames.ndim == 4 and frames.shape[0] == 0:
        raise ValueError("the video has no frames")
    return as_uint8_frames(frames)


def video_fps(video: Any, fps: float | None = None) -> float:
    """``fps`` when given, else the video's own frame rate, else :data:`DEFAULT_FPS`."""
    if fps is not None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        return float(fps)
    if isinstance(video, (str, Path)):
        return read_video(video)[1]
    own = getattr(video, "fps", None)
    return float(own) if own else DEFAULT_FPS


# --------------------------------------------------------------------------------------------------------------
# Encoding


def _encoded(video: Any, fps: float | None, suffix: str) -> bytes:
    """Bytes of the file :class:`svd_lab.video.Video` writes (ffmpeg: every frame kept), via a temporary folder."""
    from svd_lab.video import Video

    clip = Video(as_frames(video), fps=video_fps(video, fps))
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / f"clip{suffix}"
        (clip.save_gif if suffix == ".gif" else clip.save_mp4)(target)
        return target.read_bytes()


def encode_gif(video: Any, fps: float | None = None) -> bytes:
    """Looping GIF bytes with every frame (ffmpeg with a palette computed from all frames).

    Pillow's GIF writer is not used: it merges identical consecutive frames, so a still video would lose frames.
    GIF delays are in 1/100 s, so the frame rate is rounded to that grid (7 fps -> 0.14 s per frame).
    """
    return _encoded(video, fps, ".gif")


def encode_mp4(video: Any, fps: float | None = None) -> bytes:
    """H.264 mp4 bytes (yuv420p, playable in browsers); odd sizes are padded by repeating the last row/column."""
    return _encoded(video, fps, ".mp4")


def encode_png(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG")
    return buf.getvalue()


def _display_width(frames: np.ndarray, width: int | None) -> int:
    native = frames.shape[2]
    if width is not None:
        return int(width)
    return native if native >= MIN_DISPLAY_WIDTH else native * -(-MIN_DISPLAY_WIDTH // native)


def _media_html(video: Any, fmt: str, width: int | None, fps: float | None) -> str:
    frames = as_frames(video)
    shown = _display_width(frames, width)
    style = f"width:{shown}px; image-rendering:pixelated; image-rendering:crisp-edges"
    if fmt == "auto":
        fmt = "html5" if _have_ffmpeg() else "gif"
    if fmt == "gif":
        data = base64.b64encode(encode_gif(frames, video_fps(video, fps))).decode("ascii")
        return f'<img src="data:image/gif;base64,{data}" style="{style}" alt="video, {len(frames)} frames"/>'
    if fmt == "html5":
        data = base64.b64encode(encode_mp4(frames, video_fps(video, fps))).decode("ascii")
        return (f'<video style="{style}" controls autoplay loop muted playsinline>'
                f'<source src="data:video/mp4;base64,{data}" type="video/mp4"/>'
                "your browser cannot play inline mp4</video>")
    raise ValueError(f"format {fmt!r}: choose 'auto', 'html5' (mp4 player) or 'gif'")


def _have_ffmpeg() -> bool:
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
        return True
    except Exception:  # noqa: BLE001 -- ImportError or imageio-ffmpeg's "no ffmpeg found" RuntimeError
        return False


# --------------------------------------------------------------------------------------------------------------
# Displays


def show_video(video: Any, fmt: str = "auto", *, width: int | None = None, fps: float | None = None,
               caption: str | None = None):
    """An inline player: ``fmt`` "html5" (mp4 in a <video> tag), "gif", or "auto" (html5 when ffmpeg exists).

    GIF also renders on GitHub and nbviewer, which strip <video>. Returns an ``IPython.display.HTML``.
    """
    from IPython.display import HTML

    body = _media_html(video, fmt, width, fps)
    if caption:
        body = f"<figure style='margin:0'>{body}<figcaption>{html.escape(caption)}</figcaption></figure>"
    return HTML(body)


def compare(videos: Sequence[Any], labels: Sequence[str] | None = None, fmt: str = "gif", *,
            width: int | None = None, fps: float | None = None, title: str | None = None):
    """Several videos side by side, each with its label (e.g. a motion_bucket_id sweep). Returns HTML.

    GIF by default: GIFs side by side start together and loop in step, which is what a comparison needs.
    """
    from IPython.display import HTML

    videos = list(videos)
    if not videos:
        raise ValueError("compare() needs at least one video")
    labels = list(labels) if labels is not None else [f"video {i}" for i in range(len(videos))]
    if len(labels) != len(videos):
        raise ValueError(f"{len(videos)} videos but {len(labels)} labels")
    cells = [
        f"<figure style='margin:0 12px 0 0; text-align:center'>{_media_html(v, fmt, width, fps)}"
        f"<figcaption>{html.escape(str(label))}</figcaption></figure>"
        for v, label in zip(videos, labels)
    ]
    head = f"<p><b>{html.escape(title)}</b></p>" if title else ""
    return HTML(head + "<div style='display:flex; flex-wrap:wrap; align-items:flex-start'>" + "".join(cells)
                + "</div>")


def frame_grid(video: Any, *, columns: int | None = None, title: str | None = None, fps: float | None = None,
               frame_indices: Iterable[int] | None = None, size: float = 2.0, labels: list[str] | None = None):
    """A matplotlib figure with one panel per frame, each labelled "frame t (t/fps s)". Returns the Figure.

    ``frame_indices`` selects frames (default: all, labelled with their own index); ``columns`` default: up to 8
    per row; ``labels``: one title per panel instead (pictures that are not frames of one video: an input, its
    round trip, a baseline).
    """
    import matplotlib.pyplot as plt

    frames = as_frames(video)
    rate = video_fps(video, fps)
    indices = list(range(len(frames))) if frame_indices is None else [int(i) for i in frame_indices]
    bad = [i for i in indices if not 0 <= i < len(frames)]
    if bad or not indices:
        raise ValueError(f"frame indices {bad or indices} outside 0..{len(frames) - 1}")
    cols = columns or min(8, len(indices))
    rows = -(-len(indices) // cols)
    aspect = frames.shape[1] / frames.shape[2]
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * aspect * rows + (0.4 if title else 0)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    if labels is not None and len(labels) != len(indices):
        raise ValueError(f"{len(labels)} labels for {len(indices)} panels")
    for k, (ax, i) in enumerate(zip(axes.flat, indices)):
        ax.imshow(frames[i], interpolation="nearest")
        ax.set_title(labels[k] if labels is not None else f"frame {i} ({i / rate:.2f} s)", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)  # returned for display; closing keeps inline backends from showing it twice
    return fig


def scrubber(video: Any, *, width: int | None = None, fps: float | None = None, caption: str | None = None):
    """An ipywidgets frame scrubber: a play button and a slider linked to the frame shown. Returns a widget.

    Frames are PNG-encoded once up front, so scrubbing is instant. Widgets need a live kernel: in a static copy
    of the notebook (GitHub, an executed notebook opened later) only the first frame shows.
    """
    try:
        import ipywidgets as widgets
    except ImportError as exc:
        raise ImportError("the frame scrubber needs ipywidgets: pip install ipywidgets") from exc
    frames = as_frames(video)
    rate = video_fps(video, fps)
    pngs = [encode_png(f) for f in frames]
    image = widgets.Image(value=pngs[0], format="png", width=_display_width(frames, width))
    image.layout.object_fit = "contain"
    slider = widgets.IntSlider(value=0, min=0, max=len(frames) - 1, description="frame",
                               continuous_update=True)
    play = widgets.Play(value=0, min=0, max=len(frames) - 1, interval=int(1000 / rate), description="play")
    widgets.jslink((play, "value"), (slider, "value"))
    label = widgets.Label(value=f"frame 0 / {len(frames) - 1}  (0.00 s)")

    def on_change(change):
        i = change["new"]
        image.value = pngs[i]
        label.value = f"frame {i} / {len(frames) - 1}  ({i / rate:.2f} s)"

    slider.observe(on_change, names="value")
    children = [widgets.HBox([play, slider, label]), image]
    if caption:
        children.insert(0, widgets.HTML(f"<b>{html.escape(caption)}</b>"))
    box = widgets.VBox(children)
    box.frames_png = pngs  # for tests and for saving a chosen frame
    box.slider = slider
    return box


# --------------------------------------------------------------------------------------------------------------
# Progress


# The switch lives in svd_lab.progress (one place for the sampler, trainers, downloader and the notebooks);
# re-exported here for the notebooks.
progress = progress_bar
