"""Video files: every frame written (read back and counted), playable H.264 yuv420p, numbered outputs, no
overwrite, atomic writes."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from svd_lab.video import (
    Video,
    count_frames,
    ffmpeg_executable,
    next_output_number,
    read_frames,
    save_numbered,
)


def _frames(t=14, h=64, w=64, still=False):
    if still:
        return np.full((t, h, w, 3), 120, np.uint8)
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([np.stack([(x * 4 + 9 * i) % 256, (y * 4) % 256, np.full_like(x, 20 * i % 256)], -1)
                     for i in range(t)]).astype(np.uint8)


def _probe(path):
    """Codec, pixel format and frame count as ffmpeg reports them."""
    out = subprocess.run([ffmpeg_executable(), "-hide_banner", "-i", str(path)], capture_output=True, text=True,
                         check=False)
    return out.stderr


@pytest.mark.parametrize("fps", [7, 8, 30, 6.5])
@pytest.mark.parametrize("t", [1, 4, 14, 25])
def test_mp4_keeps_every_frame(tmp_path, fps, t):
    path = Video(_frames(t), fps=fps).save_mp4(tmp_path / "v.mp4")
    assert count_frames(path) == t


def test_mp4_is_h264_yuv420p_and_close_to_the_frames(tmp_path):
    frames = _frames(5)
    path = Video(frames, fps=7).save_mp4(tmp_path / "v.mp4")
    info = _probe(path)
    assert "h264" in info and "yuv420p" in info and "7 fps" in info
    back = read_frames(path)
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 8  # lossy, but the same pictures


def test_still_video_keeps_every_frame_in_mp4_and_gif(tmp_path):
    """PIL's GIF writer merges identical frames; ours must not (tiny random models can produce still clips)."""
    video = Video(_frames(4, still=True), fps=7)
    assert count_frames(video.save_mp4(tmp_path / "s.mp4")) == 4
    assert count_frames(video.save_gif(tmp_path / "s.gif")) == 4


@pytest.mark.parametrize("t", [1, 3, 14])
def test_gif_keeps_every_frame_and_loops(tmp_path, t):
    path = Video(_frames(t), fps=7).save_gif(tmp_path / "v.gif")
    assert count_frames(path) == t
    with Image.open(path) as img:
        assert img.info.get("loop") == 0
        assert img.info.get("duration") in (140, 150)  # 1/7 s in GIF's 1/100 s units
    assert read_frames(path).shape == (t, 64, 64, 3)


def test_odd_sizes_are_padded_for_yuv420p(tmp_path):
    path = Video(_frames(3, h=63, w=65), fps=7).save_mp4(tmp_path / "odd.mp4")
    assert count_frames(path) == 3
    assert read_frames(path).shape == (3, 64, 66, 3)


def test_video_value_conversions_and_default_fps():
    float_frames = torch.rand(3, 3, 16, 16)  # (T, 3, H, W) in [0, 1]
    v = Video(float_frames, params={"fps_id": 6})
    assert v.fps == 7 and v.frames.dtype == np.uint8 and v.frames.shape == (3, 16, 16, 3)
    assert np.array_equal(v.frames, (float_frames.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8))
    assert len(v) == 3 and (v.width, v.height) == (16, 16) and len(v.pil_frames()) == 3
    assert Video(_frames(2)).fps == 7.0
    with pytest.raises(ValueError, match="4-d"):
        Video(np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="at least one frame"):
        Video(np.zeros((0, 16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="fps must be > 0"):
        Video(_frames(2), fps=0)


def test_explicit_paths_are_never_overwritten(tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="not overwriting"):
        Video(_frames(2)).save_mp4(path)
    with pytest.raises(FileExistsError):
        Video(_frames(2)).save_gif(path)
    assert path.read_bytes() == b"precious"
    Video(_frames(2)).save_mp4(path, overwrite=True)
    assert count_frames(path) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"], "no temporary files left behind"


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    import svd_lab.video as video_module

    monkeypatch.setattr(video_module, "ffmpeg_executable", lambda: str(tmp_path / "no-ffmpeg"))
    with pytest.raises(video_module.VideoWriteError, match="could not run ffmpeg"):
        Video(_frames(2)).save_mp4(tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []


def test_numbered_outputs_with_image_and_params(tmp_path):
    out = tmp_path / "outputs" / "svd"
    cond = Image.fromarray(_frames(1)[0])
    video = Video(_frames(4), params={"fps_id": 6, "seed": 23, "oom_fallback": None})
    first = save_numbered(video, out, conditioning_image=cond, gif=True)
    assert {k: p.name for k, p in first.items()} == {"mp4": "000000.mp4", "gif": "000000.gif",
                                                      "png": "000000.png", "json": "000000.json"}
    params = json.loads(first["json"].read_text())
    assert params["seed"] == 23 and params["fps"] == 7 and params["num_frames_written"] == 4
    assert params["files"]["mp4"] == "000000.mp4"
    assert np.array_equal(np.asarray(Image.open(first["png"])), np.asarray(cond))
    assert count_frames(first["mp4"]) == 4 and count_frames(first["gif"]) == 4

    second = save_numbered(video, out)
    assert second["mp4"].name == "000001.mp4" and "png" not in second
    (out / "000007.json").write_text("{}")  # numbering continues after the largest existing number
    assert next_output_number(out) == 8
    third = save_numbered(video, out)
    assert third["mp4"].name == "000008.mp4"
    assert first["mp4"].stat().st_size > 0 and count_frames(first["mp4"]) == 4  # untouched
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no temporary files left behind"


def test_a_taken_number_is_skipped_not_overwritten(tmp_path, monkeypatch):
    import svd_lab.video as video_module

    out = tmp_path / "o"
    out.mkdir()
    (out / "000000.mp4").write_bytes(b"someone else's video")
    monkeypatch.setattr(video_module, "next_output_number", lambda folder: 0)  # a race: number 0 looked free
    written = save_numbered(Video(_frames(2)), out)
    assert written["mp4"].name == "000001.mp4"
    assert (out / "000000.mp4").read_bytes() == b"someone else's video"


def test_written_files_respect_the_umask(tmp_path):
    """mkstemp's 0600 used to survive the rename: videos, images and JSON must get 0o666 & ~umask (0644 at 022)."""
    import os
    import stat

    from svd_lab.record import write_records
    from svd_lab.video import save_numbered

    old = os.umask(0o022)
    try:
        written = save_numbered(Video(_frames(2), fps=7, params={"fps_id": 6}), tmp_path / "out",
                                conditioning_image=Image.new("RGB", (16, 16)), gif=True)
        write_records(tmp_path / "records.json", {"x": {"value": 1}})
    finally:
        os.umask(old)
    paths = [*written.values(), tmp_path / "records.json"]
    assert {p.suffix for p in paths} >= {".mp4", ".gif", ".png", ".json"}
    for path in paths:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644, path
