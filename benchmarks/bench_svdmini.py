"""The tiny SVD that has learned: its metric table (real clips / static copy / untrained / shipped, issue 15's bar)
and its CPU sampling speed through the unchanged SVDPipeline.

Standalone: ``python benchmarks/bench_svdmini.py [--model DIR] [--crops 32]``.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    import torch

    from svd_lab import paths
    from svd_lab.svd.pipeline import load_pipeline
    from svd_lab.svdmini import metrics
    from svd_lab.svdmini.model import is_present, shipped_folder

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(shipped_folder()))
    parser.add_argument("--crops", type=int, default=metrics.NUM_CROPS)
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if not is_present(args.model):
        print(f"skipped: no tiny SVD in {args.model}")
        return 0
    start = time.perf_counter()
    rows = metrics.evaluate(args.model, num_crops=args.crops, log=lambda m: None)
    print(metrics.format_table(rows))
    missed = [k for k, ok in rows[-1].passes().items() if not ok]
    print("bar: met" if not missed else f"bar: missed {', '.join(missed)}")
    print(f"(3 course assets + {args.crops} held-out crops, {rows[-1].videos} videos per model, "
          f"{time.perf_counter() - start:.0f} s)")

    pipe, _ = load_pipeline("svd", profile="mini", device="cpu", progress=False)
    rocket = str(paths.project_root() / "assets" / "rocket.png")
    pipe.run(rocket, progress=False)                       # warm-up
    timings = []
    for _ in range(3):
        generation = pipe.run(rocket, progress=False)
        timings.append(generation.params["sampling_seconds"] + generation.params["decoding_seconds"])
    p = generation.params
    print(f"\n| sampling | frames | steps | size | seconds (median of 3) |\n|---|---|---|---|---|\n"
          f"| mini, CPU, {torch.get_num_threads()} threads | {p['num_frames']} | {p['num_steps']} "
          f"| {p['width']}x{p['height']} | {sorted(timings)[1]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
