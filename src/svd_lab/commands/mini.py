"""``svd-lab mini``: train, evaluate and sample the mini world model (a bouncing-ball video DiT on a CPU)."""

from __future__ import annotations

import json
from pathlib import Path

from svd_lab.commands import finite_float
from svd_lab.errors import UserError


def register(sub) -> None:
    p = sub.add_parser("mini", help="the mini world model: train / eval / sample a bouncing-ball video DiT on a CPU")
    msub = p.add_subparsers(dest="mini_command", metavar="ACTION")

    t = msub.add_parser("train", help="train autoencoder + video DiT (fixed steps and seed, or a time limit)")
    t.add_argument("--steps", type=int, default=None,
                   help="DiT optimiser steps (default: the shipped recipe's count unless --minutes is given)")
    t.add_argument("--minutes", type=finite_float, default=None, help="wall-clock limit for the whole run")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--objective", choices=("edm", "flow"), default="edm",
                   help="edm (the shipped model) or flow (flow matching, as Wan; the same noise levels)")
    t.add_argument("--autoencoder", metavar="DIR", default=None,
                   help="reuse the autoencoder of this mini model folder (e.g. checkpoints/mini) instead of training "
                        "one: only the DiT is trained, so two objectives can be compared on the same latents")
    t.add_argument("--out", default=None,
                   help="output folder (default: outputs/mini/run-<seed>); must not hold a model already")
    t.add_argument("--snapshot-every", type=int, default=500, metavar="STEPS",
                   help="score 16 generated videos every this many steps (0 = never)")
    t.add_argument("--checkpoint-every", type=int, default=500, metavar="STEPS",
                   help="save the weights every this many steps, so a long run can be stopped (0 = only at the end)")
    t.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's choice; 1 is faster on a busy shared machine)")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.set_defaults(func=run_train)

    e = msub.add_parser("eval", help="score a model on 64 fixed videos against physics (the metric table)")
    e.add_argument("--model", default=None, help="model folder (default: checkpoints/mini)")
    e.add_argument("--baselines", action="store_true",
                   help="also score real data, a static copy and an untrained model")
    e.add_argument("--videos", type=int, default=64)
    e.add_argument("--steps", type=int, default=None, help="sampling steps (default 20)")
    e.add_argument("--solver", choices=("euler", "heun"), default="euler",
                   help="euler (default) or heun (second order, about twice the network calls)")
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")
    e.set_defaults(func=run_eval)

    s = msub.add_parser("sample", help="generate videos from the mini model and save them as a GIF strip")
    s.add_argument("--model", default=None, help="model folder (default: checkpoints/mini)")
    s.add_argument("--bucket", type=int, action="append", default=None,
                   help="speed bucket 0..7 (repeatable; default 0, 3, 7)")
    s.add_argument("--seed", type=int, default=0, help="seed of the first frames and the noise")
    s.add_argument("--steps", type=int, default=None, help="sampling steps (default 20)")
    s.add_argument("--out", default=None, help="output .gif (default: outputs/mini/sample-<seed>.gif)")
    s.set_defaults(func=run_sample)
    p.set_defaults(func=lambda args: p.print_help() or 0)


def _model_folder(arg: str | None) -> Path:
    from svd_lab.paths import shipped_checkpoints_dir

    return Path(arg) if arg else shipped_checkpoints_dir() / "mini"


def _load(arg: str | None):
    from svd_lab.mini.model import load_model

    folder = _model_folder(arg)
    try:
        return load_model(folder)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None


def run_train(args) -> int:
    from svd_lab.mini.train import TrainSettings, train
    from svd_lab.paths import outputs_dir

    if args.steps is not None and args.steps < 1:
        raise UserError("--steps must be a positive integer")
    if args.minutes is not None and args.minutes <= 0:
        raise UserError("--minutes must be positive")
    if args.threads is not None:
        if args.threads < 1:
            raise UserError("--threads must be >= 1")
        import torch

        torch.set_num_threads(args.threads)
    # the defaults are the shipped recipe; a time limit alone replaces its step count
    steps = args.steps if args.steps is not None else (None if args.minutes else TrainSettings.steps)
    settings = TrainSettings(seed=args.seed, steps=steps, minutes=args.minutes, objective=args.objective)
    autoencoder = _load(args.autoencoder).autoencoder if args.autoencoder else None
    out = Path(args.out) if args.out else outputs_dir() / "mini" / f"run-{args.seed}"
    if (out / "dit.safetensors").exists():
        raise UserError(f"{out} already holds a mini model; choose another --out or remove it first")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    command = "svd-lab mini train " + " ".join(
        x for x in [f"--steps {args.steps}" if args.steps else "", f"--minutes {args.minutes}" if args.minutes else "",
                    f"--seed {args.seed}", f"--objective {args.objective}",
                    f"--autoencoder {args.autoencoder}" if args.autoencoder else ""] if x)
    _, record = train(settings, out=out, progress=not args.no_progress, snapshot_every=args.snapshot_every,
                      checkpoint_every=args.checkpoint_every, facts={"command": command}, autoencoder=autoencoder)
    print(f"saved {out} ({record['dit_steps']} DiT steps, {record['seconds_per_step']} s/step, "
          f"autoencoder PSNR {record['autoencoder']['psnr_db']} dB); evaluate with `svd-lab mini eval --model {out}`")
    return 0


def run_eval(args) -> int:
    from svd_lab.mini import metrics
    from svd_lab.mini.model import SamplingSettings

    if args.videos < 2:
        raise UserError("--videos must be at least 2")
    settings = SamplingSettings(**({"steps": args.steps} if args.steps else {}), solver=args.solver)
    model = _load(args.model)
    rows = {}
    if args.baselines:
        rows.update(metrics.baseline_scores(args.videos, settings=settings, like=model))
    rows["model"] = metrics.evaluate_model(model, num_videos=args.videos, settings=settings)
    if args.json:
        print(json.dumps({k: {**v.to_dict(), "passes": v.passes()} for k, v in rows.items()}, indent=1))
    else:
        print(metrics.format_table(rows))
        missed = [k for k, ok in rows["model"].passes().items() if not ok]
        print("bar: met" if not missed else f"bar: missed {', '.join(missed)}")
    return 0


def run_sample(args) -> int:
    import numpy as np

    from svd_lab.mini import data
    from svd_lab.mini.model import SamplingSettings
    from svd_lab.paths import outputs_dir

    buckets = args.bucket or [0, 3, 7]
    if any(not 0 <= b < data.NUM_SPEED_BUCKETS for b in buckets):
        raise UserError(f"--bucket must be in 0..{data.NUM_SPEED_BUCKETS - 1}")
    out = Path(args.out) if args.out else outputs_dir() / "mini" / f"sample-{args.seed}.gif"
    if out.suffix.lower() != ".gif":
        raise UserError("--out must end in .gif")
    if out.exists():
        raise UserError(f"{out} exists; choose another --out")
    model = _load(args.model)
    import torch

    cond = data.generate(len(buckets), seed=args.seed, speed_bucket=torch.tensor(buckets))
    settings = SamplingSettings(**({"steps": args.steps} if args.steps else {}))
    videos = model.generate(cond.frames[:, 0], cond.speed_bucket, seed=args.seed, settings=settings)
    # one row per video, frames side by side in time -> a GIF whose frames are the time steps, videos stacked
    frames = (videos[:, :, 0] * 255).round().byte().numpy()  # (B, T, H, W)
    strip = np.concatenate(list(frames), axis=1)  # (T, B*H, W)
    strip = np.repeat(np.repeat(strip, 4, axis=1), 4, axis=2)
    from PIL import Image

    out.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(f) for f in strip]
    tmp = out.with_name(out.stem + ".tmp.gif")
    images[0].save(tmp, save_all=True, append_images=images[1:], duration=150, loop=0)
    tmp.replace(out)
    print(f"wrote {out}: {len(buckets)} videos (speed buckets {buckets}), {videos.shape[1]} frames each")
    return 0
