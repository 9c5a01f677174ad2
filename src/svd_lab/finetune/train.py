r"""Fine-tune an SVD on your own clips with SVD's objective (``svd-lab finetune DATA --out DIR``).

The loss is the small SVD's trainer's, exactly (:func:`svd_lab.small.train.svd_loss`): v-prediction with EDM's
``VScalingWithEDMcNoise`` preconditioning, ``ln sigma ~ N(p_mean, p_std^2)``, the conditioning frame noised by a
log-normal ``cond_aug`` that is also the third ``added_time_id``, and the image conditioning dropped with
probability ``drop`` (the branch classifier-free guidance subtracts). The clips' latents are encoded once (VAE
posterior mode, as SVD), then every step draws random windows.

**Modes** -- what trains:

- ``full``: every UNet parameter (the VAE and CLIP stay frozen, as in SVD's own training).
- ``temporal``: only the UNet's temporal layers: the parameters whose dotted name contains one of
  :data:`TEMPORAL_KEYS` -- ``temporal_res_block`` (3-D convolutions over frames), ``temporal_transformer_blocks``
  (attention across frames), ``time_pos_embed`` (the frame-position embedding of those blocks) and ``time_mixer``
  (the learned blend of spatial and temporal outputs). SVD_Xtend trains only ``temporal_transformer_block``; the
  image layers are what SVD kept from Stable Diffusion, the motion lives in these. ``temporal_parameter_names``
  lists them for any UNet.
- ``lora``: low-rank adapters on the attention projections, and on convolutions if asked
  (:mod:`svd_lab.finetune.lora`); only those train.

**Memory options**: gradient checkpointing (diffusers' ``enable_gradient_checkpointing``), mixed precision (bf16 or
fp16 autocast, with a gradient scaler for fp16; master weights stay float32), 8-bit AdamW when ``bitsandbytes`` is
installed (``pip install 'svd-lab[bnb]'``: CUDA only), gradient accumulation, and EMA weights (what is saved and
validated).

**Resuming**: every step draws its windows and noise from its own generator, seeded by (seed, step, micro-batch,
process), and checkpoints (``<out>.work/state.safetensors``, every ``checkpoint_every`` steps) hold the trainable
weights, the optimiser's state and the EMA weights: after a kill, the same command continues and ends with what an
uninterrupted run gives. ``out`` is written once, at the end, atomically; it must not exist.

**Output**: ``full`` and ``temporal`` write a diffusers folder (``svd-lab sample --checkpoint DIR`` loads it, at the
frame size and count it was trained at); ``lora`` writes ``DIR/lora.safetensors`` (``svd-lab sample --lora FILE``).
Both write ``finetune.json`` (settings, data report, losses, validations), ``loss.png`` and ``validation/`` videos.

Multi-GPU: run under ``accelerate launch``; each process draws its own windows (data parallel, gradients averaged).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from svd_lab.errors import InputError, UserError
from svd_lab.finetune import lora as lora_module
from svd_lab.finetune.data import Dataset, load_windows

MODES = ("full", "temporal", "lora")
PRECISIONS = ("no", "bf16", "fp16")
OPTIMIZERS = ("adamw", "adamw8bit")
#: a UNet parameter is temporal when one of these is a part of its dotted name (see the module docstring)
TEMPORAL_KEYS = ("temporal_res_block", "temporal_transformer_blocks", "time_pos_embed", "time_mixer")
VALIDATION_SEED = 23


@dataclass
class FinetuneSettings:
    """Everything that decides a run (stored in ``finetune.json``). Sizes None: the model's own."""

    mode: str = "lora"
    steps: int = 200
    batch: int = 2
    accumulate: int = 1                     # micro-batches per optimiser step
    lr: float = 1e-4
    warmup: int = 10
    seed: int = 0
    frames: int | None = None               # default: the UNet's num_frames
    height: int | None = None               # default: the small model's size; full models: 320
    width: int | None = None                # default: the small model's size; full models: 512
    stride: int = 1                         # take every stride-th frame of a clip
    hop: int | None = None                  # source frames between window starts (default: half a window)
    fps: float = 7.0                        # frame rate of folders of frames (videos carry their own)
    motion_bucket_id: int | None = None     # one bucket for every window instead of the measured motion
    p_mean: float = 0.5                     # ln(sigma) ~ N(p_mean, p_std^2), the small SVD's recipe
    p_std: float = 1.5
    drop: float = 0.1                       # conditioning dropout (for classifier-free guidance)
    rank: int = 8                           # LoRA
    alpha: float = 8.0
    targets: tuple[str, ...] = lora_module.DEFAULT_TARGETS
    blocks: str = "all"
    gradient_checkpointing: bool = False
    precision: str = "no"
    optimizer: str = "adamw"
    ema: float = 0.0                        # EMA decay (0: off)
    max_grad_norm: float = 1.0
    checkpoint_every: int = 50
    validate_every: int = 0                 # steps between validation videos (0: only before and after)
    validation_steps: int | None = None     # sampling steps of a validation video (default: the version's)
    threads: int | None = None

    def check(self) -> None:
        """Every setting validated before any data is read or any weight loaded."""
        if self.mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        for name in ("steps", "batch", "accumulate", "checkpoint_every", "stride", "rank"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr", "p_std", "alpha", "fps", "max_grad_norm"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise InputError(f"{name} must be a positive number, got {value}")
        if not 0 <= self.drop < 1 or not 0 <= self.ema < 1 or not math.isfinite(self.p_mean):
            raise InputError(f"drop and ema must be in [0, 1), p_mean finite; got {self.drop}, {self.ema}, "
                             f"{self.p_mean}")
        if self.validate_every < 0 or self.warmup < 0:
            raise InputError("validate_every and warmup must be >= 0")
        for name in ("height", "width"):
            value = getattr(self, name)
            if value is not None and (value < 64 or value % 64):
                raise InputError(f"{name} must be a multiple of 64, got {value}")
        if self.frames is not None and self.frames < 2:
            raise InputError(f"frames must be >= 2, got {self.frames}")
        if self.optimizer == "adamw8bit":
            _require_bitsandbytes()
        lora_module.LoRAConfig(self.rank, self.alpha, tuple(self.targets), self.blocks)

    def lora_config(self) -> lora_module.LoRAConfig:
        return lora_module.LoRAConfig(self.rank, self.alpha, tuple(self.targets), self.blocks)


def _require_bitsandbytes():
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise InputError("8-bit AdamW needs bitsandbytes (CUDA): pip install 'svd-lab[bnb]', or use --optimizer "
                         "adamw") from None


def temporal_parameter_names(unet: torch.nn.Module) -> list[str]:
    """The parameters ``temporal`` mode trains (see :data:`TEMPORAL_KEYS`)."""
    return [n for n, _ in unet.named_parameters() if set(n.split(".")) & set(TEMPORAL_KEYS)]


def select_trainable(unet: torch.nn.Module, settings: FinetuneSettings) -> dict[str, torch.nn.Parameter]:
    """Freeze everything, then unfreeze what the mode trains (adds the LoRA layers in ``lora`` mode)."""
    unet.requires_grad_(False)
    if settings.mode == "lora":
        lora_module.add_lora(unet, settings.lora_config(), seed=settings.seed)
    names = set(temporal_parameter_names(unet)) if settings.mode == "temporal" else None
    trainable = {}
    for name, param in unet.named_parameters():
        if settings.mode == "full" or (names is not None and name in names) or (
                settings.mode == "lora" and (".lora_A." in name or ".lora_B." in name)):
            param.requires_grad_(True)
            trainable[name] = param
    return trainable


# ------------------------------------------------------------------------------------------- latents
@dataclass
class Encoded:
    """Windows encoded once: ``latents`` (N, T, C, h, w) unscaled, ``first`` (N, 3, H, W) uint8, ids per window."""

    latents: torch.Tensor
    first: torch.Tensor
    fps_id: torch.Tensor
    motion_bucket_id: torch.Tensor


@torch.no_grad()
def encode(vae, dataset: Dataset, chunk: int = 8) -> Encoded:
    device = next(vae.parameters()).device
    dtype = next(vae.parameters()).dtype
    latents = []
    flat = dataset.frames.flatten(0, 1)
    for start in range(0, flat.shape[0], chunk):
        x = flat[start:start + chunk].to(device, dtype) / 127.5 - 1
        latents.append(vae.encode(x).latent_dist.mode().float().cpu())
    z = torch.cat(latents)
    n, t = dataset.frames.shape[:2]
    return Encoded(z.view(n, t, *z.shape[1:]), dataset.frames[:, 0].clone(), dataset.fps_id.clone(),
                   dataset.motion_bucket_id.clone())


def step_seed(seed: int, step: int, micro: int, process: int) -> int:
    return ((seed * 1_000_003 + step) * 64 + micro) * 256 + process


def draw_batch(encoded: Encoded, generator: torch.Generator, batch: int, scaling: float):
    """Random windows: scaled latents (B, T, C, h, w), first frames (B, 3, H, W) in [0, 1], fps_id, bucket."""
    idx = torch.randint(len(encoded.latents), (batch,), generator=generator)
    return (encoded.latents[idx] * scaling, encoded.first[idx].float() / 255.0, encoded.fps_id[idx],
            encoded.motion_bucket_id[idx])


# ------------------------------------------------------------------------------------------- EMA
class EMA:
    """Exponential moving average of the trainable parameters: ``s = decay s + (1 - decay) p`` after each step."""

    def __init__(self, params: dict[str, torch.nn.Parameter], decay: float):
        self.decay = decay
        self.shadow = {n: p.detach().float().clone() for n, p in params.items()}

    @torch.no_grad()
    def update(self, params: dict[str, torch.nn.Parameter]) -> None:
        for n, p in params.items():
            self.shadow[n].lerp_(p.detach().float(), 1 - self.decay)

    @contextlib.contextmanager
    def swapped(self, params: dict[str, torch.nn.Parameter]):
        """The EMA weights in place of the live ones (validation, saving), restored afterwards."""
        live = {n: p.detach().clone() for n, p in params.items()}
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(self.shadow[n].to(p.dtype))
        try:
            yield
        finally:
            with torch.no_grad():
                for n, p in params.items():
                    p.copy_(live[n])


# ------------------------------------------------------------------------------------------- the state file
def save_checkpoint(path: Path, params: dict, optimizer, ema: EMA | None, meta: dict) -> None:
    from safetensors.torch import save

    from svd_lab.atomic import write_bytes_atomic

    tensors = {f"param/{n}": p.detach().contiguous().cpu() for n, p in params.items()}
    if ema is not None:
        tensors.update({f"ema/{n}": v.contiguous().cpu() for n, v in ema.shadow.items()})
    state = optimizer.state_dict()
    index = {}
    for key, entries in state["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{key}/{name}"] = value.detach().contiguous().cpu()
            else:
                index[f"{key}/{name}"] = value
    metadata = {"meta": json.dumps(meta), "param_groups": json.dumps(state["param_groups"]),
                "optimizer_scalars": json.dumps(index)}
    write_bytes_atomic(path, save(tensors, metadata=metadata), overwrite=True)


def load_checkpoint_state(path: Path, params: dict, optimizer, ema: EMA | None) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(tensors[f"param/{n}"])
    if ema is not None:
        for n in ema.shadow:
            ema.shadow[n].copy_(tensors[f"ema/{n}"])
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value.clone()
    for key, value in json.loads(metadata["optimizer_scalars"]).items():
        index, name = key.split("/", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(metadata["param_groups"])})
    return json.loads(metadata["meta"])


# ------------------------------------------------------------------------------------------- the run
@dataclass
class FinetuneResult:
    out: Path
    record: dict
    components: object            # SVDComponents with the trained weights (LoRA layers in place for a lora run)

    @property
    def adapter(self) -> Path | None:
        path = self.out / "lora.safetensors"
        return path if path.is_file() else None


def work_folder(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".work")


def load_base(checkpoint: str | None, version: str | None = None):
    """The model to start from: the shipped small SVD (None) or any checkpoint svd-lab loads, in float32."""
    from svd_lab.svd.loading import load_checkpoint

    if checkpoint is None:
        from svd_lab.small.model import is_present, load_small

        if not is_present():
            raise InputError("no checkpoint given and the small SVD is not in checkpoints/small: pass --checkpoint "
                             "(a diffusers folder or an sgm file)")
        return load_small()
    return load_checkpoint(checkpoint, dtype=torch.float32, device="cpu", version=version, progress=False)


def _sizes(components, settings: FinetuneSettings) -> tuple[int, int, int]:
    if components.trained_size is not None:
        height, width = components.trained_size
    elif components.profile in ("small", "tiny"):
        height = width = components.native_size
    else:
        height, width = 320, 512
    return (settings.frames or components.native_frames, settings.height or height, settings.width or width)


def _validation_split(dataset: Dataset) -> tuple[Dataset, Dataset, bool]:
    """Hold out the last clip when there are at least two (its windows never train); else validate on the first
    window, which also trains (said in the record)."""
    clips = sorted(set(dataset.clip))
    if len(clips) >= 2:
        held = clips[-1]
        train = [i for i, c in enumerate(dataset.clip) if c != held]
        val = [i for i, c in enumerate(dataset.clip) if c == held]
        return dataset.subset(train), dataset.subset(val[:1]), True
    return dataset, dataset.subset([0]), False


def _identity(components) -> str:
    return f"{components.profile} {components.version} [{components.fingerprint or components.source}]"


def finetune(data_root: str | os.PathLike, out: str | os.PathLike, settings: FinetuneSettings | None = None,
             checkpoint: str | None = None, version: str | None = None, progress: bool = True, log=print,
             components=None, stop_after: int | None = None) -> FinetuneResult | None:
    """Run (or continue) a fine-tuning run and write ``out`` (see the module docstring).

    ``components``: an already loaded model to start from (a notebook); ``checkpoint``: else loaded from there, else
    the shipped small SVD. ``stop_after``: stop after that many steps with the checkpoint saved (returns None), as
    an interruption would (tests, and splitting a run over sessions).
    """
    from accelerate import Accelerator

    settings = settings or FinetuneSettings()
    settings.check()
    out = Path(out).expanduser()
    if out.exists():
        raise UserError(f"{out} already exists; choose another output folder (nothing is overwritten)")
    if not out.parent.is_dir():
        raise UserError(f"the folder for {out} does not exist: create {out.parent} first")
    if settings.threads:
        torch.set_num_threads(settings.threads)

    if components is None:
        components = load_base(checkpoint, version)
    frames, height, width = _sizes(components, settings)
    f = components.downsampling
    if height % f or width % f:
        raise InputError(f"height and width must be multiples of {f} (the VAE's down-sampling)")
    dataset = load_windows(data_root, frames, height, width, stride=settings.stride, hop=settings.hop,
                           folder_fps=settings.fps, motion_bucket_id=settings.motion_bucket_id, log=log)
    train_set, val_set, held_out = _validation_split(dataset)

    # accelerate for the processes and devices only (its state is one per process: a second run with other
    # precision settings would be refused); mixed precision is torch's autocast (+ a GradScaler for fp16)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    work = work_folder(out)
    work.mkdir(exist_ok=True)
    run = {"settings": _jsonable(asdict(settings)), "base": _identity(components), "data": dataset.report(),
           "frames": frames, "height": height, "width": width}
    run_file = work / "run.json"
    if run_file.is_file() and json.loads(run_file.read_text()) != run:
        raise UserError(f"{work} holds a run with other settings, data or base model; remove it to start again, or "
                        "pass what it was started with")
    if not run_file.is_file() and accelerator.is_main_process:
        from svd_lab.atomic import write_text_atomic

        write_text_atomic(run_file, json.dumps(run, indent=1))
    accelerator.wait_for_everyone()

    device = accelerator.device
    low = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(settings.precision)
    scaler = torch.amp.GradScaler(device.type, enabled=settings.precision == "fp16")
    components.eval().to(device=device)
    unet = components.unet
    trainable = select_trainable(unet, settings)
    if settings.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    encoded = encode(components.vae, train_set)
    scaling = components.latent_scaling
    optimizer = _optimizer(settings, list(trainable.values()))
    ema = EMA(trainable, settings.ema) if settings.ema else None
    prepared_unet = accelerator.prepare_model(unet)       # DDP on several processes, the UNet itself on one

    state_file = work / "state.safetensors"
    meta = {"step": 0, "seconds": 0.0, "loss": [], "validations": []}
    if state_file.is_file():
        meta = load_checkpoint_state(state_file, trainable, optimizer, ema)
        if meta.get("scaler"):
            scaler.load_state_dict(meta["scaler"])
        log(f"resuming at step {meta['step']} of {settings.steps}")
    validation = Validation(components, val_set, work / "validation", settings, held_out)
    if meta["step"] == 0 and not meta["validations"] and accelerator.is_main_process:
        meta["validations"].append(validation.run(0, trainable, ema))

    from svd_lab.progress import progress_bar
    from svd_lab.small.train import svd_loss
    from svd_lab.training import lr_factor

    bar = progress_bar(total=settings.steps, initial=meta["step"], desc=f"finetune {settings.mode}",
                       enabled=progress and accelerator.is_main_process)
    started = time.time() - meta["seconds"]
    components_for_loss = _WithUNet(components, prepared_unet)
    for step in range(meta["step"], settings.steps):
        for group in optimizer.param_groups:
            group["lr"] = settings.lr * lr_factor(step / settings.steps, step, settings.warmup)
        total = 0.0
        for micro in range(settings.accumulate):
            generator = torch.Generator().manual_seed(step_seed(settings.seed, step, micro,
                                                                accelerator.process_index))
            z0, first, fps_id, bucket = draw_batch(encoded, generator, settings.batch, scaling)
            loss = svd_loss(components_for_loss, z0.to(device), first.to(device), fps_id, bucket, settings,
                            generator, autocast=torch.autocast(device.type, dtype=low or torch.float32,
                                                               enabled=low is not None))
            scaler.scale(loss / settings.accumulate).backward()
            total += loss.item() / settings.accumulate
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(list(trainable.values()), settings.max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.update(trainable)
        meta["loss"].append([step + 1, round(total, 6)])
        bar.update()
        done = step + 1
        if settings.validate_every and done % settings.validate_every == 0 and done < settings.steps \
                and accelerator.is_main_process:
            meta["validations"].append(validation.run(done, trainable, ema))
            unet.train()
        if done % settings.checkpoint_every == 0 or done == settings.steps or done == stop_after:
            meta["step"], meta["seconds"] = done, round(time.time() - started, 2)
            meta["scaler"] = scaler.state_dict() if scaler.is_enabled() else None
            if accelerator.is_main_process:
                save_checkpoint(state_file, trainable, optimizer, ema, meta)
            accelerator.wait_for_everyone()
        if stop_after is not None and done == stop_after and done < settings.steps:
            bar.close()
            return None
    bar.close()
    unet.eval()
    if accelerator.is_main_process:
        meta["validations"].append(validation.run(settings.steps, trainable, ema))
    record = {**run, "steps": settings.steps, "seconds": meta["seconds"], "held_out_validation": held_out,
              "seconds_per_step": round(meta["seconds"] / settings.steps, 4), "loss": meta["loss"],
              "validations": meta["validations"], "trainable_parameters": sum(p.numel() for p in trainable.values()),
              "parameters": sum(p.numel() for p in unet.parameters())}
    if ema is not None:
        with torch.no_grad():
            for n, p in trainable.items():
                p.copy_(ema.shadow[n].to(p.dtype))
    components.eval()
    if accelerator.is_main_process:
        _write_output(components, settings, out, work, record)
        shutil.rmtree(work, ignore_errors=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        log(f"{settings.steps} steps in {meta['seconds']:.0f} s; wrote {out}")
    return FinetuneResult(out, record, components)


class _WithUNet:
    """The components as :func:`svd_loss` sees them, with the accelerate-prepared UNet (DDP on several GPUs)."""

    def __init__(self, components, unet):
        self._components, self.unet = components, unet

    def __getattr__(self, name):
        return getattr(self._components, name)


def _optimizer(settings: FinetuneSettings, params: list):
    if settings.optimizer == "adamw8bit":
        import bitsandbytes

        return bitsandbytes.optim.AdamW8bit(params, lr=settings.lr, weight_decay=0.0)
    return torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)


def _jsonable(value):
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


# ------------------------------------------------------------------------------------------- validation
class Validation:
    """A video sampled from the validation window's first frame at its own fps_id and motion bucket, saved as
    ``validation/step-NNNNNN.mp4``, with its measured motion next to the clip's."""

    def __init__(self, components, val_set: Dataset, folder: Path, settings: FinetuneSettings, held_out: bool):
        self.components, self.folder, self.settings, self.held_out = components, folder, settings, held_out
        self.image = val_set.frames[0, 0].float() / 255.0
        self.truth = val_set.frames[0].float() / 255.0
        self.fps_id, self.bucket = int(val_set.fps_id[0]), int(val_set.motion_bucket_id[0])

    def run(self, step: int, trainable: dict, ema: EMA | None) -> dict:
        from svd_lab.finetune.measure import signed_motion
        from svd_lab.video import Video

        unet = self.components.unet
        was_training = unet.training
        context = ema.swapped(trainable) if ema is not None else contextlib.nullcontext()
        with context:
            frames = sample(self.components, self.image, self.truth.shape[0], self.fps_id, self.bucket,
                            self.settings.validation_steps)
        unet.train(was_training)
        for p in trainable.values():
            p.requires_grad_(True)          # the pipeline froze every network
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"step-{step:06d}.mp4"
        Video(frames, fps=self.fps_id + 1).save_mp4(path, overwrite=True)
        motion = signed_motion(frames)
        truth = signed_motion(self.truth)
        return {"step": step, "video": f"validation/{path.name}", "motion_px": [round(v, 3) for v in motion],
                "clip_motion_px": [round(v, 3) for v in truth], "held_out": self.held_out}


def sample(components, image: torch.Tensor, frames: int, fps_id: int, bucket: int, steps: int | None = None,
           seed: int = VALIDATION_SEED) -> torch.Tensor:
    """One video (T, 3, H, W) in [0, 1] from ``image`` (3, H, W) with the components as they are (float32)."""
    from svd_lab.svd.pipeline import SVDPipeline

    pipe = SVDPipeline(components, device=components.device, dtype=torch.float32, memory="resident")
    generation = pipe.run(image, num_frames=frames, num_steps=steps, seed=seed, fps_id=fps_id,
                          motion_bucket_id=bucket, height=image.shape[-2], width=image.shape[-1], progress=False)
    return generation.frames


# ------------------------------------------------------------------------------------------- writing
def _write_output(components, settings: FinetuneSettings, out: Path, work: Path, record: dict) -> None:
    from svd_lab.atomic import new_directory_beside, place

    def add_files(folder: Path) -> None:
        (folder / "finetune.json").write_text(json.dumps(record, indent=1))
        write_loss_plot(record, folder / "loss.png")
        if (work / "validation").is_dir():
            shutil.copytree(work / "validation", folder / "validation")

    if settings.mode == "lora":
        folder = new_directory_beside(out)
        try:
            lora_module.save_adapter(components.unet, settings.lora_config(), folder / "lora.safetensors",
                                     record={"base": record["base"], "frames": record["frames"],
                                             "height": record["height"], "width": record["width"]})
            add_files(folder)
            place(folder, out)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return
    from svd_lab.svd.loading import save_diffusers_folder

    components.unet.register_to_config(num_frames=record["frames"])
    extra = {"model": "small"} if components.profile == "small" else {}
    save_diffusers_folder(components, out, atomic=True, extras=add_files,
                          record={**extra, "finetuned_from": record["base"],
                                  "trained_size": [record["height"], record["width"]]})


def write_loss_plot(record: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from svd_lab.training import smooth

    steps = [r[0] for r in record["loss"]]
    losses = [r[1] for r in record["loss"]]
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    ax.plot(steps, losses, alpha=0.3, lw=0.7, label="loss")
    ax.plot(steps, smooth(losses, 0.1), lw=1.5, label="smoothed")
    ax.set(yscale="log", xlabel="step", ylabel="v-prediction loss", title=f"fine-tuning ({record['settings']['mode']})")
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    path.write_bytes(buffer.getvalue())
