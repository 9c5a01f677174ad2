"""``svd-lab finetune DATA --out DIR``: fine-tune an SVD on your own videos (see :mod:`svd_lab.finetune.train`).

DATA is a video file or a folder of videos (mp4/webm/gif/...) and/or folders of frames (``DATA/<clip>/<frames>``).
Starts from the shipped small SVD, or from ``--checkpoint`` (a diffusers folder or an sgm file). ``--mode lora``
writes ``DIR/lora.safetensors`` for ``svd-lab sample --lora``; ``full`` and ``temporal`` write a diffusers folder for
``svd-lab sample --checkpoint DIR``. Killed? Run the same command again: it continues from its last checkpoint.
"""

from __future__ import annotations

from svd_lab.commands import finite_float


def register(sub) -> None:
    from svd_lab.finetune.lora import BLOCKS, DEFAULT_TARGETS
    from svd_lab.finetune.train import MODES, OPTIMIZERS, PRECISIONS, FinetuneSettings

    d = FinetuneSettings()
    p = sub.add_parser("finetune", help="fine-tune SVD on your own videos (full, temporal layers, or LoRA)",
                       description=__doc__.split("\n\n", 1)[1])
    p.add_argument("data", help="a video, or a folder of videos and/or folders of frames")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (must not exist)")
    p.add_argument("--checkpoint", metavar="PATH", help="model to start from (default: the shipped small SVD)")
    p.add_argument("--version", help="SVD version of --checkpoint when its configs cannot tell (e.g. svd_xt_1_1)")
    p.add_argument("--mode", choices=MODES, default=d.mode,
                   help="full: the whole UNet; temporal: only its temporal layers; lora: adapters (default)")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch", type=int, default=d.batch, help="windows per micro-batch")
    p.add_argument("--accumulate", type=int, default=d.accumulate, help="micro-batches per optimiser step")
    p.add_argument("--lr", type=finite_float, default=d.lr)
    p.add_argument("--warmup", type=int, default=d.warmup)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--frames", type=int, help="frames per window (default: the model's num_frames)")
    p.add_argument("--height", type=int, help="training height (default: the small model's size; full: 320)")
    p.add_argument("--width", type=int, help="training width (default: the small model's size; full: 512)")
    p.add_argument("--stride", type=int, default=d.stride, help="take every N-th frame (fps_id follows)")
    p.add_argument("--hop", type=int, help="source frames between window starts (default: half a window)")
    p.add_argument("--fps", type=finite_float, default=d.fps, help="frame rate of folders of frames (default 7)")
    p.add_argument("--motion-bucket-id", type=int,
                   help="one motion bucket for every window (default: measured from each window's motion)")
    p.add_argument("--p-mean", type=finite_float, default=d.p_mean)
    p.add_argument("--p-std", type=finite_float, default=d.p_std)
    p.add_argument("--drop", type=finite_float, default=d.drop, help="conditioning dropout (default 0.1)")
    p.add_argument("--rank", type=int, default=d.rank, help="LoRA rank")
    p.add_argument("--alpha", type=finite_float, default=d.alpha, help="LoRA alpha (update scaled by alpha/rank)")
    p.add_argument("--lora-targets", default=",".join(DEFAULT_TARGETS),
                   help="layers that get adapters (comma-separated): attention projections (default) and/or "
                        "convolutions, e.g. temporal_res_block.conv1,temporal_res_block.conv2")
    p.add_argument("--lora-blocks", choices=BLOCKS, default=d.blocks)
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--precision", choices=PRECISIONS, default=d.precision, help="mixed precision (autocast)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer,
                   help="adamw8bit needs bitsandbytes (CUDA): pip install 'svd-lab[bnb]'")
    p.add_argument("--ema", type=finite_float, default=d.ema, help="EMA decay of the weights saved (0: off)")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--validate-every", type=int, default=d.validate_every,
                   help="steps between validation videos (always one before and one after)")
    p.add_argument("--validation-steps", type=int, help="sampling steps of a validation video")
    p.add_argument("--threads", type=int, help="CPU threads")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)
    register_merge(sub)


def run(args) -> int:
    from svd_lab.finetune.train import FinetuneSettings, finetune

    settings = FinetuneSettings(
        mode=args.mode, steps=args.steps, batch=args.batch, accumulate=args.accumulate, lr=args.lr,
        warmup=args.warmup, seed=args.seed, frames=args.frames, height=args.height, width=args.width,
        stride=args.stride, hop=args.hop, fps=args.fps, motion_bucket_id=args.motion_bucket_id, p_mean=args.p_mean,
        p_std=args.p_std, drop=args.drop, rank=args.rank, alpha=args.alpha,
        targets=tuple(t.strip() for t in args.lora_targets.split(",") if t.strip()), blocks=args.lora_blocks,
        gradient_checkpointing=args.gradient_checkpointing, precision=args.precision, optimizer=args.optimizer,
        ema=args.ema, checkpoint_every=args.checkpoint_every, validate_every=args.validate_every,
        validation_steps=args.validation_steps, threads=args.threads)
    result = finetune(args.data, args.out, settings, checkpoint=args.checkpoint, version=args.version,
                      progress=not args.no_progress)
    if not result.record["validations"]:
        return 0                       # another process of a multi-process run: the main one reports
    first, last = result.record["validations"][0], result.record["validations"][-1]
    print(f"validation motion (dx, dy px/frame; + = content moving left/up): before {first['motion_px']}, after "
          f"{last['motion_px']}, the clip {last['clip_motion_px']}")
    if result.adapter:
        print(f"sample with it: svd-lab sample IMAGE --lora {result.adapter}")
    else:
        print(f"sample with it: svd-lab sample IMAGE --checkpoint {result.out}")
    return 0


def register_merge(sub) -> None:
    p = sub.add_parser("merge", help="fold a LoRA adapter into its model and write a diffusers folder",
                       description="Fold a LoRA adapter (`svd-lab finetune --mode lora`) into the model it was trained "
                                   "on (W + alpha/r B A) and write a plain diffusers folder that any SVD loader reads.")
    p.add_argument("adapter", help="the adapter file (DIR/lora.safetensors)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (must not exist)")
    p.add_argument("--checkpoint", metavar="PATH", help="the base model (default: the shipped small SVD)")
    p.add_argument("--version", help="SVD version of --checkpoint when its configs cannot tell")
    p.add_argument("--scale", type=finite_float, default=1.0, help="adapter strength folded in (default 1)")
    p.set_defaults(func=run_merge)


def run_merge(args) -> int:
    from pathlib import Path

    from svd_lab.errors import UserError
    from svd_lab.finetune.lora import merge_lora, read_adapter
    from svd_lab.finetune.train import load_base
    from svd_lab.svd.loading import save_diffusers_folder
    from svd_lab.svd.profiles import apply_lora

    out = Path(args.out).expanduser()
    if out.exists():
        raise UserError(f"{out} already exists; choose another output folder (nothing is overwritten)")
    _, _, meta = read_adapter(args.adapter)
    components = load_base(args.checkpoint, args.version)
    apply_lora(components, args.adapter, args.scale)
    merged = merge_lora(components.unet)
    record = {"merged_lora": str(Path(args.adapter).resolve()), "lora_scale": args.scale}
    if components.profile == "small":
        record["model"] = "small"
    if components.trained_size is not None:
        record["trained_size"] = list(components.trained_size)
    save_diffusers_folder(components, out, atomic=True, record=record)
    print(f"merged {merged} LoRA layers (rank {meta['rank']}) into {out}: svd-lab sample IMAGE --checkpoint {out}")
    return 0
