"""Peak memory and time of loading an sgm single-file SVD checkpoint (svd_lab.convert.sgm).

The converter reads the file tensor by tensor into modules built on the meta device, so its peak resident memory
should be about the converted model plus one tensor -- not the file plus the model, which is what reading the
whole state dict first (``safetensors.torch.load_file``) costs.

A random-weight file with the exact key layout is written first (streamed, one tensor at a time), then each load
runs in a fresh process that reports its resident set after the imports and its peak (``VmHWM``):

    python benchmarks/bench_convert.py            # stand-in: the tiny fixture's layout (12 MB), seconds
    python benchmarks/bench_convert.py --full     # Stability's svd.safetensors layout, fp32: 9.56 GB on disk,
                                                  # ~10 GB peak RAM for the fp32 load; a few minutes
    python benchmarks/bench_convert.py --full --workdir /big/disk --keep

Needs ../shared/fixtures/sgm for the key layouts (skipped otherwise). The generated file is deleted afterwards
unless --keep.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAFETENSORS_DTYPES = {"float32": "F32", "float16": "F16"}


def write_random_sgm_file(shapes: dict[str, list[int]], path: Path, dtype: str = "float32", seed: int = 0) -> int:
    """Write a safetensors file with random N(0, 0.02^2) tensors of the given shapes, one tensor in memory at a time.

    The format: 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}} padded with
    spaces to a multiple of 8, then the tensors' bytes back to back. Returns the file size in bytes.
    """
    import torch

    torch_dtype = getattr(torch, dtype)
    item = torch.empty((), dtype=torch_dtype).element_size()
    header, offset = {}, 0
    for key, shape in shapes.items():
        size = math.prod(shape) * item
        header[key] = {"dtype": SAFETENSORS_DTYPES[dtype], "shape": list(shape),
                       "data_offsets": [offset, offset + size]}
        offset += size
    header["__metadata__"] = {"format": "pt", "note": "random weights for svd-lab's memory benchmark"}
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    generator = torch.Generator().manual_seed(seed)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for key, shape in shapes.items():
            tensor = (torch.randn(shape, generator=generator) * 0.02).to(torch_dtype)
            f.write(memoryview(tensor.contiguous().numpy()).cast("B"))
            del tensor
    os.replace(partial, path)
    return path.stat().st_size


MEASURE = r"""
import json, sys, time
def status():
    d = {}
    for line in open('/proc/self/status'):
        key, _, value = line.partition(':')
        if key in ('VmRSS', 'VmHWM'):
            d[key] = int(value.split()[0]) * 1024
    return d
import torch
torch.set_num_threads(int(sys.argv[4]))
import diffusers, transformers, safetensors
from svd_lab.convert import sgm
path, dtype, how = sys.argv[1], getattr(torch, sys.argv[2]), sys.argv[3]
baseline = status()['VmRSS']
start = time.perf_counter()
if how == 'svd_lab':
    loaded = sgm.load_sgm_modules(path, dtype=dtype, progress=False)
    modules = [loaded.unet, loaded.vae, loaded.image_encoder]
else:  # the naive way: the whole state dict in memory, then converted modules beside it
    from safetensors.torch import load_file
    state = load_file(path)
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    plan = sgm.plan_conversion(shapes)
    modules = sgm.build_empty_modules(plan)
    for comp, module in modules.items():
        sd = {k: src.apply(state[src.key]).to(dtype) for k, src in plan.targets[comp].items()}
        module.load_state_dict(sd, assign=True, strict=False)
    modules = list(modules.values())
seconds = time.perf_counter() - start
model_bytes = sum(p.numel() * p.element_size() for m in modules for p in m.parameters())
s = status()
print(json.dumps({'baseline': baseline, 'peak': s['VmHWM'], 'end': s['VmRSS'], 'seconds': seconds,
                  'model_bytes': model_bytes}))
"""


def measure(path: Path, dtype: str, how: str = "svd_lab", threads: int = 2) -> dict:
    """Load ``path`` in a fresh process; returns its RSS after imports, peak RSS, seconds, model bytes."""
    out = subprocess.run([sys.executable, "-c", MEASURE, str(path), dtype, how, str(threads)], check=False,
                         capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    if out.returncode:
        raise RuntimeError(f"measurement failed ({how}, {dtype}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _gb(n: float) -> str:
    return f"{n / 1e9:6.2f} GB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="Stability's full svd.safetensors layout (9.56 GB fp32)")
    parser.add_argument("--file-dtype", choices=sorted(SAFETENSORS_DTYPES), default="float32",
                        help="dtype of the generated file (the hub's sgm files are float32)")
    parser.add_argument("--workdir", default=None, help="where to write the generated file (default: temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated file")
    parser.add_argument("--naive", action="store_true",
                        help="also measure load_file + load_state_dict (default: only for the stand-in; with --full "
                             "it needs file + model size of free RAM)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from svd_lab.paths import shared_fixtures

    fixtures = shared_fixtures()
    if fixtures is None:
        print("skipped: ../shared/fixtures (sgm key layouts) is absent")
        return 0
    if args.full:
        shapes = json.loads((fixtures / "sgm" / "keys_svd.json").read_text())["tensors"]
        label = "svd.safetensors layout (full size)"
    else:
        from svd_lab.convert.sgm import read_header

        shapes = read_header(fixtures / "sgm" / "tiny" / "svd_tiny.safetensors")[0]
        label = "tiny fixture layout (stand-in; --full for the real size)"

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="svd-lab-bench-convert-"))
    path = workdir / "svd.safetensors"
    try:
        start = time.perf_counter()
        size = write_random_sgm_file(shapes, path, args.file_dtype)
        print(f"{label}: {len(shapes)} tensors, file {_gb(size)} ({args.file_dtype}), "
              f"written in {time.perf_counter() - start:.1f} s")
        rows = [("svd_lab", "float16"), ("svd_lab", "float32")]
        if args.naive or not args.full:
            rows.append(("naive", "float16"))
        print(f"{'loader':<28} {'dtype':<8} {'RSS after imports':>18} {'peak RSS':>10} {'peak - imports':>15} "
              f"{'model':>10} {'file + model':>13} {'seconds':>8}")
        for how, dtype in rows:
            r = measure(path, dtype, how)
            name = "svd_lab (safe_open, meta)" if how == "svd_lab" else "naive (load_file + assign)"
            print(f"{name:<28} {dtype:<8} {_gb(r['baseline']):>18} {_gb(r['peak']):>10} "
                  f"{_gb(r['peak'] - r['baseline']):>15} {_gb(r['model_bytes']):>10} "
                  f"{_gb(size + r['model_bytes']):>13} {r['seconds']:8.1f}", flush=True)
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)
            if args.workdir is None:
                workdir.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
