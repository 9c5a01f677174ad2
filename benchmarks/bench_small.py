"""The small SVD: its metric table in pixel space (issue 24's bar: references, untrained, shipped) and its CPU
sampling speed through the unchanged SVDPipeline.

Standalone: ``python benchmarks/bench_small.py [--model DIR] [--crops 24] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    import torch

    from svd_lab import paths
    from svd_lab.small import metrics
    from svd_lab.small.model import is_present, shipped_folder
    from svd_lab.svd.profiles import load_pipeline

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    parser.add_argument("--crops", type=int, default=metrics.NUM_CROPS)
    parser.add_argument("--json", default=None, help="also write the evaluation as JSON to this file")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if not is_present(args.model or shipped_folder()):
        print(f"skipped: no small SVD in {args.model or shipped_folder()}")
        return 0
    start = time.perf_counter()
    evaluation = metrics.evaluate(args.model, num_crops=args.crops, log=lambda m: None)
    print(metrics.format_table(evaluation))
    model = evaluation.rows[-1].name
    missed = [k for k, ok in evaluation.passes(model).items() if not ok]
    print("bar: met" if not missed else f"bar: missed {'; '.join(missed)}")
    print(f"({len(evaluation.images)} images: 3 course, 2 held-out photos, {args.crops} held-out crops; "
          f"{evaluation.rows[-1].videos} videos per model; {time.perf_counter() - start:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(evaluation.to_dict(), f, indent=1)

    pipe, _ = load_pipeline("svd", profile="small", device="cpu", progress=False)
    rocket = str(paths.project_root() / "assets" / "rocket.png")
    pipe.run(rocket, progress=False)                       # warm-up
    timings = []
    for _ in range(3):
        generation = pipe.run(rocket, progress=False)
        timings.append(generation.params["sampling_seconds"] + generation.params["decoding_seconds"])
    p = generation.params
    print(f"\n| sampling | frames | steps | size | seconds (median of 3) |\n|---|---|---|---|---|\n"
          f"| small, CPU, {torch.get_num_threads()} threads | {p['num_frames']} | {p['num_steps']} "
          f"| {p['width']}x{p['height']} | {sorted(timings)[1]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
