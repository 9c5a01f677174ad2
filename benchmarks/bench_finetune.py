"""`svd-lab finetune`: seconds per step and peak memory per mode.

CPU rows: the shipped small SVD (64x64, 8 frames, batch 4) on generated clips, each mode in its own process (peak
resident memory is per process). GPU rows (when CUDA is present): SVD's full-size UNet with random weights (time and
memory do not depend on the values) at 320x512, 14 frames, batch 1, fp16 autocast, a few timed steps per mode; else
one 'skipped' row. Standalone: ``python benchmarks/bench_finetune.py [--steps 6]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CPU_CASES = [("full", False), ("temporal", False), ("lora", False), ("lora", True), ("full", True)]


def _child(mode: str, checkpointing: bool, steps: int, data: str) -> dict:
    import resource

    import torch

    from svd_lab.finetune.train import FinetuneSettings, finetune
    from svd_lab.small.model import load_small

    torch.set_num_threads(2)
    settings = FinetuneSettings(mode=mode, steps=steps, batch=4, lr=1e-4, gradient_checkpointing=checkpointing,
                                validation_steps=2, checkpoint_every=steps)
    with tempfile.TemporaryDirectory() as tmp:
        result = finetune(data, Path(tmp) / "out", settings, components=load_small(), progress=False,
                          log=lambda m: None)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds_per_step": result.record["seconds_per_step"], "peak_mib": round(peak_mib),
            "trainable": result.record["trainable_parameters"]}


def _gpu_rows(steps: int) -> list[str]:
    import torch

    if not torch.cuda.is_available():
        return ["| GPU | skipped: no CUDA device | | |"]
    from svd_lab.finetune.train import FinetuneSettings, select_trainable
    from svd_lab.small.train import svd_loss
    from svd_lab.svd.components import build_components

    rows = []
    for mode in ("lora", "temporal", "full"):
        components = build_components("full", "svd", seed=0).to(device="cuda")
        settings = FinetuneSettings(mode=mode, rank=64, alpha=64.0, gradient_checkpointing=True)
        trainable = select_trainable(components.unet, settings)
        components.unet.enable_gradient_checkpointing()
        components.unet.train()
        optimizer = torch.optim.AdamW(list(trainable.values()), lr=1e-5)
        torch.cuda.reset_peak_memory_stats()
        z0 = torch.randn(1, 14, 4, 40, 64, device="cuda")
        first = torch.rand(1, 3, 320, 512, device="cuda")
        times = []
        try:
            for step in range(steps + 1):
                torch.cuda.synchronize()
                start = time.perf_counter()
                loss = svd_loss(components, z0, first, torch.tensor([6]), torch.tensor([127]), settings,
                                torch.Generator().manual_seed(step), autocast=torch.autocast("cuda", torch.float16))
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
            peak = torch.cuda.max_memory_allocated() / 2**30
            rows.append(f"| GPU {torch.cuda.get_device_name()} | {mode} (fp16 autocast, checkpointing, 320x512x14) "
                        f"| {sum(times[1:]) / steps:.2f} | {peak:.1f} GiB |")
        except torch.cuda.OutOfMemoryError:
            rows.append(f"| GPU {torch.cuda.get_device_name()} | {mode} | out of memory | |")
        del components, optimizer
        torch.cuda.empty_cache()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "CHECKPOINTING", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        mode, checkpointing, data = args.child
        print(json.dumps(_child(mode, checkpointing == "1", args.steps, data)))
        return 0
    from svd_lab.finetune.demo import write_pan_clips
    from svd_lab.small.model import is_present

    print("| where | mode | seconds per step | peak memory |")
    print("|---|---|---|---|")
    if not is_present():
        print("| CPU | skipped: no small SVD in checkpoints/small | | |")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            write_pan_clips(Path(tmp) / "clips", 4, 12, 64)
            for mode, checkpointing in CPU_CASES:
                out = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--child", mode,
                                      "1" if checkpointing else "0", str(Path(tmp) / "clips")],
                                     capture_output=True, text=True, check=False)
                if out.returncode:
                    print(f"| CPU | {mode} | failed: {out.stderr.strip().splitlines()[-1]} | |")
                    continue
                row = json.loads(out.stdout.strip().splitlines()[-1])
                label = f"{mode}{' + checkpointing' if checkpointing else ''} ({row['trainable']:,} trainable)"
                print(f"| CPU small SVD 64x64x8, batch 4, 2 threads | {label} | {row['seconds_per_step']:.2f} "
                      f"| {row['peak_mib']} MiB (process) |", flush=True)
    for row in _gpu_rows(args.steps):
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
