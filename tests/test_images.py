"""Input images: every accepted kind, the conversion rules, the size rules and the error messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from svd_lab.svd.images import ImageInputError, check_size, image_to_tensor, load_image


def _rgb(w=96, h=80, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ------------------------------------------------------------------ kinds of input
def test_path_pil_numpy_and_tensor_give_the_same_image(tmp_path):
    arr = _rgb(128, 64)
    path = tmp_path / "in.png"
    Image.fromarray(arr).save(path)
    expected = np.asarray(load_image(Image.fromarray(arr), 128, 64))
    assert np.array_equal(expected, arr)  # already at the target size: not resampled at all
    for source in (path, str(path), arr, torch.from_numpy(arr).permute(2, 0, 1),
                   torch.from_numpy(arr).permute(2, 0, 1)[None], torch.from_numpy(arr).permute(2, 0, 1) / 255.0,
                   arr.astype(np.float32) / 255):
        out = load_image(source, 128, 64)
        assert out.mode == "RGB" and out.size == (128, 64)
        assert np.array_equal(np.asarray(out), arr), type(source)


def test_rgba_is_composited_on_white():
    rgba = np.zeros((64, 64, 4), dtype=np.uint8)
    rgba[..., 0] = 200                     # red, ...
    rgba[:, :32, 3] = 255                  # opaque on the left, fully transparent on the right
    rgba[:, 32:48, 3] = 128                # half transparent in between
    out = np.asarray(load_image(Image.fromarray(rgba), 64, 64)).astype(int)
    assert (out[:, :32] == [200, 0, 0]).all()
    assert (out[:, 48:] == [255, 255, 255]).all()
    mid = out[0, 40]
    assert abs(mid[0] - (200 * 128 + 255 * 127) / 255) <= 1 and abs(mid[1] - 127) <= 1


def test_grey_palette_and_transparent_palette_become_rgb():
    grey = Image.fromarray(np.full((64, 64), 77, np.uint8))
    assert np.asarray(load_image(grey, 64, 64))[0, 0].tolist() == [77, 77, 77]
    pal = Image.fromarray(_rgb(64, 64)).convert("P")
    out = load_image(pal, 64, 64)
    assert out.mode == "RGB"
    pal_t = Image.new("P", (64, 64), 0)
    pal_t.putpalette([10, 20, 30] * 256)
    pal_t.info["transparency"] = 0
    assert np.asarray(load_image(pal_t, 64, 64))[0, 0].tolist() == [255, 255, 255]
    sixteen = Image.fromarray(np.full((64, 64), 65535, np.uint16))
    assert np.asarray(load_image(sixteen, 64, 64))[0, 0].tolist() == [255, 255, 255]
    assert load_image(np.full((64, 64), 0.5), 64, 64).getpixel((0, 0)) == (128, 128, 128)


def test_resize_covers_and_centre_crops():
    # a wide image with a red centre column band: after cover-resize + crop to a square, red stays centred
    arr = np.zeros((100, 300, 3), np.uint8)
    arr[:, 140:160] = [255, 0, 0]
    arr[:, :20] = [0, 255, 0]  # left border is cropped away
    out = np.asarray(load_image(arr, 64, 64))
    assert out.shape == (64, 64, 3)
    assert out[32, 32, 0] > 200 and out[32, 32, 1] < 50
    assert (out[:, 0, 1] < 50).all(), "the left border must be cropped, not squeezed in"
    small = load_image(_rgb(40, 30), 128, 64)  # up-scaling works too
    assert small.size == (128, 64)


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((64, 128, 3), np.uint8)
    arr[:, :64] = 255  # left half white
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    path = tmp_path / "phone.jpg"
    img.save(path, exif=exif, quality=95)
    out = np.asarray(load_image(path, 64, 128))  # portrait after rotation: 64 wide, 128 high
    assert out[:32].mean() > 200 and out[-32:].mean() < 50


def test_tensor_layout_matches_diffusers():
    img = Image.fromarray(_rgb(64, 64))
    t = image_to_tensor(img)
    assert t.shape == (1, 3, 64, 64) and t.dtype == torch.float32
    assert t.stride() == (64 * 64 * 3, 1, 64 * 3, 3)  # channels-last memory, like diffusers' numpy_to_pt
    assert torch.equal(t[0, :, 5, 7], torch.tensor(_rgb(64, 64)[5, 7], dtype=torch.float32) / 255.0)


# ------------------------------------------------------------------ sizes
@pytest.mark.parametrize("w, h", [(1000, 576), (1024, 570), (32, 64), (0, 64)])
def test_sizes_must_be_multiples_of_64(w, h):
    with pytest.raises(ImageInputError, match="multiple of 64") as info:
        check_size(w, h)
    assert "try width" in str(info.value)
    with pytest.raises(ImageInputError, match="multiple of 64"):
        load_image(_rgb(), w, h)


def test_suggested_size_is_the_nearest_multiple():
    with pytest.raises(ImageInputError, match="try width 1024 and height 576"):
        check_size(1000, 570)
    check_size(1024, 576)
    check_size(64, 64)


# ------------------------------------------------------------------ errors that name the problem
def test_missing_file(tmp_path):
    path = tmp_path / "nope.png"
    with pytest.raises(ImageInputError, match=r"nope\.png.*does not exist"):
        load_image(path, 64, 64)


def test_directory_empty_file_and_non_image(tmp_path):
    with pytest.raises(ImageInputError, match="is a directory"):
        load_image(tmp_path, 64, 64)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageInputError, match=r"empty\.png.*empty \(0 bytes\)"):
        load_image(empty, 64, 64)
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    with pytest.raises(ImageInputError, match=r"notes\.png.*not an image"):
        load_image(text, 64, 64)


def test_truncated_file_is_reported_as_corrupt(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(_rgb(256, 256)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageInputError, match=r"cut\.png.*corrupt or truncated"):
        load_image(path, 64, 64)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((64, 64, 2), np.uint8), r"shape \(64, 64, 2\)"),
        (np.zeros((3, 64, 64), np.uint8), "channels last"),
        (np.full((8, 8, 3), 2.0), r"float values in \[2, 2\]"),
        (np.full((8, 8, 3), np.nan), "NaN"),
        (np.zeros((8, 8, 3), np.int64), "dtype int64"),
        (np.zeros((0, 8, 3), np.uint8), "empty"),
        (torch.zeros(2, 3, 8, 8), "batch of 2"),
        (torch.zeros(8, 8, 3), "channels first"),
        (torch.full((3, 8, 8), -1.0), r"\[-1, -1\]"),
        ([1, 2, 3], "cannot use a builtins.list"),
    ],
)
def test_bad_objects(bad, message):
    with pytest.raises(ImageInputError, match=message):
        load_image(bad, 64, 64)
