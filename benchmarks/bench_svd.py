"""SVD sampling speed: our pipeline vs diffusers' StableVideoDiffusionPipeline, and full-size UNet steps on a GPU.

1. Tiny profile on this machine (CPU or GPU): seconds per denoising step of our sampler and of diffusers'
   pipeline on the same modules, same image, same settings (14 frames, guidance batch 2 x 14, 64x64). Step times
   come from each pipeline's per-step callback (median over steps and repeats), so conditioning and decoding are
   not counted. The ratio should be ~1.0: both run the same UNet; the loops differ only in bookkeeping.
2. CUDA only (skipped otherwise): full-size random-weight UNet, fp16, 576x1024, seconds per step (one guided
   step = one UNet call on a batch of 2 x frames) and peak VRAM, for svd (14 frames) and svd_xt (25 frames).

    python benchmarks/bench_svd.py [--frames 14] [--steps 6] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    def line(row):
        return "  ".join(str(x).ljust(w) for x, w in zip(row, widths))

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _step_intervals(stamps: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(stamps)]


def tiny_comparison(frames: int, steps: int, repeats: int) -> list[list[str]]:
    import numpy as np
    import torch
    from PIL import Image

    from svd_lab.svd.components import build_components
    from svd_lab.svd.diffusers_interop import diffusers_pipeline
    from svd_lab.svd.pipeline import SVDPipeline

    device = "cuda" if torch.cuda.is_available() else "cpu"
    comps = build_components("tiny", "svd", seed=0)
    ours = SVDPipeline(comps, device=device, dtype="float32", memory="resident")
    theirs = diffusers_pipeline(comps).to(device)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    stamps: list[float] = []

    def our_callback(step):
        sync()
        stamps.append(time.perf_counter())

    def their_callback(pipe, i, t, kwargs):
        sync()
        stamps.append(time.perf_counter())
        return kwargs

    ours_steps, theirs_steps = [], []
    for repeat in range(repeats + 1):  # the first round warms up (kernel selection, allocator)
        stamps.clear()
        ours.run(image, num_frames=frames, num_steps=steps, seed=repeat, decoding_t=frames, callback=our_callback,
                 progress=False)
        if repeat:  # stamps after each step: intervals are steps 2..N (the first step's start is not stamped)
            ours_steps += _step_intervals(stamps)

        stamps.clear()
        theirs(image, height=64, width=64, num_frames=frames, num_inference_steps=steps, decode_chunk_size=frames,
               generator=torch.Generator().manual_seed(repeat), output_type="latent",
               callback_on_step_end=their_callback)
        if repeat:
            theirs_steps += _step_intervals(stamps)

    ours_s, theirs_s = statistics.median(ours_steps), statistics.median(theirs_steps)
    where = f"{device}, {torch.get_num_threads()} threads" if device == "cpu" else torch.cuda.get_device_name()
    return [
        ["tiny 64x64", f"{frames}", where, "svd-lab", f"{ours_s:.4f}", "", f"{ours_s / theirs_s:.2f}"],
        ["tiny 64x64", f"{frames}", where, "diffusers", f"{theirs_s:.4f}", "", "1.00"],
    ]


def full_unet_on_gpu(steps: int = 3) -> list[list[str]]:
    import torch

    if not torch.cuda.is_available():
        return [["full 576x1024 fp16", "14 / 25", "no CUDA GPU", "svd-lab", "skipped", "skipped", ""]]
    from svd_lab.svd.components import build_unet
    from svd_lab.svd.configs import unet_config

    rows = []
    for version in ("svd", "svd_xt"):
        frames = unet_config("full", version)["num_frames"]
        torch.cuda.empty_cache()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            unet = build_unet("full", version).to("cuda", torch.float16).eval()
        batch = 2 * frames  # guidance: [uncond, cond] x frames
        x = torch.randn(2, frames, 8, 72, 128, device="cuda", dtype=torch.float16)
        context = torch.randn(2, 1, 1024, device="cuda", dtype=torch.float16)
        ids = torch.tensor([[6, 127, 0.02]] * 2, device="cuda", dtype=torch.float16)
        t = torch.tensor(0.25 * 3.0, device="cuda")
        with torch.inference_mode():
            unet(x, t, encoder_hidden_states=context, added_time_ids=ids)  # warm-up
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            for _ in range(steps):
                unet(x, t, encoder_hidden_states=context, added_time_ids=ids)
            torch.cuda.synchronize()
        per_step = (time.perf_counter() - start) / steps
        peak = torch.cuda.max_memory_allocated() / 2**30
        rows.append([f"full 576x1024 fp16 ({version})", f"{frames} (batch {batch})", torch.cuda.get_device_name(),
                     "svd-lab UNet", f"{per_step:.3f}", f"{peak:.1f}", ""])
        del unet, x
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=14)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    # One thread by default: the tiny networks' operations take microseconds, so thread hand-offs dominate and,
    # on a shared CPU, make the comparison noise (measured here: ratio 1.31 with 2 busy threads, 0.97 with 1).
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's choice)")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = tiny_comparison(args.frames, args.steps, args.repeats) + full_unet_on_gpu()
    print(_table(rows, ["case", "frames", "device", "pipeline", "s/step", "peak VRAM GiB", "ratio vs diffusers"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
