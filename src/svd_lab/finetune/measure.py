"""Which way a video moves: the signed camera motion a fine-tuning run is judged by.

:func:`signed_motion` is the median shift between consecutive frames, horizontal and vertical, in pixels per frame
(:func:`svd_lab.small.metrics.frame_shift`: sub-pixel, content moving left or up is positive). A median of
consecutive shifts cannot be faked by one jump or a flash (those are single outliers).
"""

from __future__ import annotations

import statistics

import torch


def signed_motion(frames: torch.Tensor) -> tuple[float, float]:
    """(dx, dy) pixels per frame of a video (T, 3, H, W) in [0, 1]; + = content moving left / up."""
    from svd_lab.small.metrics import frame_shift

    if frames.shape[0] < 2:
        return 0.0, 0.0
    shifts = [frame_shift(frames[i].float(), frames[i + 1].float()) for i in range(frames.shape[0] - 1)]
    return float(statistics.median(s[0] for s in shifts)), float(statistics.median(s[1] for s in shifts))
