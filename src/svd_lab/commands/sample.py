"""``svd-lab sample IMAGE``: one image in, one video out (Stable Video Diffusion); with ``--model`` a Wan version,
a prompt (and for Wan2.2-TI2V optionally an image) in, one video out (:func:`run_wan`).

Without a checkpoint on a CPU it runs the small profile when its weights are in ``checkpoints/small`` (the small SVD
trained by ``svd-lab small train``, at the frame size and count it was trained at: camera pans whose speed follows
--motion-bucket-id and --fps-id), else the tiny profile (random tiny networks: the machinery only), and says which.
``--profile full`` (or ``--checkpoint``) on a CPU prints the estimated time and,
when it is more than 15 minutes, needs ``--yes``; the checkpoint is validated before that question.
Outputs go to ``outputs/<version>/NNNNNN.mp4`` (numbered, never overwritten) with the conditioning image
(``NNNNNN.png``) and every parameter used (``NNNNNN.json``) beside it.
"""

from __future__ import annotations

import os
import sys

from svd_lab.commands import finite_float
from svd_lab.errors import UserError
from svd_lab.svd.versions import DEFAULT_VERSION


def register(sub) -> None:
    from svd_lab.commands.convert import add_head_size_arguments
    from svd_lab.svd.versions import VERSIONS
    from svd_lab.wan.versions import WAN_NAMES

    p = sub.add_parser(
        "sample", help="turn an image into a video with Stable Video Diffusion",
        description="Turn an image into a video with Stable Video Diffusion. Defaults are the version's reference "
                    "settings (svd: 14 frames, 25 steps; svd_xt: 25 frames, 30 steps; 576x1024).",
    )
    p.add_argument("image", nargs="?", help="input image (PNG, JPEG, WebP, ...); resized and centre-cropped to the "
                                            "video size. Needed for SVD; optional for wan2.2-ti2v-5b (its first "
                                            "frame); not taken by text-only Wan versions")
    p.add_argument("--version", "--model", dest="version", choices=["auto", *VERSIONS, *WAN_NAMES], default="auto",
                   help="the model: an SVD version (default auto: the best SVD checkpoint present that fits this GPU, "
                        "in the order svd_xt_1_1 > svd_xt > svd > image-decoder variants; the small model on a CPU; "
                        "with --checkpoint, the checkpoint's own version) or a Wan version (" + ", ".join(WAN_NAMES)
                        + ": text to video with --prompt)")
    p.add_argument("--prompt", help="Wan: what happens in the video (English or Chinese)")
    p.add_argument("--negative-prompt", help="Wan: what guidance steers away from (default: Wan's own)")
    p.add_argument("--guidance", type=finite_float, help="Wan: classifier-free guidance scale (default 5)")
    p.add_argument("--shift", type=finite_float, help="Wan: flow schedule shift (default: the checkpoint's)")
    p.add_argument("--solver", choices=["unipc", "euler"], help="Wan: UniPC (default, Wan's own) or Euler")
    p.add_argument("--profile", choices=["auto", "small", "tiny", "full", "mini"], default="auto",
                   help="small: the small SVD trained by svd-lab (seconds on a CPU); tiny: random tiny networks "
                        "(the machinery only); full: real weights; auto: full when a checkpoint is available on a "
                        "GPU, else small when its weights are in checkpoints/small, else tiny (mini: the old name "
                        "of small)")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="a diffusers folder or an sgm .safetensors file (default: found in checkpoints/)")
    p.add_argument("--lora", metavar="FILE", help="a LoRA adapter from `svd-lab finetune --mode lora` (its "
                                                  "lora.safetensors), applied to the model's UNet")
    p.add_argument("--lora-scale", type=finite_float, default=1.0,
                   help="strength of the adapter: 1 as trained, 0 the base model (default 1)")
    p.add_argument("--frames", type=int, help="number of frames (version default)")
    p.add_argument("--steps", type=int, help="denoising steps (version default)")
    p.add_argument("--seed", type=int, help="random seed (default 23)")
    p.add_argument("--fps-id", type=int, help="frame-rate conditioning; the video plays at fps-id + 1 (default 6)")
    p.add_argument("--motion-bucket-id", type=int, help="amount of motion, 0..255 (default 127)")
    p.add_argument("--cond-aug", type=finite_float, help="noise added to the conditioning image (default 0.02)")
    p.add_argument("--min-guidance", type=finite_float, help="guidance on the first frame (version default)")
    p.add_argument("--max-guidance", type=finite_float, help="guidance on the last frame (version default)")
    p.add_argument("--width", type=int, help="video width, a multiple of 64 (1024; small: its own; tiny: 64)")
    p.add_argument("--height", type=int, help="video height, a multiple of 64 (576; small: its own; tiny: 64)")
    p.add_argument("--decoding-t", type=int, help="frames decoded at once: lower it if the GPU runs out of memory "
                                                  "(default: planned from free VRAM on CUDA, else 14)")
    p.add_argument("--memory", choices=["auto", "resident", "offload", "group"], default="auto",
                   help="offload: model CPU offload (CUDA); group: Wan's transformer streamed in block groups; "
                        "auto: decided from free VRAM")
    p.add_argument("--device", default="auto", help="auto (CUDA > MPS > CPU), cpu, cuda, cuda:N, mps")
    p.add_argument("--dtype", default="auto", help="auto (float16 on CUDA, float32 elsewhere), float32, float16, "
                                                   "bfloat16")
    p.add_argument("--out", metavar="DIR", help="output folder (default: outputs/<version>)")
    p.add_argument("--gif", action="store_true", help="also write a GIF")
    p.add_argument("--yes", action="store_true", help="run full-size SVD on a CPU even when the estimate is long "
                                                      "(hours at the reference size)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_head_size_arguments(p)  # for an sgm --checkpoint whose head sizes are not Stability's
    p.set_defaults(func=run)


#: full-size SVD on a CPU runs without --yes only when the estimate is below this (seconds)
CPU_CONFIRM_SECONDS = 15 * 60


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} hours" if seconds >= 3600 else f"{max(seconds / 60, 0.1):.1f} minutes"


def _check_inputs(args) -> None:
    """The input image, checked before a model is chosen or loaded: a typo should cost a second."""
    from svd_lab.svd.images import load_image

    load_image(args.image, 64, 64)


def _check_output_folder(out):
    """The output folder exists or can be made, and is writable: checked before any sampling."""
    from pathlib import Path

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder: choose a folder for the videos")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".svd-lab-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"cannot write into {out}: {exc.strerror or exc}; choose a folder you can write to "
                        "(--out)") from None
    return out


def _confirm_cpu_run(args, spec, device) -> None:
    """Full size on a CPU: print the estimate; refuse without --yes when it is long."""
    from svd_lab.svd import pipeline as svd_pipeline

    frames, steps = args.frames or spec.num_frames, args.steps or spec.num_steps
    height, width = args.height or spec.height, args.width or spec.width
    seconds = svd_pipeline.estimate_cpu_seconds(frames, steps, height, width)
    print(f"full-size SVD on this CPU: about {_duration(seconds)} for {frames} frames x {steps} steps at "
          f"{width}x{height} ({os.cpu_count()} cores)", file=sys.stderr)
    if seconds > CPU_CONFIRM_SECONDS and not args.yes:
        raise UserError(f"full-size SVD on a CPU would take about {_duration(seconds)}: rerun with --yes to "
                          "start it anyway, or use a smaller --width/--height/--frames/--steps, the small profile "
                          "(no --checkpoint), or a machine with a CUDA GPU")


def run(args) -> int:
    from pathlib import Path

    import torch

    from svd_lab.wan.versions import is_wan

    if is_wan(args.version):
        return run_wan(args)
    if args.image is None:
        raise UserError("svd-lab sample needs an input image for SVD (svd-lab sample IMAGE); for a video from text "
                        "alone use a Wan version: --model wan2.1-t2v-1.3b --prompt \"...\"")
    wan_only = [f"--{k.replace('_', '-')}" for k in ("prompt", "negative_prompt", "guidance", "shift", "solver")
                if getattr(args, k) is not None]
    if wan_only:
        verb = "applies" if len(wan_only) == 1 else "apply"
        raise UserError(f"{', '.join(wan_only)} {verb} to Wan versions only (--model {'/'.join(_wan_names())}); "
                        "SVD is conditioned on the image")

    from svd_lab.commands.convert import head_size_options
    from svd_lab.paths import outputs_dir
    from svd_lab.svd import pipeline as svd_pipeline
    from svd_lab.svd import profiles as svd_profiles
    from svd_lab.svd.loading import check_checkpoint
    from svd_lab.svd.versions import get_version

    # 1. check the arguments, the profile and the checkpoint file; full size on a CPU only when it is quick or
    #    confirmed -- all before any weights are loaded
    try:
        device = svd_pipeline.resolve_device(args.device)
        svd_pipeline.resolve_dtype(args.dtype, device)
        _check_inputs(args)
        if args.lora is not None:
            from svd_lab.finetune.lora import read_adapter

            read_adapter(args.lora)        # readable and ours, before any weights are loaded
        head_sizes = head_size_options(args, args.checkpoint)
        choice = svd_profiles.choose_profile(args.profile, args.version, args.checkpoint, device)
        version = choice.version
        if choice.checkpoint:
            # an SVD checkpoint (not just any safetensors file), before asking anyone to wait
            held = check_checkpoint(choice.checkpoint, version, **head_sizes)
            version = version or held
        version = version or DEFAULT_VERSION
        spec = get_version(version)
        out = _check_output_folder(Path(args.out).expanduser() if args.out else outputs_dir() / version)
        if choice.profile == "full" and device.type == "cpu":
            _confirm_cpu_run(args, spec, device)
    except UserError:
        raise
    except ValueError as exc:
        raise UserError(str(exc)) from None
    print(choice.line(), file=sys.stderr)
    if choice.profile in ("tiny", "small") and device.type == "cpu":
        # Tiny networks: thread hand-offs cost more than the arithmetic, one thread is fastest (and steady).
        torch.set_num_threads(1)

    # 2. load and sample
    try:
        pipe, _ = svd_profiles.load_pipeline(version=choice.version, profile=choice.profile,
                                             checkpoint=choice.checkpoint, device=device, dtype=args.dtype,
                                             memory=args.memory, lora=args.lora, lora_scale=args.lora_scale,
                                             progress=not args.no_progress, **head_sizes)
        generation = pipe.run(
            args.image, num_frames=args.frames, num_steps=args.steps, seed=args.seed, fps_id=args.fps_id,
            motion_bucket_id=args.motion_bucket_id, cond_aug=args.cond_aug, min_guidance=args.min_guidance,
            max_guidance=args.max_guidance, width=args.width, height=args.height, decoding_t=args.decoding_t,
            progress=not args.no_progress)
    except UserError:
        raise
    except ValueError as exc:
        raise UserError(str(exc)) from None

    # 3. write the video, the conditioning image and the parameters
    params = generation.video.params
    params["input_image"] = str(Path(args.image).resolve())
    params["profile_reason"] = choice.reason
    fb = params.get("oom_fallback")
    _write(generation.video, out, generation.image, args.gif, f"{params['profile']} profile, {params['device']}, "
           f"{params['dtype']}", (fb["stage"], fb["after"]) if fb else None)
    return 0


def _write(video, out, conditioning, gif: bool, how: str, oom: tuple[str, str] | None) -> None:
    """Save ``video`` numbered into ``out`` (with the conditioning image and the parameters) and say what was
    made, how, and the out-of-memory retry if there was one (``oom``: the stage and the settings retried with)."""
    from svd_lab.video import save_numbered

    try:
        written = save_numbered(video, out, conditioning_image=conditioning, gif=gif)
    except (OSError, UserError) as exc:
        raise UserError(f"could not write the video to {out}: {exc}") from None
    if oom is not None:
        from svd_lab.messages import t

        print(t("oom.retry_note", stage=t(f"oom.stage.{oom[0]}"), after=oom[1]), file=sys.stderr)
    seconds = video.params.get("sampling_seconds", 0) + video.params.get("decoding_seconds", 0)
    print(f"{video.num_frames} frames, {video.width}x{video.height}, {video.fps:g} fps, {seconds:.1f} s ({how})")
    for kind in ("mp4", "gif", "png", "json"):
        if kind in written:
            print(f"wrote {written[kind]}")


def _wan_names() -> tuple[str, ...]:
    from svd_lab.wan.versions import WAN_NAMES

    return WAN_NAMES


def run_wan(args) -> int:
    """``svd-lab sample [IMAGE] --model wan... --prompt ...``: everything checked before any weights load."""
    from pathlib import Path

    import torch

    from svd_lab.paths import outputs_dir
    from svd_lab.svd import pipeline as svd_pipeline
    from svd_lab.wan.memory import generate
    from svd_lab.wan.pipeline import check_settings, load_wan_pipeline
    from svd_lab.wan.versions import get_wan_version

    spec = get_wan_version(args.version)
    svd_only = [name for name, value in (("--fps-id", args.fps_id), ("--motion-bucket-id", args.motion_bucket_id),
                                         ("--cond-aug", args.cond_aug), ("--min-guidance", args.min_guidance),
                                         ("--max-guidance", args.max_guidance), ("--decoding-t", args.decoding_t),
                                         ("--lora", args.lora)) if value is not None]
    if svd_only:
        raise UserError(f"{', '.join(svd_only)} {'applies' if len(svd_only) == 1 else 'apply'} to SVD only; Wan "
                        "takes --prompt, --guidance, --shift, --solver")
    if not (args.prompt or "").strip():
        raise UserError(f"{spec.name} makes a video from text: add --prompt \"what happens in the video\"")
    if args.image is not None:
        if not spec.takes_image:
            raise UserError(f"{spec.name} is text-to-video only: it takes no image (leave the image out, or use "
                            "wan2.2-ti2v-5b for image-to-video)")
        _check_inputs(args)
    device = svd_pipeline.resolve_device(args.device)
    dtype = None if args.dtype == "auto" else svd_pipeline.resolve_dtype(args.dtype, device)
    profile = args.profile
    if profile == "auto":
        from svd_lab.checkpoints import find_checkpoint

        found = args.checkpoint or find_checkpoint(spec.name)
        profile = "full" if found is not None and device.type == "cuda" else "tiny"
    if profile not in ("tiny", "full"):
        raise UserError(f"Wan runs on the tiny profile (random tiny networks) or full (a checkpoint), not {profile}")
    if profile == "full":
        from svd_lab.checkpoints.local import checkpoints_root
        from svd_lab.wan.pipeline import check_wan_folder

        args.checkpoint = args.checkpoint or str(checkpoints_root() / spec.name)
        if not Path(args.checkpoint).exists():
            raise UserError(f"no {spec.name} checkpoint at {args.checkpoint}: download it with `svd-lab download "
                            f"{spec.name}` (add --source modelscope from mainland China), or use --profile tiny")
        check_wan_folder(args.checkpoint)
    check_settings(spec.name, args.height, args.width, args.frames, args.steps)   # tiny keeps the factors
    if profile == "full" and device.type == "cpu" and not args.yes:
        raise UserError(f"full-size {spec.name} on a CPU takes hours: rerun with --yes to start it anyway, use "
                        "--profile tiny to see the machinery, or a CUDA GPU")
    out = _check_output_folder(Path(args.out).expanduser() if args.out else outputs_dir() / spec.name)
    if profile == "tiny" and device.type == "cpu":
        torch.set_num_threads(1)
    print(f"{spec.name}: {profile} profile on {device}"
          + (" (random tiny networks: the machinery, not a real video)" if profile == "tiny" else ""),
          file=sys.stderr)
    pipe = load_wan_pipeline(spec.name, profile, checkpoint=args.checkpoint, device=device, dtype=dtype,
                             memory=args.memory, num_frames=args.frames, height=args.height, width=args.width)
    try:
        generation = generate(pipe, prompt=args.prompt, image=args.image, negative_prompt=args.negative_prompt,
                              num_frames=args.frames, num_steps=args.steps, height=args.height, width=args.width,
                              guidance=args.guidance, shift=args.shift, solver=args.solver, seed=args.seed,
                              progress=not args.no_progress)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    video = generation.video()
    video.params["input_image"] = str(Path(args.image).resolve()) if args.image else None
    conditioning = None
    if args.image is not None:
        from svd_lab.svd.images import load_image

        conditioning = load_image(args.image, video.width, video.height)
    p, fb = generation.params, generation.params.get("oom_fallback")
    _write(video, out, conditioning, args.gif, f"{p['profile']} profile, {p['device']}, {p['dtype']}, {p['solver']} "
           f"x {p['num_steps']} steps", ("sampling", fb["to"]) if fb else None)
    return 0
