"""svd_lab.display: frames in any form, GIF/mp4 encodings that keep every frame, grid, scrubber, comparison."""

from __future__ import annotations

import io

import numpy as np
import pytest

from svd_lab import display


def clip(frames=14, h=32, w=48, seed=0):
    """A clip where frame t has a bright column at x = t, so frames are distinguishable after encoding."""
    rng = np.random.default_rng(seed)
    video = rng.integers(0, 60, size=(frames, h, w, 3), dtype=np.uint8)
    for t in range(frames):
        video[t, :, (3 * t) % w] = 255
    return video


class FakeVideo:
    def __init__(self, frames, fps):
        self.frames = frames
        self.fps = fps


def test_as_frames_accepts_floats_grey_rgba_and_tensors():
    import torch

    f = np.linspace(0, 1, 2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    out = display.as_frames(f)
    assert out.dtype == np.uint8 and out.shape == (2, 4, 4, 3)
    assert out[0, 0, 0, 0] == 0 and out[-1, -1, -1, -1] == 255
    assert display.as_frames(np.zeros((3, 4, 5), np.uint8)).shape == (3, 4, 5, 3)
    assert display.as_frames(np.zeros((3, 4, 5, 4), np.uint8)).shape == (3, 4, 5, 3)
    assert display.as_frames(torch.zeros(2, 4, 4, 3, dtype=torch.uint8)).shape == (2, 4, 4, 3)
    assert display.as_frames(FakeVideo(clip(3), 7)).shape == (3, 32, 48, 3)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((4, 4, 3), np.uint8).reshape(4, 4, 3, 1), "expected frames shaped"),
    (np.zeros((0, 4, 4, 3), np.uint8), "no frames"),
    (np.zeros((2, 4, 4, 3), np.int32), "uint8, or floats"),
])
def test_as_frames_rejects_bad_input(bad, message):
    with pytest.raises(ValueError, match=message):
        display.as_frames(bad)


def test_fps_from_argument_video_or_default():
    assert display.video_fps(FakeVideo(clip(2), 10)) == 10
    assert display.video_fps(clip(2)) == display.DEFAULT_FPS
    assert display.video_fps(clip(2), 8) == 8
    with pytest.raises(ValueError):
        display.video_fps(clip(2), 0)


def _gif_frames(data):
    from PIL import Image, ImageSequence

    with Image.open(io.BytesIO(data)) as im:
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
        return frames, im.info.get("loop"), im.info.get("duration")


def test_gif_keeps_every_frame_at_7_fps():
    """14 frames at 7 fps: moviepy's ImageSequenceClip loses one (FACTS); our GIF must not."""
    frames = clip(14)
    decoded, loop, duration = _gif_frames(display.encode_gif(FakeVideo(frames, 7)))
    assert len(decoded) == 14 and loop == 0
    # the bright column moves exactly as written
    assert all(int(np.argmax(decoded[t].mean(axis=(0, 2)))) == (3 * t) % 48 for t in range(14))
    assert duration == 140  # 1/7 s on GIF's 1/100 s grid


def test_gif_keeps_identical_consecutive_frames():
    """A still video (the tiny profile can make one) keeps its frame count; Pillow's writer would merge them."""
    still = np.repeat(clip(1), 5, axis=0)
    decoded, _, _ = _gif_frames(display.encode_gif(still, fps=5))
    assert len(decoded) == 5


def test_mp4_round_trip_keeps_frames_and_size(tmp_path):
    frames = clip(14, 32, 48)
    data = display.encode_mp4(frames, fps=7)
    path = tmp_path / "c.mp4"
    path.write_bytes(data)
    back, fps = display.read_video(path)
    assert back.shape == frames.shape
    assert fps == pytest.approx(7)
    # lossy, but each frame's bright column is where it was written
    assert all(int(np.argmax(back[t].mean(axis=(0, 2)))) == (3 * t) % 48 for t in range(14))


def test_mp4_pads_odd_sizes():
    data = display.encode_mp4(clip(3, 31, 33), fps=8)
    assert data[4:8] == b"ftyp"


def test_show_video_html5_and_gif():
    v = FakeVideo(clip(4, 16, 16), 7)
    html5 = display.show_video(v, "html5").data
    assert "data:video/mp4;base64," in html5 and "<video" in html5
    # a 16 px clip is scaled up to at least 256 px on screen, pixelated
    assert "width:256px" in html5 and "pixelated" in html5
    gif = display.show_video(v, "gif", width=100, caption="a <clip>").data
    assert "data:image/gif;base64," in gif and "width:100px" in gif and "a &lt;clip&gt;" in gif
    with pytest.raises(ValueError, match="format"):
        display.show_video(v, "webm")


def test_compare_side_by_side_labels():
    html = display.compare([clip(3, 8, 8), clip(3, 8, 8, seed=1)], ["bucket 1", "bucket <255>"],
                           title="sweep").data
    assert html.count("<figure") == 2 and "bucket &lt;255&gt;" in html and "sweep" in html
    with pytest.raises(ValueError, match="2 videos but 1 labels"):
        display.compare([clip(3), clip(3)], ["one"])
    with pytest.raises(ValueError, match="at least one"):
        display.compare([], [])


def test_frame_grid_labels_each_frame():
    fig = display.frame_grid(FakeVideo(clip(6), 3), columns=4, title="six frames")
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == [f"frame {i} ({i / 3:.2f} s)" for i in range(6)]
    assert len(fig.axes) == 8  # 2 rows x 4 columns, two empty panels switched off
    assert fig._suptitle.get_text() == "six frames"
    fig = display.frame_grid(clip(6), frame_indices=[0, 5])
    assert len([ax for ax in fig.axes if ax.get_title()]) == 2
    with pytest.raises(ValueError, match="outside"):
        display.frame_grid(clip(6), frame_indices=[6])


def test_scrubber_shows_the_selected_frame():
    frames = clip(5)
    box = display.scrubber(FakeVideo(frames, 5))
    assert box.slider.max == 4
    image = box.children[-1]
    assert image.value == box.frames_png[0]
    box.slider.value = 3
    assert image.value == box.frames_png[3]
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(io.BytesIO(image.value)).convert("RGB")), frames[3])


def test_progress_is_silent_when_disabled(monkeypatch, capsys):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert not display.progress_enabled(True)
    assert list(display.progress(range(3), desc="x")) == [0, 1, 2]
    monkeypatch.setenv("TQDM_DISABLE", "")
    assert display.progress_enabled(True) and not display.progress_enabled(False)
    assert list(display.progress(range(3), enabled=False)) == [0, 1, 2]
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
