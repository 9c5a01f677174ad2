"""The playground panel (svd_lab.playground), driven without a browser: set the widgets, click Generate, read what
it shows. The tiny profile (random weights) keeps it to seconds; the small profile checks the training-rule line."""

from __future__ import annotations

import io
from datetime import datetime, timezone

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("ipywidgets")

from svd_lab.playground import UPLOADED, Playground
from svd_lab.svd.profiles import load_pipeline


@pytest.fixture(scope="module")
def tiny_pipe():
    pipe, _ = load_pipeline("svd", profile="tiny", device="cpu", seed=0, progress=False)
    return pipe


def _panel(pipe, **kwargs):
    return Playground(pipe, num_frames=3, height=64, width=64, num_steps=2, video_format="gif", **kwargs)


def test_generate_shows_a_video_and_its_measured_motion(tiny_pipe):
    panel = _panel(tiny_pipe)
    import ipywidgets as widgets

    sliders = (panel.motion_bucket, panel.fps_id, panel.steps, panel.guidance, panel.seed)
    assert all(isinstance(w, (widgets.IntSlider, widgets.FloatRangeSlider)) for w in sliders)
    assert (panel.motion_bucket.min, panel.motion_bucket.max) == (0, 255)
    panel.image_menu.value = "astronaut"
    panel.motion_bucket.value = 200
    panel.fps_id.value = 9
    panel.steps.value = 2
    panel.guidance.value = (1.0, 2.0)
    panel.seed.value = 7
    panel.generate_button.click()
    result = panel.result
    assert result is not None, panel.status.value
    params = result.params
    assert (params["motion_bucket_id"], params["fps_id"], params["num_steps"], params["seed"]) == (200, 9, 2, 7)
    assert (params["min_guidance"], params["max_guidance"]) == (1.0, 2.0)
    assert result.frames.shape == (3, 3, 64, 64)
    assert panel.video.value.startswith("<img src=\"data:image/gif;base64,")
    assert isinstance(panel.motion, float)
    assert f"{panel.motion:.2f} px per frame" in panel.motion_label.value
    assert "training rule" not in panel.motion_label.value          # tiny: no training rule to compare with
    assert panel.progress.value == panel.progress.max == 3          # 2 steps, then the decode
    assert not panel.generate_button.disabled


def test_the_widgets_decide_the_video(tiny_pipe):
    """Same settings, same video; another seed, another video (the panel passes its values through)."""
    panel = _panel(tiny_pipe)
    first = panel.generate().frames
    assert np.array_equal(first.numpy(), panel.generate().frames.numpy())
    panel.seed.value += 1
    assert not np.array_equal(first.numpy(), panel.generate().frames.numpy())


def test_an_uploaded_image_is_animated(tiny_pipe):
    panel = _panel(tiny_pipe)
    buffer = io.BytesIO()
    Image.new("RGB", (80, 48), (200, 30, 30)).save(buffer, format="PNG")
    panel.upload.value = ({"name": "red.png", "type": "image/png", "size": buffer.tell(),
                           "content": memoryview(buffer.getvalue()), "last_modified": datetime.now(timezone.utc)},)
    assert panel.image_menu.value == UPLOADED
    result = panel.generate()
    assert result is not None
    red = np.asarray(result.image, dtype=float).mean(axis=(0, 1))
    assert red[0] > 150 and red[1] < 80                              # the upload, resized and cropped, went in


def test_a_bad_upload_is_reported_in_the_panel_not_raised(tiny_pipe):
    panel = _panel(tiny_pipe)
    panel.image_menu.value = UPLOADED
    assert panel.generate() is None and "upload" in panel.status.value
    panel.upload.value = ({"name": "notes.txt", "type": "text/plain", "size": 5, "content": memoryview(b"hello"),
                           "last_modified": datetime.now(timezone.utc)},)
    assert panel.generate() is None and "notes.txt" in panel.status.value
    assert not panel.generate_button.disabled


def test_on_the_small_profile_the_training_rule_is_shown():
    pipe, _ = load_pipeline("svd", profile="small", device="cpu", seed=0, progress=False)
    panel = Playground(pipe, num_steps=2, video_format="gif")
    panel.motion_bucket.value = 255
    panel.generate_button.click()
    assert "the small SVD's training rule asks 1.83" in panel.motion_label.value
    assert "<b>SVD playground</b> · 64x64, 8 frames, profile small" in panel.widget.children[0].value
