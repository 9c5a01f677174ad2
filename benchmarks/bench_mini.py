"""Mini world model benchmark: the quality table (real / untrained / static copy / shipped), sampling speed,
and the DiT Table-4 cost counter.

Standalone: ``python benchmarks/bench_mini.py [--model DIR] [--videos 64]``. The 10-minute learner's row is
added when a model folder ``outputs/mini/ten-minutes`` (or ``--ten-minutes DIR``) exists.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import torch

    from svd_lab.mini import flops, metrics
    from svd_lab.mini.model import SamplingSettings, load_model, read_facts
    from svd_lab.paths import checkpoints_dir, outputs_dir

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(checkpoints_dir() / "mini"))
    parser.add_argument("--ten-minutes", default=str(outputs_dir() / "mini" / "ten-minutes"))
    parser.add_argument("--videos", type=int, default=64)
    args = parser.parse_args(argv)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    folder = Path(args.model)
    if not (folder / "dit.safetensors").is_file():
        print(f"skipped: no mini model in {folder}")
        return 0
    model = load_model(folder)
    facts = read_facts(folder)
    settings = SamplingSettings()
    rows = metrics.baseline_scores(args.videos, settings=settings, like=model)
    ten = Path(args.ten_minutes)
    if (ten / "dit.safetensors").is_file():
        rows["10-minute run"] = metrics.evaluate_model(load_model(ten), args.videos, settings=settings)
    start = time.perf_counter()
    rows["shipped"] = metrics.evaluate_model(model, args.videos, settings=settings)
    seconds = time.perf_counter() - start
    print(f"\nquality on {args.videos} fixed videos ({settings.steps} sampling steps, guidance "
          f"{settings.guidance_min}->{settings.guidance_max}); shipped: {facts.get('command', '?')}, "
          f"{facts.get('steps', '?')} steps, autoencoder PSNR {facts.get('autoencoder_psnr_db', '?')} dB")
    print(metrics.format_table(rows))
    missed = [k for k, ok in rows["shipped"].passes().items() if not ok]
    print("bar: met" if not missed else f"bar: missed {', '.join(missed)}")
    print(f"\nsampling speed: {args.videos} videos in {seconds:.1f} s ({seconds / args.videos * 1000:.0f} ms/video, "
          f"with guidance = 2 network calls per step)")
    print("\nDiT paper Table 4 at 256x256 (G multiply-adds; FLOP = 2x):")
    print(flops.format_dit_table(flops.dit_table()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
