r"""Image-to-video training clips for the small SVD: camera pans over procedural images and photos, with ground truth.

A clip is what SVD is trained on, in miniature: a first frame and the frames that follow it, plus the two
micro-conditions SVD is told about -- the frame rate (``fps_id`` = frames per second - 1) and the amount of motion
(``motion_bucket_id``, 0..255). Here the motion is a camera pan whose *speed* is set by the motion bucket and whose
*per-frame step* is that speed divided by the frame rate, so the two numbers mean what they mean in SVD:

    speed   = SPEED_AT_255 * motion_bucket_id / 255        image widths per second
    step    = speed / (fps_id + 1) * width                 pixels per frame (content moves left by ``step``)
    frame t = the source seen through a window moved right by t * step pixels

**Direction rule: always the same** (the camera pans right, so content moves left). A single image carries no
information about which way the camera will move; with random directions the best a model could learn from one
image is the average over directions -- a blur that hardly moves. SVD's own motion score is a scalar too. A
fixed direction makes the motion a function of the image and the two numbers, which is what lets us *measure*
whether the model obeys motion_bucket_id and fps_id (:mod:`svd_lab.small.metrics`).

**Sources** (:data:`LEAVES_SHARE` of the clips are procedural, the rest photos):

- *dead-leaves images* (:mod:`svd_lab.small.leaves`): unlimited, licence-free, with the edges, flat regions and
  colours of natural images at every scale. A pool of canvases is drawn from the run's seed (:func:`leaves_pool`);
  held-out canvases come from another seed stream.
- *photos* bundled with scikit-image (``skimage.data``; a training-only dependency, ``pip install
  'svd-lab[train]'``), each named with its licence in :data:`PHOTOS` and ``assets/LICENSES.md``; flipped left-right
  and with their colour channels permuted at random (so the few colour photos teach more than their own palettes);
  grey photos get a random two-colour tint. The bottom quarter of every photo (:data:`HELD_OUT_FRACTION`) is never
  trained on: evaluation crops come from there.

**Held out entirely** (never used for training, used for evaluation): the course's own inputs (rocket, astronaut,
coffee: :data:`HELD_OUT_ASSETS`) and two whole photos (:data:`HELD_OUT_PHOTOS`).

Rendering: a source is prefiltered by an area-averaging pyramid (no aliasing), then sampled bilinearly at
sub-pixel positions: a crop at ``scale`` source pixels per output pixel whose window slides by ``step * scale``
source pixels per frame. Everything is deterministic given the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import torch
import torch.nn.functional as F

SIZE = 64
FRAMES = 8
#: image widths per second at motion_bucket_id 255: at the default fps_id 6 (7 fps) a 64-pixel frame moves
#: 1.83 px per frame, 12.8 px over 8 frames; at fps_id 5 and bucket 255, 2.13 px per frame
SPEED_AT_255 = 0.2
FPS_IDS = (5, 15)             # training fps_id range (inclusive): 6 to 16 frames per second
COND_AUG_LOG_MEAN, COND_AUG_LOG_STD = -3.0, 1.2   # training cond_aug ~ lognormal (median 0.05)
HELD_OUT_FRACTION = 0.25      # bottom quarter of every training photo: evaluation crops only
MAX_SCALE = 12.0              # at most 12 source pixels per output pixel (crops are never upsampled: min 1)
LEAVES_SHARE = 0.6            # share of clips drawn from dead-leaves canvases (the rest: photos)
CANVAS_HEIGHT, CANVAS_WIDTH = 128, 192   # dead-leaves canvases: room for 64-pixel pans at up to 2x zoom-out
#: a leaves pool's seed stream for held-out canvases (added to the run's seed)
HELD_OUT_LEAVES_SEED = 1_000_000

#: training photos: skimage.data function -> (what, author, licence). The course assets are not among them.
PHOTOS = {
    "chelsea": ("Chelsea the cat", "Stefan van der Walt", "CC0"),
    "hubble_deep_field": ("Hubble eXtreme Deep Field", "NASA", "public domain"),
    "immunohistochemistry": ("IHC-stained colonic glands", "CMMI", "no known copyright restrictions"),
    "retina": ("Fundus photograph of a left eye", "Mikael Häggström", "CC0"),
    "camera": ("Man with a camera (grey)", "Lav Varshney", "CC0"),
    "brick": ("Brick wall (grey)", "CC0Textures", "CC0"),
    "grass": ("Grass (grey)", "linolafett (DeviantArt)", "CC0"),
    "gravel": ("Gravel (grey)", "CC0Textures", "CC0"),
    "coins": ("Greek coins from Pompeii (grey)", "Brooklyn Museum", "no known copyright restrictions"),
    "clock": ("Motion-blurred wall clock (grey)", "Stefan van der Walt", "public domain"),
    "text": ("Corner-detection test text (grey)", "Wikipedia", "public domain"),
    "cell": ("Cell in saline, quantitative phase (grey)", "Paul Müller et al.", "CC0"),
}
#: the course's input images: held out from training, evaluated on
HELD_OUT_ASSETS = ("rocket", "astronaut", "coffee")
#: whole photos never used for training: name -> (where it comes from, what, author, licence)
HELD_OUT_PHOTOS = {
    "motorcycle": ("skimage.data.stereo_motorcycle()[0]", "Motorcycle (Middlebury 2014 stereo benchmark, left view)",
                   "N. Nesic, P. Westling, X. Wang, Y. Kitajima, G. Krathwohl, D. Scharstein", "research use"),
    "hopper": ("matplotlib sample_data/grace_hopper.jpg", "Rear Admiral Grace M. Hopper, 1984",
               "James S. Davis, U.S. Navy", "public domain"),
}


def speed_to_step(motion_bucket_id: torch.Tensor | float, fps_id: torch.Tensor | float,
                  size: int = SIZE) -> torch.Tensor:
    """Ground-truth pixels per frame (content moving left) for a motion bucket and fps_id at ``size`` pixels."""
    bucket = torch.as_tensor(motion_bucket_id, dtype=torch.float32)
    fps = torch.as_tensor(fps_id, dtype=torch.float32) + 1.0
    return SPEED_AT_255 * bucket / 255.0 / fps * size


@dataclass
class Clips:
    """A batch of clips and the ground truth that made them.

    Attributes:
        frames: (B, T, 3, H, W) float32 in [0, 1].
        fps_id: (B,) int64, frames per second - 1.
        motion_bucket_id: (B,) int64 in 0..255.
        cond_aug: (B,) float32 noise augmentation of the conditioning frame (what SVD's third time id says).
        step: (B,) float32 ground-truth displacement in pixels per frame (content moves left).
        source: names of the sources (B,): a photo's name or ``leaves:<canvas index>``.
        scale: (B,) float32 source pixels per output pixel.
    """

    frames: torch.Tensor
    fps_id: torch.Tensor
    motion_bucket_id: torch.Tensor
    cond_aug: torch.Tensor
    step: torch.Tensor
    source: list
    scale: torch.Tensor

    def __len__(self) -> int:
        return self.frames.shape[0]

    def added_time_ids(self) -> torch.Tensor:
        """(B, 3) [fps_id, motion_bucket_id, cond_aug], as SVD's UNet takes them."""
        return torch.stack([self.fps_id.float(), self.motion_bucket_id.float(), self.cond_aug.float()], dim=1)


# ------------------------------------------------------------------------------------------- sources
def _require_skimage():
    try:
        import skimage.data
    except ImportError:
        raise ImportError("the small SVD's training photos come from scikit-image: pip install 'svd-lab[train]' "
                          "(or pip install scikit-image)") from None
    return skimage.data


def _to_tensor(array) -> torch.Tensor:
    t = torch.from_numpy(array.copy()).float()
    if t.max() > 1.0:
        t = t / 255.0
    t = t.unsqueeze(0) if t.ndim == 2 else t[..., :3].permute(2, 0, 1)
    return t.contiguous()


@cache
def photo(name: str) -> torch.Tensor:
    """A training photo as (C, H, W) float32 in [0, 1]; C = 3 for colour, 1 for grey photos."""
    if name not in PHOTOS:
        raise ValueError(f"unknown training photo {name!r}; known: {', '.join(PHOTOS)}")
    return _to_tensor(getattr(_require_skimage(), name)())


def held_out_photo(name: str) -> torch.Tensor:
    """A whole held-out photo (:data:`HELD_OUT_PHOTOS`) as (3, H, W) float32 in [0, 1]."""
    if name == "motorcycle":
        return _to_tensor(_require_skimage().stereo_motorcycle()[0])
    if name == "hopper":
        import matplotlib.cbook
        from PIL import Image

        with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as image:
            import numpy as np

            return _to_tensor(np.asarray(image.convert("RGB")))
    raise ValueError(f"unknown held-out photo {name!r}; known: {', '.join(HELD_OUT_PHOTOS)}")


def leaves_pool(count: int, seed: int, height: int = CANVAS_HEIGHT, width: int = CANVAS_WIDTH) -> torch.Tensor:
    """``count`` dead-leaves canvases (count, 3, height, width) uint8, canvas i drawn from seed ``seed`` + i."""
    from svd_lab.small.leaves import dead_leaves

    canvases = torch.empty(count, 3, height, width, dtype=torch.uint8)
    for i in range(count):
        image = dead_leaves(height, width, torch.Generator().manual_seed(int(seed) + i))
        canvases[i] = (image * 255).round().to(torch.uint8)
    return canvases


def _pyramid(image: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Area-averaged levels of an image: level L is 2^L times smaller (down to ~96 pixels on the short side)."""
    levels = [image]
    while min(levels[-1].shape[-2:]) >= 2 * 96:
        levels.append(F.avg_pool2d(levels[-1].unsqueeze(0), 2).squeeze(0))
    return tuple(levels)


@cache
def _photo_pyramid(name: str, mirror: bool = False) -> tuple[torch.Tensor, ...]:
    """The photo's pyramid, or its mirror image's (left-right; the pan still moves content left)."""
    return _pyramid(photo(name).flip(-1) if mirror else photo(name))


def _render(levels: tuple[torch.Tensor, ...], x0: float, y0: float, scale: float, shifts: list[float],
            size: int) -> torch.Tensor:
    """Frames (T, C, size, size) of the window at top-left (x0, y0) source px, moved right by each shift * scale."""
    level = min(math.floor(math.log2(max(scale, 1.0))), len(levels) - 1)
    src = levels[level]
    factor = 2.0 ** level
    h, w = src.shape[-2:]
    centres = (torch.arange(size, dtype=torch.float32) + 0.5) * scale       # output pixel centres, source px
    ys = (y0 + centres) / factor
    frames = []
    for shift in shifts:
        xs = (x0 + shift * scale + centres) / factor
        # grid_sample's normalised coordinates (align_corners=False): -1 .. 1 spans the pixel edges
        grid = torch.stack(torch.meshgrid((ys / h) * 2 - 1, (xs / w) * 2 - 1, indexing="ij")[::-1], dim=-1)
        frames.append(F.grid_sample(src.unsqueeze(0), grid.unsqueeze(0), mode="bilinear", padding_mode="border",
                                    align_corners=False)[0])
    return torch.stack(frames)


def _tint(frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Grey (T, 1, H, W) -> colour (T, 3, H, W): a random dark colour for black, a random light one for white."""
    dark = torch.rand(3, generator=generator) * 0.35
    light = 0.65 + torch.rand(3, generator=generator) * 0.35
    return dark.view(1, 3, 1, 1) + frames * (light - dark).view(1, 3, 1, 1)


def _window(height: int, width: int, top: int, bottom: int, size: int, travel: float,
            generator: torch.Generator, max_scale: float = MAX_SCALE) -> tuple[float, float, float]:
    """A random (x0, y0, scale) whose whole pan (``travel`` output pixels) stays inside rows top..bottom."""
    region_h = bottom - top
    limit = min(max_scale, region_h / size, width / (size + travel))
    if limit < 1.0:
        raise ValueError(f"a {width}x{region_h} region is too small for {size}-pixel crops with {travel:.1f} px "
                         "of travel")
    u = torch.rand(3, generator=generator)
    scale = math.exp(u[0].item() * math.log(limit))                         # log-uniform in [1, limit]
    x0 = u[1].item() * (width - (size + travel) * scale)
    y0 = top + u[2].item() * (region_h - size * scale)
    return x0, y0, scale


def _photo_rows(name: str, held_out: bool) -> tuple[int, int]:
    h = photo(name).shape[1]
    band_top = int(h * (1 - HELD_OUT_FRACTION))
    return (band_top, h) if held_out else (0, band_top)


def usable_photos(held_out: bool, size: int = SIZE) -> list[str]:
    """Photos with room for a crop of ``size`` pixels in the training region (or in the held-out band)."""
    names = []
    for name in PHOTOS:
        top, bottom = _photo_rows(name, held_out)
        if bottom - top >= size and photo(name).shape[2] >= size * 1.5:
            names.append(name)
    return names


def generate(batch: int, seed: int, frames: int = FRAMES, size: int = SIZE, held_out: bool = False,
             motion_bucket_id: int | None = None, fps_id: int | None = None, cond_aug: float | None = None,
             leaves: torch.Tensor | None = None, leaves_share: float = LEAVES_SHARE) -> Clips:
    """``batch`` random clips, the same for the same arguments.

    Each clip draws a source (a canvas of ``leaves``, a pool from :func:`leaves_pool`, with probability
    ``leaves_share``; else a photo), a crop (log-uniform scale), a motion bucket (uniform 0..255), an fps_id
    (uniform in ``FPS_IDS``) and a cond_aug (lognormal); any of the three numbers can be fixed. ``held_out=True``
    crops photos from their held-out bottom band (evaluation). Photos are mirrored and their colour channels
    permuted at random (training only). Without ``leaves``, every clip is a photo.
    """
    if batch < 1 or frames < 1:
        raise ValueError(f"batch and frames must be >= 1, got {batch} and {frames}")
    generator = torch.Generator().manual_seed(int(seed))
    # only-leaves clips need no photos (and no scikit-image: the fine-tuning lesson runs without the train extra)
    names = [] if leaves is not None and leaves_share >= 1.0 else usable_photos(held_out, size)
    out, buckets, fpss, augs, steps, used, scales = [], [], [], [], [], [], []
    for _ in range(batch):
        bucket = int(torch.randint(256, (1,), generator=generator)) if motion_bucket_id is None else motion_bucket_id
        fps = (int(torch.randint(FPS_IDS[0], FPS_IDS[1] + 1, (1,), generator=generator))
               if fps_id is None else fps_id)
        aug = (math.exp(COND_AUG_LOG_MEAN + COND_AUG_LOG_STD * torch.randn(1, generator=generator).item())
               if cond_aug is None else cond_aug)
        step = float(speed_to_step(bucket, fps, size))
        travel = step * (frames - 1)
        draw_leaves = leaves is not None and torch.rand(1, generator=generator).item() < leaves_share
        if draw_leaves:
            index = int(torch.randint(len(leaves), (1,), generator=generator))
            canvas = leaves[index].float() / 255.0
            x0, y0, scale = _window(canvas.shape[1], canvas.shape[2], 0, canvas.shape[1], size, travel, generator)
            clip = _render(_pyramid(canvas), x0, y0, scale, [t * step for t in range(frames)], size)
            name = f"leaves:{index}"
        else:
            name = names[int(torch.randint(len(names), (1,), generator=generator))]
            top, bottom = _photo_rows(name, held_out)
            _, h, w = photo(name).shape
            mirror = not held_out and torch.rand(1, generator=generator).item() < 0.5
            x0, y0, scale = _window(h, w, top, bottom, size, travel, generator)
            clip = _render(_photo_pyramid(name, mirror), x0, y0, scale, [t * step for t in range(frames)], size)
            if clip.shape[1] == 1:
                clip = _tint(clip, generator)
            elif not held_out:
                clip = clip[:, torch.randperm(3, generator=generator)]
        out.append(clip.clamp(0, 1))
        buckets.append(bucket), fpss.append(fps), augs.append(aug), steps.append(step), used.append(name)
        scales.append(scale)
    return Clips(frames=torch.stack(out), fps_id=torch.tensor(fpss), motion_bucket_id=torch.tensor(buckets),
                 cond_aug=torch.tensor(augs, dtype=torch.float32), step=torch.tensor(steps),
                 source=used, scale=torch.tensor(scales))


def smooth_fields(frames: torch.Tensor, generator: torch.Generator, share: float, whole: bool = False) -> torch.Tensor:
    """Put a smooth colour field into a ``share`` of the clips (B, T, 3, H, W) in [0, 1]: skies, walls, light.

    The field is bicubic through a random k x k grid of colours (k = 2..4: linear ramps to gentle curves), the same
    for every frame of a clip. ``whole``: the field replaces the clip; otherwise it blends in with a weight uniform
    in [0.3, 1] (a light falling on the scene), which pulls every colour towards the middle of the gamut, so a
    decoder trained on it learns fewer saturated colours (measured in docs/small_svd_levers.md). Dead-leaves
    canvases and cropped photos are mostly texture and flat patches; this is the data that teaches a decoder the
    slow ramps of a sky, which the rocket is mostly made of. Both modes draw the same random numbers.
    """
    b, _, _, h, w = frames.shape
    k = 2 + int(torch.randint(3, (1,), generator=generator))
    coarse = torch.rand(b, 3, k, k, generator=generator)
    field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True).clamp(0, 1)
    used = (torch.rand(b, generator=generator) < share).float()
    spread = torch.rand(b, generator=generator)
    weight = (used if whole else used * (0.3 + 0.7 * spread)).view(b, 1, 1, 1, 1)
    return (frames * (1 - weight) + field.unsqueeze(1) * weight).clamp(0, 1)


def thin_lines(frames: torch.Tensor, generator: torch.Generator, share: float, count: int = 6) -> torch.Tensor:
    """Draw up to ``count`` thin anti-aliased segments into a ``share`` of the clips (B, T, 3, H, W) in [0, 1]: masts,
    poles, wires, the rocket's launch towers.

    Dead-leaves shapes are blobs at least a few pixels wide; a one-pixel line inside an 8x8 latent cell is the detail a
    thumbnail blurs away and a decoder must learn to place. Each segment has a random centre, angle (half of them
    vertical within 10 degrees, like most masts in photos), length, width (0.7 to 2.5 pixels) and colour, the same in
    every frame of the clip.
    """
    b, _, _, h, w = frames.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32) + 0.5, torch.arange(w, dtype=torch.float32) + 0.5,
                            indexing="ij")
    out = frames.clone()
    for i in range(b):
        if float(torch.rand(1, generator=generator)) >= share:
            continue
        n = 1 + int(torch.randint(count, (1,), generator=generator))
        for _ in range(n):
            cx, cy = (torch.rand(2, generator=generator) * torch.tensor([w, h])).tolist()
            vertical = float(torch.rand(1, generator=generator)) < 0.5
            angle = (math.pi / 2 + (float(torch.rand(1, generator=generator)) - 0.5) * math.radians(20) if vertical
                     else float(torch.rand(1, generator=generator)) * math.pi)
            length = (0.2 + 0.8 * float(torch.rand(1, generator=generator))) * max(h, w)
            width = 0.7 + 1.8 * float(torch.rand(1, generator=generator))
            colour = torch.rand(3, generator=generator)
            along = (xs - cx) * math.cos(angle) + (ys - cy) * math.sin(angle)
            across = ((xs - cx) * math.sin(angle) - (ys - cy) * math.cos(angle)).abs()
            cover = ((width / 2 + 0.5 - across).clamp(0, 1) * (length / 2 + 0.5 - along.abs()).clamp(0, 1))
            out[i] = out[i] * (1 - cover) + colour.view(3, 1, 1) * cover
    return out


def pan_image(image: torch.Tensor, step: float, frames: int = FRAMES) -> torch.Tensor:
    """The ground-truth pan of an image already at output size: (3, H, W) -> (T, 3, H, W).

    Frame t shows the image moved left by ``t * step`` pixels; what enters at the right edge is the image's last
    column repeated (a stand-in for unknown content; metrics ignore that strip, :func:`visible_columns`).
    """
    _, h, w = image.shape
    xs = torch.arange(w, dtype=torch.float32) + 0.5
    ys = torch.arange(h, dtype=torch.float32) + 0.5
    result = []
    for t in range(frames):
        grid = torch.stack(torch.meshgrid((ys / h) * 2 - 1, ((xs + t * step) / w) * 2 - 1, indexing="ij")[::-1],
                           dim=-1).unsqueeze(0)
        result.append(F.grid_sample(image.unsqueeze(0), grid, mode="bilinear", padding_mode="border",
                                    align_corners=False)[0])
    return torch.stack(result)


def visible_columns(width: int, step: float, t: int) -> int:
    """Columns of frame t of a pan that frame 0 could show (the rest entered from the right):
    ``width - ceil(t step) - 1``."""
    return width - math.ceil(t * step) - 1
