"""``svd-lab batch IMAGES --out DIR``: one video per (image, seed, motion bucket), resumable, on 1..N processes.

``--processes N`` starts ``accelerate launch --multi_gpu --num_processes N`` on this same command (CPU processes
joined with gloo where there is no CUDA); ``accelerate launch -m svd_lab batch ...`` works too, with any
accelerate configuration (GPUs, machines).
See :mod:`svd_lab.batches` for the manifest, resuming and how jobs are claimed.
"""

from __future__ import annotations

import os
import subprocess
import sys

from svd_lab.commands import finite_float
from svd_lab.errors import UserError


def _int_list(text: str) -> list[int]:
    import argparse

    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def register(sub) -> None:
    from svd_lab.svd.versions import VERSIONS

    p = sub.add_parser("batch", help="many videos: every image of a folder x seeds x motion buckets, resumable, "
                                     "on one or many processes/GPUs (accelerate)")
    p.add_argument("images", nargs="+", help="a folder of images, image files, or glob patterns (quote them)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder: videos and manifest.jsonl")
    p.add_argument("--seeds", type=_int_list, default=[23], help="comma-separated seeds (default 23)")
    p.add_argument("--motion-bucket-ids", type=_int_list, default=None,
                   help="comma-separated motion_bucket_ids (default: the version's, 127)")
    p.add_argument("--processes", type=int, default=None,
                   help="start N processes with accelerate launch (one per GPU; --cpu without CUDA)")
    p.add_argument("--version", choices=["auto", *VERSIONS], default="auto",
                   help="SVD version (default auto: as `svd-lab sample`)")
    p.add_argument("--profile", choices=["auto", "small", "tiny", "full", "mini"], default="auto",
                   help="as for svd-lab sample (mini: the old name of small)")
    p.add_argument("--checkpoint", metavar="PATH")
    p.add_argument("--lora", metavar="FILE", help="a LoRA adapter from `svd-lab finetune --mode lora`")
    p.add_argument("--lora-scale", type=finite_float, default=1.0, help="adapter strength (default 1)")
    p.add_argument("--frames", type=int, dest="num_frames")
    p.add_argument("--steps", type=int, dest="num_steps")
    p.add_argument("--fps-id", type=int)
    p.add_argument("--cond-aug", type=finite_float)
    p.add_argument("--min-guidance", type=finite_float)
    p.add_argument("--max-guidance", type=finite_float)
    p.add_argument("--width", type=int)
    p.add_argument("--height", type=int)
    p.add_argument("--decoding-t", type=int)
    p.add_argument("--memory", choices=["auto", "resident", "offload"], default="auto")
    p.add_argument("--device", default=None, help="default: the process's accelerate device")
    p.add_argument("--dtype", default=None)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def _launch(args, argv: list[str]) -> int:
    import torch

    if args.processes < 1:
        raise UserError("--processes must be >= 1")
    rest, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == "--processes":
            skip = True
            continue
        if a.startswith("--processes="):
            continue
        rest.append(a)
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(args.processes),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    if args.processes > 1:
        # torchrun-style launcher; without CUDA the processes run on the CPU (see svd_lab.batches.process_state)
        command.append("--multi_gpu")
    elif not torch.cuda.is_available():
        command.append("--cpu")
    command += ["-m", "svd_lab", *rest]
    rc = subprocess.call(command, env={**os.environ, "SVD_LAB_BATCH_CHILD": "1"})
    if rc != 0:
        return rc
    from svd_lab.batches import last_result

    result = last_result(args.out)
    return 0 if result is not None and all(j["status"] == "done" for j in result["jobs"]) else 1


def _jobs(args):
    from svd_lab.batches import OPTIONS, find_images, plan_jobs

    options = {k: getattr(args, k) for k in OPTIONS}   # the CLI's dest names are the job options' names
    return plan_jobs(find_images(args.images), args.seeds, args.motion_bucket_ids or [None], **options)


def run(args) -> int:
    from svd_lab.batches import run_batch

    if args.processes is not None and not os.environ.get("SVD_LAB_BATCH_CHILD"):
        return _launch(args, sys.argv[sys.argv.index("batch"):])
    jobs = _jobs(args)
    result = run_batch(jobs, args.out, version=args.version, profile=args.profile, checkpoint=args.checkpoint,
                       device=args.device, dtype=args.dtype, memory=args.memory, progress=not args.no_progress,
                       lora=args.lora, lora_scale=args.lora_scale)
    from svd_lab.batches import process_state

    if process_state().is_main_process:
        print(result.table())
    if os.environ.get("SVD_LAB_BATCH_CHILD"):
        return 0  # the launching process reads the manifest and sets the exit status
    return 0 if result.counts.get("failed", 0) == 0 else 1
