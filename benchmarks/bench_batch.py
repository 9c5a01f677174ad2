"""svd-lab batch throughput: jobs per minute with 1 and 2 processes (accelerate), on this machine's CPU or GPUs.

Each run starts from an empty folder: 12 jobs (the three course images x 4 seeds) on the small profile (tiny when
the small weights are absent), wall time including each process's pipeline load. Standalone:
``python benchmarks/bench_batch.py [--jobs-per-image 4] [--processes 1,2]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    import torch

    from svd_lab.batches import job_states
    from svd_lab.small.model import is_present

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs-per-image", type=int, default=4)
    parser.add_argument("--processes", default="1,2")
    args = parser.parse_args(argv)
    profile = "small" if is_present() else "tiny"
    images = [str(REPO / "assets" / f"{n}.png") for n in ("rocket", "astronaut", "coffee")]
    seeds = ",".join(str(s) for s in range(1, args.jobs_per_image + 1))
    device = f"{torch.cuda.device_count()} GPU(s)" if torch.cuda.is_available() else f"CPU, {os.cpu_count()} cores"
    print("| processes | jobs | seconds | jobs per minute | profile | device |\n|---|---|---|---|---|---|")
    for n in (int(v) for v in args.processes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out"
            command = [sys.executable, "-m", "svd_lab", "batch", *images, "--out", str(out), "--seeds", seeds,
                       "--profile", profile, "--no-progress", "--processes", str(n)]
            env = {**os.environ, "TQDM_DISABLE": "1"}
            if not torch.cuda.is_available():
                env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 2) // n))
            start = time.perf_counter()
            rc = subprocess.call(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seconds = time.perf_counter() - start
            done = sum(1 for e in job_states(out).values() if e["status"] == "done")
        if rc != 0:
            print(f"| {n} | failed (exit {rc}) | | | {profile} | {device} |")
            continue
        print(f"| {n} | {done} | {seconds:.1f} | {60 * done / seconds:.1f} | {profile} | {device} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
