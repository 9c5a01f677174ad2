"""Wan: seconds and memory of a video, and the flow-matching vs EDM comparison of the mini DiT.

CPU rows: the tiny profile of each Wan version (random tiny networks: the machinery's overhead, not a real video),
each solver, end to end; and the mini DiTs of ``tools/train_objectives.sh`` (EDM and flow matching, the same
4,000-step budget) scored on the mini world model's physics metrics at several step counts and both solver orders
(skipped when checkpoints/objectives/ is absent).

GPU rows (when CUDA is present; a few timed steps at fewer frames, within a 15-minute device lease): the full-size
transformer of each version with random weights (time and memory do not depend on the values) in bf16, one
guided step (two transformer passes) at the reference frame size and 21 frames, per memory mode; seconds per step
and peak VRAM, and the extrapolation to the reference settings (50 steps, all frames: transformer cost grows with
tokens^1..2, so the extrapolation assumes the lower bound, linear, and says so). Else one 'skipped' row.
Standalone: ``python benchmarks/bench_wan.py [--videos 32]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))   # a lent GPU machine runs from the working tree (benchmarks/gpu_check.sh)
STEP_COUNTS = (2, 4, 8, 16)


def cpu_tiny_rows() -> list[str]:
    import torch

    from svd_lab.wan.pipeline import WanPipeline, tiny_components
    from svd_lab.wan.versions import WAN_VERSIONS

    torch.set_num_threads(1)
    rows = []
    for name in WAN_VERSIONS:
        pipe = WanPipeline(tiny_components(name))
        for solver in ("unipc", "euler"):
            pipe.run("a red rocket", solver=solver, progress=False)         # warm-up
            start = time.perf_counter()
            g = pipe.run("a red rocket", solver=solver, progress=False)
            seconds = time.perf_counter() - start
            p = g.params
            rows.append(f"| CPU, 1 thread | {name} tiny, {solver} | {p['num_frames']} frames {p['width']}x"
                        f"{p['height']}, {p['num_steps']} steps | {seconds:.3f} s | - |")
    return rows


def objective_rows(videos: int) -> list[str]:
    """The flow-vs-EDM table: presence, speed in bucket and first-frame error per step count and solver."""
    import torch

    from svd_lab.mini import metrics
    from svd_lab.mini.model import SamplingSettings, load_model

    root = ROOT / "checkpoints" / "objectives"
    if not all((root / o / "dit.safetensors").is_file() for o in ("edm", "flow")):
        return ["| CPU | skipped: checkpoints/objectives/{edm,flow} absent (tools/train_objectives.sh) | | | |"]
    torch.set_num_threads(2)
    rows = []
    for objective in ("edm", "flow"):
        model = load_model(root / objective)
        for solver in ("euler", "heun"):
            for steps in STEP_COUNTS:
                start = time.perf_counter()
                s = metrics.evaluate_model(model, num_videos=videos, settings=SamplingSettings(steps=steps,
                                                                                             solver=solver))
                calls = steps if solver == "euler" else 2 * steps - 1
                rows.append(f"| CPU, {videos} videos | mini DiT {objective}, {solver} x {steps} ({calls} calls) "
                            f"| present {100 * s.presence:.0f}%, speed in bucket {100 * s.speed_in_bucket:.0f}%, "
                            f"first frame {s.first_frame_error_px:.2f} px | {time.perf_counter() - start:.1f} s | - |")
    return rows


def gpu_rows(frames: int = 21, steps: int = 2) -> list[str]:
    import torch

    if not torch.cuda.is_available():
        return ["| GPU | skipped: no CUDA device | | | |"]
    from diffusers import WanTransformer3DModel

    from svd_lab.wan import configs
    from svd_lab.wan.versions import WAN_VERSIONS

    rows, device = [], torch.device("cuda")
    for name, spec in WAN_VERSIONS.items():
        factor = 16 if spec.takes_image else 8
        latent = (1, configs.FULL_TRANSFORMER[name]["in_channels"], (frames - 1) // 4 + 1, spec.height // factor,
                  spec.width // factor)
        text = torch.randn(1, 512, 4096, device=device, dtype=torch.bfloat16)
        try:
            with torch.device(device):
                transformer = WanTransformer3DModel(**configs.FULL_TRANSFORMER[name]).to(torch.bfloat16).eval()
            x = torch.randn(latent, device=device, dtype=torch.bfloat16)
            torch.cuda.reset_peak_memory_stats()
            times = []
            with torch.no_grad():
                for _ in range(steps + 1):
                    torch.cuda.synchronize()
                    start = time.perf_counter()
                    for _ in range(2):    # guidance: the prompt and the negative prompt
                        transformer(hidden_states=x, timestep=torch.tensor([500], device=device),
                                    encoder_hidden_states=text, return_dict=False)
                    torch.cuda.synchronize()
                    times.append(time.perf_counter() - start)
            per_step = sum(times[1:]) / steps
            peak = torch.cuda.max_memory_allocated() / 2**30
            scale = (spec.num_frames - 1) / (frames - 1)
            rows.append(f"| GPU {torch.cuda.get_device_name()} | {name} transformer, bf16, resident, "
                        f"{spec.width}x{spec.height}x{frames} | {per_step:.2f} s/step (guided) | {peak:.1f} GiB |"
                        f" x{spec.num_steps} steps x{scale:.1f} frames >= {per_step * spec.num_steps * scale / 60:.0f}"
                        " min (extrapolated, linear lower bound) |")
            del transformer, x
        except torch.cuda.OutOfMemoryError:
            rows.append(f"| GPU {torch.cuda.get_device_name()} | {name} | out of memory | | |")
        torch.cuda.empty_cache()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--videos", type=int, default=32, help="videos per row of the objective comparison")
    parser.add_argument("--gpu-only", action="store_true", help="only the GPU rows (benchmarks/gpu_check.sh)")
    args = parser.parse_args(argv)
    print("| where | what | settings / scores | time | peak memory / note |")
    print("|---|---|---|---|---|")
    if args.gpu_only:
        for row in gpu_rows():
            print(row, flush=True)
        return 0
    for row in cpu_tiny_rows():
        print(row, flush=True)
    for row in objective_rows(args.videos):
        print(row, flush=True)
    for row in gpu_rows():
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
