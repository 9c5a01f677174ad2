"""``svd-lab svdmini``: train and evaluate the tiny SVD that has learned (SVD's own networks, sized for a CPU)."""

from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("svdmini", help="the tiny trained SVD: train / eval (camera pans that obey motion_bucket_id "
                                       "and fps_id)")
    ssub = p.add_subparsers(dest="svdmini_command", metavar="ACTION")

    t = ssub.add_parser("train", help="train VAE + video UNet with SVD's objective (fixed steps and seed)")
    t.add_argument("--steps", type=int, default=None, help="UNet optimiser steps (default: the shipped recipe's)")
    t.add_argument("--vae-steps", type=int, default=None, help="VAE optimiser steps (default: the shipped recipe's)")
    t.add_argument("--pool-clips", type=int, default=None,
                   help="clips encoded once for the UNet's training (default: the shipped recipe's)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default=None,
                   help="output folder (default: outputs/svdmini/run-<seed>); must not hold a model already")
    t.add_argument("--snapshot-every", type=int, default=500, metavar="STEPS",
                   help="score a few held-out crops every this many steps (0 = never)")
    t.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.set_defaults(func=run_train)

    e = ssub.add_parser("eval", help="score a model on the held-out assets and crops (the metric table)")
    e.add_argument("--model", default=None, help="model folder (default: checkpoints/svdmini)")
    e.add_argument("--crops", type=int, default=32, help="held-out crops besides the three course assets")
    e.add_argument("--no-baselines", action="store_true", help="skip real clips, static copy and untrained rows")
    e.add_argument("--steps", type=int, default=None, help="sampling steps (default: the version's, 25)")
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")
    e.set_defaults(func=run_eval)
    p.set_defaults(func=lambda args: p.print_help() or 0)


def run_train(args) -> int:
    from svd_lab.cli import UserError
    from svd_lab.paths import outputs_dir
    from svd_lab.svdmini.train import TrainSettings, train

    for name in ("steps", "vae_steps", "pool_clips"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be a positive integer")
    if args.threads is not None:
        if args.threads < 1:
            raise UserError("--threads must be >= 1")
        import torch

        torch.set_num_threads(args.threads)
    settings = TrainSettings(seed=args.seed)
    for name in ("steps", "vae_steps", "pool_clips"):
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    out = Path(args.out) if args.out else outputs_dir() / "svdmini" / f"run-{args.seed}"
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} is not empty; choose another --out or remove it first")
    _, record = train(settings, out=out, progress=not args.no_progress, snapshot_every=args.snapshot_every)
    print(f"saved {out} ({record['unet_steps']} UNet steps, {record['seconds_per_step']} s/step, VAE PSNR "
          f"{record['vae']['psnr_db']} dB); evaluate with `svd-lab svdmini eval --model {out}`")
    return 0


def run_eval(args) -> int:
    from svd_lab.cli import UserError
    from svd_lab.svdmini import metrics
    from svd_lab.svdmini.model import is_present, shipped_folder

    folder = Path(args.model) if args.model else shipped_folder()
    if not is_present(folder):
        raise UserError(f"{folder} holds no tiny SVD (no model_index.json); train one with `svd-lab svdmini train`")
    if args.crops < 0:
        raise UserError("--crops must be >= 0")
    rows = metrics.evaluate(args.model, num_crops=args.crops, baselines=not args.no_baselines,
                            num_steps=args.steps, log=lambda m: None)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=1))
    else:
        print(metrics.format_table(rows))
        missed = [k for k, ok in rows[-1].passes().items() if not ok]
        print("bar: met" if not missed else f"bar: missed {', '.join(missed)}")
    return 0
