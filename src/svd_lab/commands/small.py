"""``svd-lab small``: train, evaluate and picture the small SVD (SVD's own networks, sized and trained for a CPU).

``svd-lab svdmini ...`` is the old name of this command: it still works, with a one-line notice.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from svd_lab.errors import UserError

OLD_NAME = "svdmini"


def register(sub) -> None:
    for name in ("small", OLD_NAME):
        _register(sub, name)


def _register(sub, name: str) -> None:
    old = name == OLD_NAME
    p = sub.add_parser(name, help=argparse_suppress() if old else
                       "the small SVD trained by svd-lab: train / eval / figure (camera pans that obey "
                       "motion_bucket_id and fps_id)")
    ssub = p.add_subparsers(dest="small_command", metavar="ACTION")

    t = ssub.add_parser("train", help="train the VAE (on crops, then on whole frames), then the video UNet with SVD's "
                                      "objective (fixed steps and seed), in "
                                      "stages that resume: run the same command again after an interruption")
    t.add_argument("--steps", type=int, default=None, help="UNet optimiser steps (default: the shipped recipe's)")
    t.add_argument("--vae-steps", type=int, default=None, help="VAE optimiser steps (default: the shipped recipe's)")
    t.add_argument("--decoder-steps", type=int, default=None,
                   help="stage 3: VAE steps on whole frames (default: the shipped recipe's)")
    t.add_argument("--fast-steps", type=int, default=None,
                   help="stage 6: UNet steps with fast pans in every batch (default: the shipped recipe's)")
    t.add_argument("--pool-clips", type=int, default=None,
                   help="clips encoded once for the UNet's training (default: the shipped recipe's)")
    t.add_argument("--canvases", type=int, default=None,
                   help="dead-leaves canvases the clips are cut from (default: the shipped recipe's)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default=None,
                   help="output folder (default: outputs/small/run-<seed>); must not exist. The stages are kept in "
                        "<out>.work until the model is written")
    t.add_argument("--until", choices=["canvases", "vae", "decoder", "pool", "unet"], default=None,
                   help="stop after this stage (to split the run over sessions); the same command continues")
    t.add_argument("--snapshot-every", type=int, default=0, metavar="STEPS",
                   help="score a few held-out crops every this many UNet steps (0 = never)")
    t.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.set_defaults(func=_warn_old(run_train, old))

    e = ssub.add_parser("eval", help="score a model in pixel space against its inputs (the metric table)")
    e.add_argument("--model", default=None, help="model folder (default: checkpoints/small)")
    e.add_argument("--crops", type=int, default=None, help="held-out crops besides the course images and the "
                                                           "held-out photos (default 24)")
    e.add_argument("--crop-seed", type=int, default=None,
                   help="another draw of held-out crops (default: the tables' draw, metrics.EVAL_SEED): do the "
                        "numbers hold beyond the images they were reported on?")
    e.add_argument("--no-baselines", action="store_true", help="skip the untrained model's row")
    e.add_argument("--quick", action="store_true",
                   help="the bar test's subset (metrics.QUICK: videos of the course images only; about a minute)")
    e.add_argument("--steps", type=int, default=None,
                   help="sampling steps (default: the model's record, else the version's)")
    e.add_argument("--min-guidance", type=float, default=None, help="guidance at the first frame (default: as "
                                                                      "--steps)")
    e.add_argument("--max-guidance", type=float, default=None, help="guidance at the last frame (default: as "
                                                                      "--steps)")
    e.add_argument("--seeds", type=int, default=None, help="seeds per image for the cond_aug score (default 3)")
    e.add_argument("--json", metavar="FILE", default=None, help="also write the whole evaluation as JSON")
    e.set_defaults(func=_warn_old(run_eval, old))

    f = ssub.add_parser("figure", help="the picture of the README: input | VAE round trip | frames at motion "
                                       "buckets 0 / 127 / 255, and the measured shift against time")
    f.add_argument("image", nargs="?", default=None, help="input image (default: assets/rocket.png)")
    f.add_argument("--model", default=None, help="model folder (default: checkpoints/small)")
    f.add_argument("--out", required=True, help="PNG to write (must not exist)")
    f.add_argument("--seed", type=int, default=23)
    f.set_defaults(func=_warn_old(run_figure, old))
    p.set_defaults(func=lambda args: p.print_help() or 0)


def argparse_suppress():
    import argparse

    return argparse.SUPPRESS


def _warn_old(func, old: bool):
    if not old:
        return func

    def wrapped(args) -> int:
        print(f"note: `svd-lab {OLD_NAME}` is now `svd-lab small`; the old name will stop working in a later "
              "release", file=sys.stderr)
        return func(args)

    return wrapped


def _positive(args, names) -> None:
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be a positive integer")


def run_train(args) -> int:
    from svd_lab.paths import outputs_dir
    from svd_lab.small.train import TrainSettings, train, work_folder

    _positive(args, ("steps", "vae_steps", "decoder_steps", "fast_steps", "pool_clips", "canvases", "threads"))
    if args.snapshot_every < 0:
        raise UserError("--snapshot-every must be >= 0")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    settings = TrainSettings(seed=args.seed)
    for name in ("steps", "vae_steps", "decoder_steps", "fast_steps", "pool_clips", "canvases"):
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    out = Path(args.out) if args.out else outputs_dir() / "small" / f"run-{args.seed}"
    if out.exists():
        raise UserError(f"{out} already exists; choose another --out (nothing is overwritten)")
    if work_folder(out).exists():
        print(f"continuing the run in {work_folder(out)}", file=sys.stderr)
    components, record = train(settings, out=out, progress=not args.no_progress, snapshot_every=args.snapshot_every,
                               until=args.until)
    if components is None:
        print(f"stopped after stage {args.until}; run the same command again to continue")
        return 0
    print(f"saved {out} ({record['unet_steps']} + {settings.fast_steps} UNet steps, {record['total_seconds']} s in "
          f"all); evaluate with "
          f"`svd-lab small eval --model {out}`")
    return 0


def _model_folder(arg) -> Path:
    from svd_lab.small.model import is_present, shipped_folder

    folder = Path(arg) if arg else shipped_folder()
    if not is_present(folder):
        raise UserError(f"{folder} holds no small SVD (no model_index.json); train one with `svd-lab small train`")
    return folder


def run_eval(args) -> int:
    from svd_lab.atomic import write_text_atomic
    from svd_lab.small import metrics

    folder = _model_folder(args.model)
    _positive(args, ("steps", "seeds"))
    if args.crops is not None and args.crops < 0:
        raise UserError("--crops must be >= 0")
    if args.crop_seed is not None and args.crop_seed < 0:
        raise UserError(f"--crop-seed must be >= 0, got {args.crop_seed}")
    if args.json and Path(args.json).exists():
        raise UserError(f"{args.json} already exists (nothing is overwritten)")
    guidance = None
    if args.min_guidance is not None or args.max_guidance is not None:
        given = [v for v in (args.min_guidance, args.max_guidance) if v is not None]
        if not all(math.isfinite(v) for v in given):
            raise UserError("--min-guidance and --max-guidance must be finite numbers")
        if args.min_guidance is None or args.max_guidance is None:
            raise UserError("give both --min-guidance and --max-guidance (the ramp's first and last frame)")
        guidance = (args.min_guidance, args.max_guidance)
    subset = dict(metrics.QUICK) if args.quick else {"num_crops": metrics.NUM_CROPS}
    if args.crops is not None:
        subset["num_crops"] = args.crops
    if args.seeds is not None:
        subset["seeds"] = args.seeds
    if args.crop_seed is not None:
        subset["crop_seed"] = args.crop_seed
    evaluation = metrics.evaluate(folder if args.model else None, baselines=not args.no_baselines,
                                  num_steps=args.steps, guidance=guidance, log=lambda m: None, **subset)
    print(metrics.format_table(evaluation))
    print("(g) largest colour error: " + "; ".join(f"{r.name} {r.colour_error_max:.3f} at {r.colour_error_worst}"
                                                  for r in evaluation.rows if r.colour_error_max))
    model = evaluation.rows[-1].name
    missed = [k for k, ok in evaluation.passes(model).items() if not ok]
    print("bar: met" if not missed else f"bar: missed {'; '.join(missed)}")
    if args.json:
        write_text_atomic(args.json, json.dumps(evaluation.to_dict(), indent=1))
    return 0


def run_figure(args) -> int:
    from svd_lab.paths import project_root
    from svd_lab.small.figure import write_figure

    folder = _model_folder(args.model)
    image = args.image or str(project_root() / "assets" / "rocket.png")
    out = Path(args.out)
    if out.exists():
        raise UserError(f"{out} already exists (nothing is overwritten)")
    numbers = write_figure(image, out, folder if args.model else None, seed=args.seed)
    print(f"wrote {out}")
    print(json.dumps(numbers, indent=1))
    return 0
