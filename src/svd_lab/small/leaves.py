r"""Procedural training images: "dead leaves", unlimited and licence-free, with natural-image statistics.

A dead-leaves image is a pile of opaque shapes dropped on top of each other (Matheron 1968; Lee, Mumford & Huang
2001 showed it reproduces the scale invariance of natural images: occlusion, edges of every size, flat regions).
Here each image is

    background: a smooth gradient between two colours (skies, walls, table tops)
    n ~ U{6..69} shapes, back to front, radius log-uniform in [1.5 px, size / 2]:
        kind: ellipse, rectangle or triangle, random rotation and aspect ratio
        fill: one colour (60%), or a linear gradient across the shape; 20% also get a sinusoidal texture
        edge: sharp (anti-aliased) or, for a few, softened by up to 0.6 radius (out-of-focus objects)

Colours are drawn in HSV with saturation skewed low and value spread over the whole range, so grey, dark and
bright images all occur. Rendering is done at ``supersample`` x the size and area-averaged down (anti-aliased
edges), and everything depends only on the generator: the same seed gives the same image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SHAPES = (6, 70)            # number of shapes: uniform in [6, 70)
RADIUS_MIN = 1.5            # pixels; the largest radius is half the image size


def random_colours(n: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 3) RGB in [0, 1]: hue uniform, saturation skewed towards grey, value over the whole range (HSV)."""
    hue = torch.rand(n, generator=generator)
    saturation = torch.rand(n, generator=generator) ** 1.3
    value = 0.05 + 0.93 * torch.rand(n, generator=generator) ** 0.7

    def channel(m: int) -> torch.Tensor:  # the standard HSV -> RGB formula, channel by channel
        k = (m + hue * 6) % 6
        return value - value * saturation * torch.clamp(torch.minimum(k, 4 - k), 0, 1)

    return torch.stack([channel(5), channel(3), channel(1)], dim=-1)


def _uniform(generator: torch.Generator) -> float:
    return torch.rand(1, generator=generator).item()


def dead_leaves(height: int, width: int, generator: torch.Generator, supersample: int = 2) -> torch.Tensor:
    """One image (3, height, width) float32 in [0, 1] (see the module docstring)."""
    big_h, big_w = height * supersample, width * supersample
    size = max(height, width)
    ys = (torch.arange(big_h, dtype=torch.float32) + 0.5) / supersample
    xs = (torch.arange(big_w, dtype=torch.float32) + 0.5) / supersample
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")

    first, second = random_colours(2, generator)
    second = first + (second - first) * _uniform(generator)        # gradients of any strength, none too garish
    angle = _uniform(generator) * 2 * math.pi
    t = ((grid_x * math.cos(angle) + grid_y * math.sin(angle)) / size + 1) / 2
    image = first.view(3, 1, 1) * (1 - t) + second.view(3, 1, 1) * t

    count = int(torch.randint(*SHAPES, (1,), generator=generator))
    u = torch.rand(count, generator=generator)
    radii = torch.exp(math.log(RADIUS_MIN) + u * math.log(size / 2 / RADIUS_MIN))
    for radius in torch.sort(radii, descending=True).values.tolist():   # large shapes first: they lie behind
        cx = (_uniform(generator) * 1.2 - 0.1) * width
        cy = (_uniform(generator) * 1.2 - 0.1) * height
        kind = int(torch.randint(0, 3, (1,), generator=generator))
        rotation = _uniform(generator) * math.pi
        aspect = math.exp((_uniform(generator) - 0.5) * 1.4)
        soft = 0.5 / supersample + _uniform(generator) ** 6 * radius * 0.6
        colour, other = random_colours(2, generator)
        gradient, texture = _uniform(generator) >= 0.6, _uniform(generator) < 0.2
        amplitude, frequency = torch.rand(2, generator=generator).tolist()
        # only the shape's bounding box is computed (most shapes are small)
        reach = radius * max(aspect, 1 / aspect) * 1.5 + 2 * soft + 1
        y0, y1 = max(0, int((cy - reach) * supersample)), min(big_h, int((cy + reach) * supersample) + 1)
        x0, x1 = max(0, int((cx - reach) * supersample)), min(big_w, int((cx + reach) * supersample) + 1)
        if y1 <= y0 or x1 <= x0:
            continue
        dx, dy = grid_x[y0:y1, x0:x1] - cx, grid_y[y0:y1, x0:x1] - cy
        along = dx * math.cos(rotation) + dy * math.sin(rotation)
        across = -dx * math.sin(rotation) + dy * math.cos(rotation)
        if kind == 0:    # ellipse
            distance = torch.sqrt((along / aspect) ** 2 + (across * aspect) ** 2) - radius
        elif kind == 1:  # rectangle
            distance = torch.maximum((along / aspect).abs(), (across * aspect).abs()) - radius * 0.8
        else:            # triangle: three half-planes
            distance = torch.stack([dx * math.cos(rotation + k * 2 * math.pi / 3)
                                    + dy * math.sin(rotation + k * 2 * math.pi / 3) - radius * 0.5
                                    for k in range(3)]).amax(0)
        coverage = torch.clamp(0.5 - distance / (2 * soft), 0, 1)
        if gradient:
            tt = (along / (2 * radius) + 0.5).clamp(0, 1)
            fill = colour.view(3, 1, 1) * (1 - tt) + (colour + (other - colour) * 0.6).view(3, 1, 1) * tt
        else:
            fill = colour.view(3, 1, 1)
        if texture:
            fill = fill + amplitude * 0.2 * (torch.sin(along * (0.3 + 2 * frequency))
                                             * torch.sin(across * (0.3 + 1.4 * frequency)))
        region = image[:, y0:y1, x0:x1]
        image[:, y0:y1, x0:x1] = region * (1 - coverage) + fill * coverage
    return F.avg_pool2d(image.clamp(0, 1).unsqueeze(0), supersample)[0]
