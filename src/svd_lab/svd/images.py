"""Input images for SVD: accept what users have, check it, and bring it to the size the model samples at.

Accepted: a path (str or Path), a PIL image, a numpy array (H, W), (H, W, 3) or (H, W, 4), uint8 or float in
[0, 1], or a torch tensor (3, H, W), (4, H, W), (1, H, W) or with a leading batch of 1, uint8 or float in [0, 1].

Rules:
- transparency (RGBA, LA, P with a transparent colour) is composited on white -- sgm drops the alpha channel,
  which turns transparent areas into whatever colour they hide; white is what a viewer shows;
- grey (L, I, F), palette (P) and CMYK images are converted to RGB; EXIF orientation is applied (phone photos);
- the image is scaled to cover the target size and centre-cropped (no distortion); an image already at the
  target size is not resampled at all;
- width and height must be multiples of 64 (the UNet halves the 1/8-size latents three times; sgm crashes on
  other sizes, generative-models #361 #422).

Every problem raises :class:`ImageInputError` (a ValueError) naming the file or object and what is wrong.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from svd_lab.errors import InputError

SIZE_MULTIPLE = 64
DEFAULT_WIDTH = 1024
DEFAULT_HEIGHT = 576


class ImageInputError(InputError):
    """The input image is missing, unreadable, of an unsupported kind, or the target size is invalid."""


def check_size(width: int, height: int) -> None:
    """Raise ImageInputError unless width and height are positive multiples of 64 (suggesting the nearest ones)."""
    bad = [f"{name} {value}" for name, value in (("width", width), ("height", height))
           if int(value) != value or value < SIZE_MULTIPLE or value % SIZE_MULTIPLE]
    if bad:
        def nearest(v):
            return max(SIZE_MULTIPLE, round(v / SIZE_MULTIPLE) * SIZE_MULTIPLE)

        raise ImageInputError(
            f"{' and '.join(bad)} not a multiple of {SIZE_MULTIPLE} (at least {SIZE_MULTIPLE}): SVD needs sizes "
            f"divisible by {SIZE_MULTIPLE}; try width {nearest(width)} and height {nearest(height)}"
        )


def _describe(obj: Any) -> str:
    if isinstance(obj, (str, os.PathLike)):
        return f"image file {str(obj)!r}"
    return f"{type(obj).__module__}.{type(obj).__name__}"


def _open_path(path: Path) -> Image.Image:
    if not path.exists():
        raise ImageInputError(f"image file {str(path)!r} does not exist")
    if path.is_dir():
        raise ImageInputError(f"image file {str(path)!r} is a directory, not an image")
    if path.stat().st_size == 0:
        raise ImageInputError(f"image file {str(path)!r} is empty (0 bytes)")
    try:
        with Image.open(path) as img:
            img.load()  # decode now: a truncated file fails here, not later
            return img.copy() if img.format != "MPO" else img.convert(img.mode)
    except UnidentifiedImageError:
        raise ImageInputError(
            f"image file {str(path)!r} is not an image PIL can read (expected PNG, JPEG, WebP, ...)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageInputError(f"image file {str(path)!r} is corrupt or truncated: {exc}") from None


def _from_array(array: np.ndarray, what: str) -> Image.Image:
    """(H, W), (H, W, 3) or (H, W, 4), uint8 or float in [0, 1] -> PIL image."""
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ImageInputError(
            f"{what} has shape {tuple(array.shape)}; expected (H, W), (H, W, 3) or (H, W, 4) "
            "(channels last; tensors are channels first)")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageInputError(f"{what} is empty (shape {tuple(array.shape)})")
    if array.dtype == np.uint8:
        data = array
    elif np.issubdtype(array.dtype, np.floating) or array.dtype == np.bool_:
        data = array.astype(np.float64)
        if not np.isfinite(data).all():
            raise ImageInputError(f"{what} contains NaN or infinite values")
        if data.min() < 0 or data.max() > 1:
            raise ImageInputError(
                f"{what} has float values in [{data.min():.3g}, {data.max():.3g}]; expected [0, 1] "
                "(or pass uint8 values 0..255)")
        data = np.round(data * 255).astype(np.uint8)
    else:
        raise ImageInputError(f"{what} has dtype {array.dtype}; expected uint8 (0..255) or float (0..1)")
    # uint8 H x W -> "L", H x W x 3 -> "RGB", H x W x 4 -> "RGBA": Pillow infers the mode from the shape
    # (passing mode= is deprecated since Pillow 11.3).
    return Image.fromarray(np.ascontiguousarray(data))


def _from_tensor(tensor: torch.Tensor, what: str) -> Image.Image:
    t = tensor.detach().cpu()
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise ImageInputError(f"{what} has a batch of {t.shape[0]} images; pass one image")
        t = t[0]
    if t.ndim != 3 or t.shape[0] not in (1, 3, 4):
        raise ImageInputError(
            f"{what} has shape {tuple(tensor.shape)}; expected (C, H, W) with C = 1, 3 or 4 (channels first)")
    if t.is_floating_point():
        t = t.to(torch.float64)
    return _from_array(t.permute(1, 2, 0).numpy(), what)


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB; transparent areas become white."""
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16/32-bit grey: rescale to 0..255 instead of clipping (convert('L') would saturate most 16-bit images)
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        arr = np.clip(arr / top * 255.0, 0, 255).round().astype(np.uint8)
        return Image.fromarray(arr).convert("RGB")
    return img.convert("RGB") if img.mode != "RGB" else img


def resize_and_crop(img: Image.Image, width: int, height: int) -> Image.Image:
    """Scale (Lanczos) so the image covers width x height, then cut the centre; no-op at the exact size."""
    if img.size == (width, height):
        return img
    scale = max(width / img.width, height / img.height)
    new_w, new_h = max(width, round(img.width * scale)), max(height, round(img.height * scale))
    resized = img.resize((new_w, new_h), Image.Resampling.LANCZOS)
    left, top = (new_w - width) // 2, (new_h - height) // 2
    return resized.crop((left, top, left + width, top + height))


def load_image(image: Any, width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT) -> Image.Image:
    """Any accepted input -> an RGB PIL image of exactly width x height (see the module docstring)."""
    check_size(width, height)
    what = _describe(image)
    if isinstance(image, (str, os.PathLike)):
        img = _open_path(Path(image).expanduser())
    elif isinstance(image, Image.Image):
        img = image
    elif isinstance(image, np.ndarray):
        img = _from_array(image, what)
    elif isinstance(image, torch.Tensor):
        img = _from_tensor(image, what)
    else:
        raise ImageInputError(
            f"cannot use a {what} as an image; pass a file path, a PIL image, a numpy array or a torch tensor")
    if img.width == 0 or img.height == 0:
        raise ImageInputError(f"{what} is empty ({img.width}x{img.height})")
    img = ImageOps.exif_transpose(img) if img.getexif() else img
    return resize_and_crop(to_rgb(img), width, height)


def image_to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> (1, 3, H, W) float32 in [0, 1].

    Built as numpy (1, H, W, 3) / 255 and transposed without copying -- a channels-last memory layout, exactly
    like diffusers' VaeImageProcessor. The layout changes which convolution kernels run, hence the last bits of
    the result; keeping it identical is part of what makes our pipeline reproduce diffusers' bit for bit.
    """
    array = np.stack([np.asarray(img.convert("RGB")).astype(np.float32) / 255.0])
    return torch.from_numpy(array.transpose(0, 3, 1, 2))
