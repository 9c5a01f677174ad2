"""Make the course's input images at SVD's native 1024x576 from freely licensed photos shipped in scikit-image.

Run once (not part of the package's dependencies):

    python -m venv /tmp/assets-venv && /tmp/assets-venv/bin/pip install scikit-image==0.26.0 pillow
    /tmp/assets-venv/bin/python assets/make_assets.py

Each photo is upscaled (Lanczos) just enough to cover 1024x576 and cropped; the crop's vertical anchor keeps the
subject in frame. Sources and licences: assets/LICENSES.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

WIDTH, HEIGHT = 1024, 576
# name -> (scikit-image loader, vertical anchor of the crop: 0 = top, 0.5 = centre, 1 = bottom)
SOURCES = {
    "rocket": (skimage.data.rocket, 0.45),
    "astronaut": (skimage.data.astronaut, 0.15),
    "coffee": (skimage.data.coffee, 0.5),
}


def cover_and_crop(image: np.ndarray, anchor_y: float) -> Image.Image:
    pil = Image.fromarray(image).convert("RGB")
    scale = max(WIDTH / pil.width, HEIGHT / pil.height)
    size = (round(pil.width * scale), round(pil.height * scale))
    pil = pil.resize(size, Image.LANCZOS)
    left = (pil.width - WIDTH) // 2
    top = round((pil.height - HEIGHT) * anchor_y)
    return pil.crop((left, top, left + WIDTH, top + HEIGHT))


def main() -> None:
    out = Path(__file__).resolve().parent
    for name, (load, anchor) in SOURCES.items():
        image = cover_and_crop(load(), anchor)
        image.save(out / f"{name}.png", optimize=True)
        print(f"{name}.png  {image.width}x{image.height}")


if __name__ == "__main__":
    main()
