"""The GPU check: full-size SVD and SVD-XT (random weights) at 576x1024 on a CUDA GPU, in each memory mode.

Run by ``benchmarks/gpu_check.sh`` on a lent GPU (one command, a few minutes); rehearsed on the CPU with the tiny
profile by ``tests/test_gpu_check.py`` (``--profile tiny --device cpu``), so it is known to run before a GPU is
ever lent. Not a test dependency and not part of ``make bench`` (it needs CUDA).

For each version (svd: 14 frames, 25 steps; svd_xt: 25 frames, 30 steps) and memory mode (``resident``: all three
networks on the GPU; ``offload``: each moved in only while it runs; ``chunked``: resident with the UNet's
feed-forward layers run one batch element at a time) it times a few sampling steps and the decode, extrapolates the
end-to-end seconds to the version's step count (**stated as an extrapolation**: steps x measured seconds per step
+ the measured encode and decode), and reads the peak GPU memory. Then it checks what must be bit-identical and
measures what is not:

- offloaded vs resident weights: the same latents and frames, bit for bit (the same kernels on the same device);
- forward chunking: a different summation order, so a measured difference of the latents, not equality;
- decoding_t 14 vs 2: the temporal decoder mixes frames within a chunk, so a measured difference of the frames.

Writes ``gpu_check.json`` and ``gpu_check.md`` (a table) into ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))   # the lent machine runs from the working tree, without installing svd-lab


def random_weights(profile: str, version: str, device: torch.device, dtype: torch.dtype, seed: int = 0):
    """The version's networks with random weights: built on the meta device (no time, no memory), allocated on
    ``device`` and initialised there by each layer's own default initialisation from a seeded generator -- seconds
    for 2.2 billion parameters on a GPU, where building them on a CPU would take minutes."""
    from svd_lab.svd.components import SVDComponents, build_components

    meta = build_components(profile, version, device="meta")
    modules = {}
    torch.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed(seed)
    for name, module in meta.modules().items():
        module = module.to_empty(device=device)
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                tensor.zero_()                  # what no reset_parameters covers (AlphaBlender's mix) starts at 0
        for layer in module.modules():
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
        # buffers a constructor computes (CLIP's position ids) are not parameters: rebuild them
        embeddings = getattr(getattr(module, "vision_model", None), "embeddings", None)
        if embeddings is not None and hasattr(embeddings, "position_ids"):
            embeddings.register_buffer("position_ids", torch.arange(embeddings.num_positions, device=device)
                                       .expand((1, -1)), persistent=False)
        modules[name] = module.to(dtype)
    return SVDComponents(**modules, version=meta.version, decoder=meta.decoder, profile=profile,
                         source=f"random weights, seed {seed}").eval()


def run_mode(components, mode: str, image, frames: int, steps: int, height: int, width: int, device,
             dtype: str, decoding_t: int | None = None):
    """One timed run: returns the Generation and the peak memory (bytes; None off CUDA)."""
    from svd_lab.svd.pipeline import SVDPipeline

    memory = "offload" if mode == "offload" else "resident"
    pipe = SVDPipeline(components, device=device, dtype=dtype, memory=memory)
    if mode == "chunked":
        planner = pipe.plan_memory
        pipe.plan_memory = lambda *a, **k: dataclasses.replace(planner(*a, **k), forward_chunking=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    generation = pipe.run(image, num_frames=frames, num_steps=steps, height=height, width=width, seed=23,
                          decoding_t=decoding_t, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    return generation, seconds, peak


def check(profile: str, device: torch.device, versions: list[str], steps: int, height: int, width: int,
          frames: dict[str, int] | None = None, log=print) -> dict:
    from svd_lab.svd.versions import get_version

    dtype = "float16" if device.type == "cuda" else "float32"
    torch_dtype = torch.float16 if dtype == "float16" else torch.float32
    image = str(ROOT / "assets" / "rocket.png")
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
              "torch": torch.__version__, "profile": profile, "dtype": dtype, "size": f"{width}x{height}",
              "timed_steps": steps, "versions": {}}
    start = time.perf_counter()
    components = random_weights(profile, versions[0], device, torch_dtype)
    report["build_seconds"] = round(time.perf_counter() - start, 1)
    for version in versions:
        spec = get_version(version)
        components.version = version                 # svd and svd_xt share every weight; only defaults differ
        n = (frames or {}).get(version, spec.num_frames)
        rows, results = {}, {}
        for mode in ("resident", "offload", "chunked"):
            generation, seconds, peak = run_mode(components, mode, image, n, steps, height, width, device, dtype)
            p = generation.params
            per_step = p["sampling_seconds"] / steps      # includes the conditioning, once: an upper bound
            rows[mode] = {"sampling_seconds": round(p["sampling_seconds"], 2), "timed_steps": steps,
                          "decoding_seconds": round(p["decoding_seconds"], 2), "decoding_t": p["decoding_t"],
                          "seconds_per_step": round(per_step, 3),
                          "extrapolated_seconds": round(per_step * spec.num_steps + p["decoding_seconds"], 1),
                          "extrapolated_to_steps": spec.num_steps,
                          "peak_gib": None if peak is None else round(peak / 2**30, 2),
                          "wall_seconds": round(seconds, 1), "cpu_offload": p["cpu_offload"],
                          "forward_chunking": p["forward_chunking"]}
            results[mode] = generation
            log(f"{version} {mode}: {rows[mode]}")
        small_chunks, seconds, peak = run_mode(components, "resident", image, n, steps, height, width, device,
                                               dtype, decoding_t=2)
        resident, offload, chunked = results["resident"], results["offload"], results["chunked"]
        report["versions"][version] = {
            "frames": n, "modes": rows,
            "offload_equals_resident": bool(torch.equal(offload.latents, resident.latents)
                                            and torch.equal(offload.frames, resident.frames)),
            "chunking_latent_difference": float((chunked.latents - resident.latents).abs().max()),
            "decoding_t_2_frame_difference": float((small_chunks.frames - resident.frames).abs().max()),
            "decoding_t_2": {"decoding_seconds": round(small_chunks.params["decoding_seconds"], 2),
                             "peak_gib": None if peak is None else round(peak / 2**30, 2)},
        }
    report["total_seconds"] = round(time.perf_counter() - start, 1)
    return report


def table(report: dict) -> str:
    title = (f"GPU check: {report['device']}, torch {report['torch']}, {report['dtype']}, {report['size']}, "
             f"profile {report['profile']} (random weights; networks built in {report['build_seconds']} s)")
    header = ("| version | mode | s/step (timed steps) | decode s (decoding_t) "
              "| end to end s, EXTRAPOLATED to | peak GiB |")
    lines = [title, "", header, "|---|---|---|---|---|---|"]
    for version, v in report["versions"].items():
        for mode, r in v["modes"].items():
            peak = "-" if r["peak_gib"] is None else f"{r['peak_gib']:.2f}"
            lines.append(f"| {version} ({v['frames']} frames) | {mode} | {r['seconds_per_step']:.3f} "
                         f"({r['timed_steps']}) | {r['decoding_seconds']:.2f} ({r['decoding_t']}) "
                         f"| {r['extrapolated_seconds']:.1f} ({r['extrapolated_to_steps']} steps) | {peak} |")
    header = ("| version | offloaded == resident (bit for bit) | forward chunking: max latent difference "
              "| decoding_t 2 vs 14: max frame difference |")
    lines += ["", header, "|---|---|---|---|"]
    for version, v in report["versions"].items():
        lines.append(f"| {version} | {'yes' if v['offload_equals_resident'] else 'NO'} "
                     f"| {v['chunking_latent_difference']:.2e} | {v['decoding_t_2_frame_difference']:.2e} |")
    lines.append(f"\ntotal {report['total_seconds']} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="full", choices=["full", "tiny"])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--versions", default="svd,svd_xt")
    parser.add_argument("--steps", type=int, default=3, help="sampling steps timed per mode")
    parser.add_argument("--height", type=int, default=576)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=None, help="frames per video (default: each version's)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks"), help="folder for gpu_check.json and .md")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: this check runs on a lent GPU (benchmarks/gpu_check.sh); rehearse it on the CPU with "
              "--profile tiny --device cpu --height 64 --width 64")
        return 2
    from svd_lab.svd.pipeline import gpu_rehearsal

    versions = [v for v in args.versions.split(",") if v]
    frames = {v: args.frames for v in versions} if args.frames else None
    with gpu_rehearsal():                            # on a CPU: the offload mode's placement runs there too
        report = check(args.profile, device, versions, args.steps, args.height, args.width, frames)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "gpu_check.md").write_text(table(report) + "\n")
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
