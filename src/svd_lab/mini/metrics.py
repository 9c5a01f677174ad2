r"""Quality measured against physics: find the ball in every frame and score the motion.

Detection (per frame): pixels brighter than half the conditioning frame's peak belong to the ball; its position
is the intensity-weighted centroid of those pixels, its area their count. A frame *has the ball* when the area is
within 50-200% of the conditioning frame's.

Scores over a set of videos (``score_videos``):

(a) ``first_frame_error_px``: mean distance between the generated first frame's centroid and the conditioning
    frame's;
(b) ``presence``: share of all frames that have the ball;
(c) ``track_residual_px`` / ``track_ok``: RMS distance between the detected track (frames with the ball) and the best
    constant-velocity-with-bounces trajectory starting at the conditioning frame's position; a video passes when
    it has the ball in at least ``MIN_PRESENT_FRAMES`` of its frames and its residual is <= 1.5 px;
    ``track_ok`` is the share of videos that pass;
(d) ``speed_correlation``: Pearson correlation between the requested speed bucket and the fitted speed ``|v|``
    (0 when the fitted speeds do not vary, e.g. a static video);
(e) ``speed_in_bucket``: share of videos whose fitted speed falls in the requested bucket +-1 (no clamping: a
    speed below 0.5 or above 2.5 px/frame is in no bucket).

The trajectory fit: ``p(t) = reflect(p0 + v t)`` between the walls ``[r, size - r]`` (:func:`data.reflect_into`),
with ``v`` found by a coarse grid search over [-3, 3]^2 px/frame (step 0.05) refined by a fine one (step 0.005):
a bouncing trajectory's error is not convex in ``v``, so no gradient method.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from svd_lab.mini import data

#: the bar for the shipped model (issue 6)
BAR = {
    "first_frame_error_px": ("<=", 1.0),
    "presence": (">=", 0.95),
    "track_ok": (">=", 0.80),
    "speed_correlation": (">=", 0.9),
    "speed_in_bucket": (">=", 0.80),
}
TRACK_TOLERANCE_PX = 1.5
MIN_PRESENT_FRAMES = 6
EVAL_VIDEOS = 64
EVAL_SEED = 20240601


@dataclass
class Scores:
    first_frame_error_px: float
    presence: float
    track_ok: float
    track_residual_px: float  # median RMS residual over videos with >= 2 present frames
    speed_correlation: float
    speed_in_bucket: float
    videos: int

    def to_dict(self) -> dict:
        return asdict(self)

    def passes(self) -> dict[str, bool]:
        """Which bar items this set of scores meets."""
        out = {}
        for key, (op, limit) in BAR.items():
            value = getattr(self, key)
            out[key] = value <= limit if op == "<=" else value >= limit
        return out


def detect(frames: torch.Tensor, reference: torch.Tensor):
    """Find the ball.

    Args:
        frames: (B, T, H, W) intensities in [0, 1].
        reference: (B, H, W) conditioning frames.
    Returns:
        centroids (B, T, 2) in pixels (row, column; NaN where nothing is above threshold), areas (B, T),
        reference centroids (B, 2), reference areas (B,).
    """
    frames, reference = frames.float(), reference.float()
    threshold = 0.5 * reference.flatten(1).amax(dim=1)  # (B,)
    size_h, size_w = frames.shape[-2:]
    rows = torch.arange(size_h, dtype=torch.float32) + 0.5
    cols = torch.arange(size_w, dtype=torch.float32) + 0.5

    def centroid(img: torch.Tensor, thr: torch.Tensor):
        mask = img > thr
        weight = img * mask
        total = weight.sum(dim=(-2, -1))
        r = (weight.sum(dim=-1) * rows).sum(dim=-1) / total
        c = (weight.sum(dim=-2) * cols).sum(dim=-1) / total
        return torch.stack([r, c], dim=-1), mask.sum(dim=(-2, -1)).float()

    cents, areas = centroid(frames, threshold[:, None, None, None])
    ref_cent, ref_area = centroid(reference, threshold[:, None, None])
    return cents, areas, ref_cent, ref_area


def fit_constant_velocity(start: torch.Tensor, track: torch.Tensor, present: torch.Tensor,
                          size: int = data.SIZE, radius: float = data.RADIUS):
    """Best velocity for a bouncing constant-velocity track.

    Args:
        start: (B, 2) position at frame 0; track: (B, T, 2) detected positions; present: (B, T) bool.
    Returns:
        velocity (B, 2) and RMS residual (B,) over present frames (NaN for videos without present frames).
    """
    b, t = present.shape
    time = torch.arange(t, dtype=torch.float32)
    track = torch.nan_to_num(track, nan=0.0)
    weight = present.float()
    count = weight.sum(dim=1)

    def rms_for(candidates: torch.Tensor) -> torch.Tensor:  # candidates (B, K, 2) -> (B, K)
        pred = data.reflect_into(start[:, None, None] + candidates[:, :, None] * time[None, None, :, None],
                                 radius, size - radius)  # (B, K, T, 2)
        err = ((pred - track[:, None]) ** 2).sum(-1)  # (B, K, T)
        return torch.sqrt((err * weight[:, None]).sum(-1) / count.clamp(min=1)[:, None])

    coarse = torch.linspace(-3.0, 3.0, 121)
    grid = torch.stack(torch.meshgrid(coarse, coarse, indexing="ij"), dim=-1).reshape(1, -1, 2).expand(b, -1, 2)
    best = grid[torch.arange(b), rms_for(grid).argmin(dim=1)]  # (B, 2)
    fine = torch.linspace(-0.05, 0.05, 21)
    offsets = torch.stack(torch.meshgrid(fine, fine, indexing="ij"), dim=-1).reshape(1, -1, 2)
    cand = best[:, None] + offsets
    rms = rms_for(cand)
    idx = rms.argmin(dim=1)
    velocity = cand[torch.arange(b), idx]
    residual = rms[torch.arange(b), idx]
    residual = torch.where(count > 0, residual, torch.full_like(residual, float("nan")))
    return velocity, residual


def pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    """Pearson correlation; 0.0 when either side is constant (no linear relation can be measured)."""
    x, y = x.double() - x.double().mean(), y.double() - y.double().mean()
    denom = x.norm() * y.norm()
    return 0.0 if denom == 0 else float((x * y).sum() / denom)


@dataclass
class VideoFits:
    """Per-video measurements behind :class:`Scores` (B videos of T frames).

    Attributes:
        centroids: (B, T, 2) detected ball positions (row, column), NaN where nothing was found.
        present: (B, T) frames that show one ball of the right size.
        start: (B, 2) the ball in the conditioning frame.
        velocity: (B, 2) fitted px/frame; residual: (B,) RMS px of the fit; speed: (B,) |velocity| (0 when fewer
        than two frames have the ball); first_error: (B,) px; track_pass: (B,) bool.
    """

    centroids: torch.Tensor
    present: torch.Tensor
    start: torch.Tensor
    velocity: torch.Tensor
    residual: torch.Tensor
    speed: torch.Tensor
    first_error: torch.Tensor
    track_pass: torch.Tensor

    def fitted_track(self, size: int = data.SIZE, radius: float = data.RADIUS) -> torch.Tensor:
        """(B, T, 2): the fitted bouncing trajectory at every frame."""
        t = torch.arange(self.centroids.shape[1], dtype=torch.float32)
        return data.reflect_into(self.start[:, None] + self.velocity[:, None] * t[None, :, None], radius,
                                 size - radius)


def fit_videos(videos: torch.Tensor, first_frames: torch.Tensor, radius: float = data.RADIUS) -> VideoFits:
    """Detect the ball in every frame and fit each video's trajectory (see the module docstring).

    Args:
        videos: (B, T, 1, H, W) or (B, T, H, W) in [0, 1]; first_frames: (B, H, W) (or with singleton dims).
    """
    if videos.ndim == 5:
        videos = videos[:, :, 0]
    first_frames = first_frames.reshape(videos.shape[0], *videos.shape[-2:])
    b = videos.shape[0]
    cents, areas, ref_cent, ref_area = detect(videos, first_frames)
    present = (areas >= 0.5 * ref_area[:, None]) & (areas <= 2.0 * ref_area[:, None]) & (areas > 0)
    # (a): a first frame with nothing detected counts as the worst possible error (the frame diagonal)
    diagonal = float(torch.tensor(videos.shape[-2:], dtype=torch.float32).norm())
    first_err = (cents[:, 0] - ref_cent).norm(dim=-1)
    first_err = torch.where(torch.isfinite(first_err), first_err, torch.full_like(first_err, diagonal))
    velocity, residual = fit_constant_velocity(ref_cent, cents, present, videos.shape[-1], radius)
    n_present = present.sum(dim=1)
    track_pass = (n_present >= MIN_PRESENT_FRAMES) & (residual <= TRACK_TOLERANCE_PX)
    speed = torch.where(n_present >= 2, velocity.norm(dim=-1), torch.zeros(b))
    return VideoFits(centroids=cents, present=present, start=ref_cent, velocity=velocity, residual=residual,
                     speed=speed, first_error=first_err, track_pass=track_pass)


def score_videos(videos: torch.Tensor, first_frames: torch.Tensor, speed_buckets: torch.Tensor,
                 radius: float = data.RADIUS) -> Scores:
    """Score generated videos against physics (see the module docstring).

    Args:
        videos: (B, T, 1, H, W) or (B, T, H, W) in [0, 1]; first_frames: (B, H, W) (or with singleton dims) the
        conditioning frames; speed_buckets: (B,) the requested buckets.
    """
    fits = fit_videos(videos, first_frames, radius)
    speed_buckets = torch.as_tensor(speed_buckets).reshape(-1)
    fitted_bucket = torch.floor((fits.speed - data.MIN_SPEED) / data.BUCKET_WIDTH)
    in_bucket = (fitted_bucket - speed_buckets.float()).abs() <= 1
    usable = fits.residual[fits.present.sum(dim=1) >= 2]
    return Scores(
        first_frame_error_px=float(fits.first_error.mean()),
        presence=float(fits.present.float().mean()),
        track_ok=float(fits.track_pass.float().mean()),
        track_residual_px=float(usable.median()) if usable.numel() else float("nan"),
        speed_correlation=pearson(speed_buckets.float(), fits.speed),
        speed_in_bucket=float(in_bucket.float().mean()),
        videos=fits.present.shape[0],
    )


def eval_set(num_videos: int = EVAL_VIDEOS, seed: int = EVAL_SEED) -> data.BallVideos:
    """The fixed evaluation videos: every speed bucket equally often (bucket = index mod 8)."""
    buckets = torch.arange(num_videos) % data.NUM_SPEED_BUCKETS
    return data.generate(num_videos, seed=seed, speed_bucket=buckets)


def static_copy(videos: data.BallVideos) -> torch.Tensor:
    """The 'static copy' baseline: the first frame repeated (passes (c) trivially; (d) and (e) catch it)."""
    return videos.frames[:, :1].expand_as(videos.frames).clone()


def evaluate_model(model, num_videos: int = EVAL_VIDEOS, seed: int = EVAL_SEED, sample_seed: int = 0,
                   settings=None, batch: int = 64) -> Scores:
    """Generate from the fixed eval set's first frames and speed buckets, and score. ``model`` is a
    :class:`svd_lab.mini.model.MiniWorldModel`."""
    ref = eval_set(num_videos, seed)
    outs = []
    for i in range(0, num_videos, batch):
        sl = slice(i, i + batch)
        outs.append(model.generate(ref.frames[sl, 0], ref.speed_bucket[sl], seed=sample_seed + i,
                                   settings=settings))
    return score_videos(torch.cat(outs), ref.frames[:, 0], ref.speed_bucket)


def format_table(rows: dict[str, Scores]) -> str:
    """A plain-text table, one row per model, with the bar in the header."""
    head = ["model", "(a) first px", "(b) present", "(c) track ok", "median resid px", "(d) speed r",
            "(e) in bucket"]
    bar = ["bar", "<= 1.0", ">= 95%", ">= 80%", "", ">= 0.90", ">= 80%"]
    lines = [head, bar]
    for name, s in rows.items():
        lines.append([name, f"{s.first_frame_error_px:.2f}", f"{100 * s.presence:.1f}%", f"{100 * s.track_ok:.1f}%",
                      f"{s.track_residual_px:.2f}", f"{s.speed_correlation:.3f}", f"{100 * s.speed_in_bucket:.1f}%"])
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in lines)


def baseline_scores(num_videos: int = EVAL_VIDEOS, seed: int = EVAL_SEED, settings=None,
                    like=None) -> dict[str, Scores]:
    """Rows for the comparison table: real data, the static copy, and (when ``like``, a trained
    :class:`~svd_lab.mini.model.MiniWorldModel`, is given) an untrained DiT of the same shape decoded by the
    same autoencoder -- so the row isolates what DiT training adds. (An untrained DiT outputs 0, so its denoiser is
    ``c_skip x``: the exact denoiser for Gaussian data of std sigma_data -- it samples noise of std 0.5.)"""
    ref = eval_set(num_videos, seed)
    rows = {
        "real data": score_videos(ref.frames, ref.frames[:, 0], ref.speed_bucket),
        "static copy": score_videos(static_copy(ref), ref.frames[:, 0], ref.speed_bucket),
    }
    if like is not None:
        from svd_lab.mini.dit import VideoDiT
        from svd_lab.mini.model import MiniWorldModel

        torch.manual_seed(0)
        untrained = MiniWorldModel(like.autoencoder, VideoDiT(like.dit.config), like.residual_scale).eval()
        rows["untrained"] = evaluate_model(untrained, num_videos, seed, settings=settings)
    return rows
