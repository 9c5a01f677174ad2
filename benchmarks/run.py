"""`make bench`: run every benchmarks/bench_*.py in its own process and print their tables.

Each benchmark prints its own table (speed, memory, quality); parts that need hardware this machine lacks (a CUDA
GPU) print a 'skipped' row rather than failing. Pass names to run a subset: `python benchmarks/run.py svd mini`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in argv]
    if not scripts:
        print("no benchmarks selected")
        return 1
    failures = []
    for script in scripts:
        print(f"\n=== {script.stem} ===", flush=True)
        start = time.perf_counter()
        rc = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        print(f"--- {script.stem}: exit {rc}, {time.perf_counter() - start:.1f} s", flush=True)
        if rc:
            failures.append(script.stem)
    if failures:
        print("failed:", ", ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
