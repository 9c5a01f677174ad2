r"""Image -> video with Stable Video Diffusion: Stability's ``simple_video_sample.py``, readable and testable.

The whole algorithm, for one image and T frames::

    image   = resize-and-crop(input, W x H)                             (svd_lab.svd.images)
    c_clip  = CLIP(image)                                               (1, 1, D)
    n_cond  ~ N(0, I)                                                   (1, 3, H, W)    first random draw
    c_img   = VAE.encode(2 image - 1 + cond_aug * n_cond).mode()        (1, 4, H/8, W/8), not scaled
    ids     = [fps_id, motion_bucket_id, cond_aug]
    n       ~ N(0, I)                                                   (1, T, 4, H/8, W/8)  second draw
    z       = EDM-Euler sample of the v-prediction UNet from n, Karras sigmas (0.002 .. 700, rho 7),
              guidance rising linearly over the frames from min_guidance to max_guidance
    frames  = VAE.decode(z / 0.18215) in chunks of decoding_t frames,   (T, 3, H, W) in [-1, 1]
    video   = clamp((frames + 1) / 2, 0, 1)

(svd_lab.svd.conditioning builds the conditioning, svd_lab.sampling.edm samples.) On the tiny profile this
reproduces diffusers' ``StableVideoDiffusionPipeline`` bit for bit (tests/test_svd_equivalence.py).

Memory: ``memory='auto'`` plans ``decoding_t`` and model CPU offload from the free VRAM (svd_lab.memory) on CUDA;
an out-of-memory error frees memory and retries once with safer settings (recorded in the parameters), then
raises :class:`SVDOutOfMemoryError` naming settings expected to fit.
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from svd_lab import memory as memory_planning
from svd_lab.errors import InputError, RunError
from svd_lab.sampling import edm
from svd_lab.svd import conditioning
from svd_lab.svd.components import SVDComponents
from svd_lab.svd.configs import TINY_HEIGHT, TINY_WIDTH
from svd_lab.svd.images import check_size, image_to_tensor, load_image
from svd_lab.svd.versions import DECODER_TEMPORAL, check_micro_conditioning, get_version
from svd_lab.video import Video

MEMORY_MODES = ("auto", "resident", "offload")
DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
          "half": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def profile_defaults(components: SVDComponents) -> dict:
    """Sampling defaults a small profile sets over the version's (576x1024, 14 frames would be pointless there):
    tiny samples at 64x64 (random weights: only the machinery matters); small at the frame size and frame count
    its own configs say it was trained at (read from the networks, never written here); a fine-tuned model at the
    size and frame count it was fine-tuned at (its record, :attr:`SVDComponents.trained_size`); steps and guidance
    as the weights' record recommends (:attr:`SVDComponents.sampling`)."""
    defaults = dict(components.sampling)
    if components.trained_size is not None:
        height, width = components.trained_size
        defaults.update(height=height, width=width, num_frames=components.native_frames)
    elif components.profile == "tiny":
        defaults.update(height=TINY_HEIGHT, width=TINY_WIDTH)
    elif components.profile == "small":
        size = components.native_size
        defaults.update(height=size, width=size, num_frames=components.native_frames)
    return defaults


class SVDOutOfMemoryError(RunError):
    """Out of GPU memory even after one retry with safer settings; the message names settings that should fit."""


# ------------------------------------------------------------------------------------------- devices
def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> CUDA if available, else Apple MPS, else CPU; an explicit device must exist."""
    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda requested but no CUDA GPU is available to this torch build "
                         f"(torch {torch.__version__}); use --device cpu or auto")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(f"device {dev} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError("device mps requested but Apple MPS is not available here; use --device cpu or auto")
    return dev


#: set only by :func:`gpu_rehearsal` (tests, the GPU check's rehearsal): float16 and model offload on the CPU
_REHEARSAL = {"float16": False, "offload": False}


@contextlib.contextmanager
def gpu_rehearsal():
    """Inside this block the pipeline runs what CUDA users run, on the CPU: float16 networks (refused to users on a
    CPU: slow, and only for checking) and the model-offload placement (each network moved to the device only while
    it runs -- on a CPU the moves are no-ops, but every step of that code path executes). For tests; the command
    line never enters it."""
    before = dict(_REHEARSAL)
    _REHEARSAL.update(float16=True, offload=True)
    try:
        yield
    finally:
        _REHEARSAL.update(before)


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """None/'auto' -> float16 on CUDA, float32 elsewhere; float16 on a CPU is refused (slow, partly unsupported)."""
    if dtype is None or dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise InputError(f"unknown dtype {dtype!r}; use auto, float32, float16 or bfloat16")
        dtype = DTYPES[dtype]
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise InputError(f"unsupported dtype {dtype}; use float32, float16 or bfloat16")
    if dtype == torch.float16 and device.type == "cpu" and not _REHEARSAL["float16"]:
        raise InputError("float16 on the CPU is very slow or unsupported; use float32 (or bfloat16)")
    return dtype


def free_vram(device: torch.device) -> int | None:
    if device.type != "cuda":
        return None
    return int(torch.cuda.mem_get_info(device)[0])


def _release_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------------- CPU time estimate
UNET_FLOP_PER_STEP_14_FRAMES = 89.6e12   # svd at 576x1024, guidance batch 2 x 14 (torch FlopCounterMode)
DECODER_FLOP_PER_FRAME = 6.8e12          # temporal VAE decoder at 576x1024
CPU_FLOP_PER_SECOND_PER_CORE = 75e9      # measured: ~10 min per UNet step on a 2-core CPU


def estimate_cpu_seconds(num_frames: int, num_steps: int, height: int = 576, width: int = 1024,
                         cores: int | None = None) -> float:
    """Rough wall time of full-size SVD on a CPU (FLOPs scaled from the measured 576x1024 figures).

    Only for telling a user "hours" before they start; activations make large sizes slower still.
    """
    import os

    cores = cores or os.cpu_count() or 1
    pixels = height * width / (576 * 1024)
    flops = (UNET_FLOP_PER_STEP_14_FRAMES * num_frames / 14 * num_steps + DECODER_FLOP_PER_FRAME * num_frames) * pixels
    return flops / (CPU_FLOP_PER_SECOND_PER_CORE * cores)


# ------------------------------------------------------------------------------------------- results
@dataclass
class Generation:
    """Everything one run produced: ``latents`` (1, T, 4, h, w) float32, ``frames`` (T, 3, H, W) float32 in
    [0, 1], the ``video``, the prepared ``image`` (PIL, W x H) and the ``params`` actually used."""

    latents: torch.Tensor
    frames: torch.Tensor
    video: Video
    image: Any
    params: dict


class SVDPipeline:
    """Stable Video Diffusion image-to-video on :class:`SVDComponents`.

    Args:
        components: the networks (tiny random, a diffusers folder, a converted sgm file).
        device: 'auto' (CUDA > MPS > CPU) or a device.
        dtype: None/'auto' (float16 on CUDA, float32 elsewhere), 'float32', 'float16', 'bfloat16'.
        memory: 'auto' (plan from free VRAM on CUDA), 'resident' (everything on the device), 'offload' (model CPU
            offload: each network is moved to the GPU only while it runs; CUDA only).
    """

    def __init__(self, components: SVDComponents, device: str | torch.device = "auto",
                 dtype: str | torch.dtype | None = None, memory: str = "auto"):
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        if memory not in MEMORY_MODES:
            raise InputError(f"unknown memory mode {memory!r}; use one of {', '.join(MEMORY_MODES)}")
        if memory == "offload" and self.device.type != "cuda" and not _REHEARSAL["offload"]:
            raise InputError("memory='offload' (model CPU offload) needs a CUDA device; on "
                             f"{self.device.type} everything already lives in one memory")
        self.memory = memory
        self.components = components.to(dtype=self.dtype).eval()
        self._offload = False
        if memory == "offload" and _REHEARSAL["offload"] and self.device.type != "cuda":
            self._place(offload=True)           # the offload path on the CPU: see gpu_rehearsal
        else:
            self._place(offload=False if self.device.type != "cuda" or memory == "resident" else None)

    # -- placement
    def _place(self, offload: bool | None) -> None:
        """Resident: all networks on the device. Offload: all on the CPU, moved in one at a time. None: decide
        later (per call, from the plan) -- start on the CPU to not fill the GPU before planning."""
        self._offload = bool(offload) if offload is not None else True
        target = torch.device("cpu") if self._offload else self.device
        self.components.to(device=target)

    @contextlib.contextmanager
    def _on_device(self, module: torch.nn.Module):
        if self._offload:
            torch.nn.Module.to(module, self.device)
        try:
            yield module
        finally:
            if self._offload:
                torch.nn.Module.to(module, "cpu")
                _release_memory(self.device)

    def plan_memory(self, num_frames: int, height: int, width: int,
                    decoding_t: int | None) -> memory_planning.MemoryPlan:
        """decoding_t and offload for this call (an explicit decoding_t is kept)."""
        spec = get_version(self.components.version)
        free = free_vram(self.device)
        if self.device.type == "cuda" and self.memory == "auto":
            plan = memory_planning.plan_for_free_vram(free, num_frames, height, width)
            if decoding_t is not None:
                plan = memory_planning.MemoryPlan(decoding_t, plan.cpu_offload, plan.reason + "; decoding_t given")
            return plan
        chosen = decoding_t if decoding_t is not None else spec.decoding_t
        offload = self.memory == "offload"
        where = f"{free / memory_planning.GIB:.1f} GiB free" if free is not None else self.device.type
        return memory_planning.MemoryPlan(chosen, offload, f"{where}; memory={self.memory}")

    # -- the steps
    def prepare_image(self, image: Any, width: int, height: int):
        return load_image(image, width=width, height=height)

    def encode(self, image_tensor: torch.Tensor, num_frames: int, fps_id: int, motion_bucket_id: int,
               cond_aug: float, generator: torch.Generator) -> dict:
        """Conditioning dict {crossattn (1,1,D), concat (1,T,4,h,w), vector (1,3)} (one random draw)."""
        comps = self.components
        with self._on_device(comps.image_encoder):
            crossattn = conditioning.clip_embedding(comps, image_tensor, self.device)
        with self._on_device(comps.vae):
            latent = conditioning.image_latent(comps, image_tensor, cond_aug, generator, self.device)
        latent = latent.to(crossattn.dtype)
        concat = latent.unsqueeze(1).repeat(1, num_frames, 1, 1, 1)
        vector = conditioning.time_ids(fps_id, motion_bucket_id, cond_aug, crossattn.dtype, self.device)
        return {"crossattn": crossattn, "concat": concat, "vector": vector}

    def sample_latents(self, cond: dict, num_frames: int, height: int, width: int, num_steps: int,
                       min_guidance: float, max_guidance: float, generator: torch.Generator,
                       sigma_min: float = 0.002, sigma_max: float = 700.0, rho: float = 7.0,
                       callback=None, progress: bool = True) -> torch.Tensor:
        """EDM Euler sampling of the latents (1, T, C, H/f, W/f), float32 (the second random draw; C and f are the
        VAE's latent channels and down-sampling, 4 and 8 for SVD)."""
        unet = self.components.unet
        noise = conditioning.randn(self.components.latent_shape(num_frames, height, width), generator,
                                   self.device, torch.float32)
        sigmas = edm.karras_sigmas(num_steps, sigma_min, sigma_max, rho)
        guidance = edm.linear_guidance(num_frames, min_guidance, max_guidance)
        with self._on_device(unet):
            denoiser = edm.Denoiser(conditioning.UNetNetwork(unet), edm.v_scaling_preconditioning)
            return edm.sample(denoiser, noise, sigmas, cond, uncond_builder=conditioning.unconditional,
                              guidance=guidance, callback=callback, progress=progress)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, decoding_t: int) -> torch.Tensor:
        """Latents (1, T, 4, h, w) -> frames (T, 3, H, W) float32 in [0, 1], ``decoding_t`` frames at a time.

        The temporal decoder mixes frames within a chunk, so decoding_t changes the result slightly (the
        reference default is 14); the image decoder works frame by frame.
        """
        vae = self.components.vae
        dtype = next(vae.parameters()).dtype
        z = 1 / self.components.latent_scaling * latents.flatten(0, 1)  # written like diffusers: same rounding
        chunks = []
        with self._on_device(vae):
            for start in range(0, z.shape[0], decoding_t):
                chunk = z[start:start + decoding_t].to(self.device, dtype)
                if self.components.decoder == DECODER_TEMPORAL:
                    out = vae.decode(chunk, num_frames=chunk.shape[0]).sample
                else:
                    out = vae.decode(chunk).sample
                chunks.append(out.float())
        frames = torch.cat(chunks)
        return (frames * 0.5 + 0.5).clamp(0, 1)

    # -- the whole run
    def resolve_params(self, **given: Any) -> dict:
        """The parameters of a run: given values, else the profile's (:func:`profile_defaults`), else the
        version's defaults. The sigma schedule is the version's and is recorded separately by :meth:`run`."""
        defaults = get_version(self.components.version).defaults()
        for key in ("sigma_min", "sigma_max", "rho"):
            defaults.pop(key)
        defaults.update(profile_defaults(self.components))
        params = {k: (given[k] if given.get(k) is not None else v) for k, v in defaults.items()}
        for key in ("num_frames", "num_steps", "fps_id", "motion_bucket_id", "seed", "height", "width"):
            value = params[key]
            if isinstance(value, bool) or int(value) != value:
                raise InputError(f"{key} must be an integer, got {value!r}")
            params[key] = int(value)
        if params["num_frames"] < 1 or params["num_steps"] < 1:
            raise InputError(f"num_frames and num_steps must be >= 1 (got {params['num_frames']}, "
                             f"{params['num_steps']})")
        for key in ("min_guidance", "max_guidance", "cond_aug"):
            value = params[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(f"{key} must be a finite number, got {value!r}")
            params[key] = float(value)
        if given.get("decoding_t") is not None and int(given["decoding_t"]) < 1:
            raise InputError(f"decoding_t must be >= 1, got {given['decoding_t']}")
        check_size(params["width"], params["height"])
        # values outside the trained ranges are warned about (and recorded), not refused: they are experiments
        params["warnings"] = check_micro_conditioning(params["fps_id"], params["motion_bucket_id"], params["cond_aug"])
        return params

    def run(self, image: Any, *, num_frames: int | None = None, num_steps: int | None = None,
            min_guidance: float | None = None, max_guidance: float | None = None, fps_id: int | None = None,
            motion_bucket_id: int | None = None, cond_aug: float | None = None, seed: int | None = None,
            generator: torch.Generator | None = None, decoding_t: int | None = None, width: int | None = None,
            height: int | None = None, callback=None, progress: bool = True) -> Generation:
        """Generate a video; see the module docstring for the algorithm. Returns a :class:`Generation`."""
        spec = get_version(self.components.version)
        # 1. parameters: the given values over the profile's and the version's defaults, checked
        params = self.resolve_params(
            num_frames=num_frames, num_steps=num_steps, min_guidance=min_guidance, max_guidance=max_guidance,
            fps_id=fps_id, motion_bucket_id=motion_bucket_id, cond_aug=cond_aug, seed=seed, width=width,
            height=height, decoding_t=decoding_t)
        n, h, w = params["num_frames"], params["height"], params["width"]
        # 2. the memory plan, the image at the video size, the random generator
        retry = _OutOfMemoryRetry(self, self.plan_memory(n, h, w, decoding_t), n, h, w)
        prepared = self.prepare_image(image, w, h)
        image_tensor = image_to_tensor(prepared)
        generator = self._generator(generator, params)
        start_state = generator.get_state()
        timings: dict[str, float] = {}
        sampled_with_chunking = False

        def sample_stage() -> torch.Tensor:
            nonlocal sampled_with_chunking
            generator.set_state(start_state)  # a retry draws the same noise again
            self._apply_plan(retry.plan)
            sampled_with_chunking = retry.plan.forward_chunking
            with _timed(timings, "sampling_seconds"):
                # 3. conditioning: CLIP embedding, latent of the noise-augmented image, time ids (first draw)
                cond = self.encode(image_tensor, n, params["fps_id"], params["motion_bucket_id"],
                                   params["cond_aug"], generator)
                # 4. EDM sampling of the latents (second draw)
                return self.sample_latents(cond, n, h, w, params["num_steps"], params["min_guidance"],
                                           params["max_guidance"], generator, spec.sigma_min, spec.sigma_max,
                                           spec.rho, callback, progress)

        def decode_stage() -> torch.Tensor:
            # 5. decoding, decoding_t frames at a time
            with _timed(timings, "decoding_seconds"):
                return self.decode(latents, retry.plan.decoding_t)

        # The plan decides forward chunking during the run; the UNet leaves the run as it came in (a retry's
        # chunking must not leak into the next run, whose record would then say it ran without).
        chunking_before = _feed_forward_chunk_sizes(self.components.unet)
        try:
            latents = retry.attempt("sampling", sample_stage)
            frames = retry.attempt("decoding", decode_stage)
        finally:
            _set_feed_forward_chunk_sizes(self.components.unet, chunking_before)

        # 6. the record of what was done
        plan = retry.plan
        params.update(
            version=spec.name, profile=self.components.profile, weights=self.components.source,
            decoder=self.components.decoder, device=str(self.device), dtype=str(self.dtype).replace("torch.", ""),
            decoding_t=min(plan.decoding_t, n), cpu_offload=self._offload, forward_chunking=sampled_with_chunking,
            memory=self.memory, memory_plan=plan.reason, oom_fallback=retry.fallback,
            sigmas={"schedule": "karras", "sigma_min": spec.sigma_min, "sigma_max": spec.sigma_max, "rho": spec.rho},
            **timings, **_library_versions(),
        )
        video = Video(frames.permute(0, 2, 3, 1).cpu(), fps=params["fps_id"] + 1, params=params)
        return Generation(latents=latents.float().cpu(), frames=frames.cpu(), video=video, image=prepared,
                          params=params)

    @staticmethod
    def _generator(generator: torch.Generator | None, params: dict) -> torch.Generator:
        """The caller's generator, or a CPU one from the seed (the same seed gives the same noise on every device);
        records which in ``params``."""
        if generator is None:
            params["generator"] = f"torch.Generator('cpu').manual_seed({params['seed']})"
            return torch.Generator("cpu").manual_seed(params["seed"])
        params["generator"] = "given by the caller"
        params["seed"] = None  # the caller's generator decides the noise, not a seed
        return generator

    def __call__(self, image: Any, **kwargs: Any) -> Video:
        """Generate a video (see :meth:`run` for the arguments)."""
        return self.run(image, **kwargs).video

    # -- memory helpers
    def _apply_plan(self, plan: memory_planning.MemoryPlan) -> None:
        self._place(offload=plan.cpu_offload and (self.device.type == "cuda" or _REHEARSAL["offload"]))
        self._set_forward_chunking(plan.forward_chunking)

    def _set_forward_chunking(self, on: bool) -> None:
        """Feed-forward layers one batch element at a time (on: what ``unet.enable_forward_chunking()`` sets) or
        whole (off). Set block by block: diffusers' UNetSpatioTemporalConditionModel has
        ``enable_forward_chunking`` but no ``disable_forward_chunking`` (0.42), so asking the UNet to turn it off
        silently did nothing.

        Not output-identical: each piece is a smaller matrix product, which BLAS blocks and sums in another order
        (tiny profile, 3 frames, 2 steps: latents of scale 1.4 move by 1e-4 to 5e-4, on AVX-512 and AVX2 kernels
        alike). A run records whether it sampled with chunking (``forward_chunking``).
        """
        for block in _feed_forward_blocks(self.components.unet).values():
            block.set_chunk_feed_forward(chunk_size=1 if on else None, dim=0)

    def _oom_error(self, message, stage, plan, n, h, w) -> SVDOutOfMemoryError:
        from svd_lab.messages import t

        free = free_vram(self.device)
        if free is None:
            advice = t("oom.no_vram_advice")
        else:
            total = int(torch.cuda.get_device_properties(self.device).total_memory)
            advice = memory_planning.fitting_settings(max(free, total - torch.cuda.memory_reserved(self.device)),
                                                      n, h, w)
        return SVDOutOfMemoryError(t("oom.failed", stage=t(f"oom.stage.{stage}"), device=self.device,
                                     decoding_t=plan.decoding_t, offload="on" if plan.cpu_offload else "off",
                                     message=message, advice=advice))


def _feed_forward_blocks(unet: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The UNet's transformer blocks whose feed-forward can be chunked, by module name."""
    return {name: block for name, block in unet.named_modules() if hasattr(block, "set_chunk_feed_forward")}


def _feed_forward_chunk_sizes(unet: torch.nn.Module) -> dict[str, tuple[int | None, int]]:
    """Each block's feed-forward chunking, by module name: (chunk size or None for whole, chunk dim)."""
    return {name: (getattr(block, "_chunk_size", None), getattr(block, "_chunk_dim", None) or 0)
            for name, block in _feed_forward_blocks(unet).items()}


def _set_feed_forward_chunk_sizes(unet: torch.nn.Module, sizes: dict[str, tuple[int | None, int]]) -> None:
    """Give the blocks back the chunking :func:`_feed_forward_chunk_sizes` read."""
    blocks = _feed_forward_blocks(unet)
    for name, (size, dim) in sizes.items():
        blocks[name].set_chunk_feed_forward(chunk_size=size, dim=dim)


def _plan_dict(plan: memory_planning.MemoryPlan) -> dict:
    return {"decoding_t": plan.decoding_t, "cpu_offload": plan.cpu_offload, "forward_chunking": plan.forward_chunking}


@contextlib.contextmanager
def _timed(timings: dict, key: str):
    """Store the wall time of the block in ``timings[key]`` (seconds, 3 decimals)."""
    t0 = time.perf_counter()
    yield
    timings[key] = round(time.perf_counter() - t0, 3)


class _OutOfMemoryRetry:
    """Run a stage; after an out-of-memory error free memory and retry once, for the whole run, with a safer plan.

    ``plan`` is the plan in force; ``fallback`` records the one retry (stage, error, plans before and after).
    """

    def __init__(self, pipe: SVDPipeline, plan: memory_planning.MemoryPlan, num_frames: int, height: int,
                 width: int):
        self.pipe, self.plan, self.fallback = pipe, plan, None
        self.size = (num_frames, height, width)

    def attempt(self, stage: str, fn):
        while True:
            try:
                return fn()
            except torch.OutOfMemoryError as exc:
                # Leave the except block before freeing: the traceback holds the failed stage's tensors.
                message = str(exc).splitlines()[0][:300] if str(exc) else "out of memory"
            _release_memory(self.pipe.device)
            if self.fallback is not None:  # this run already retried once
                raise self.pipe._oom_error(message, stage, self.plan, *self.size)
            safer = memory_planning.safer_plan(self.plan, on_cuda=self.pipe.device.type == "cuda")
            self.fallback = {"stage": stage, "error": message, "before": _plan_dict(self.plan),
                             "after": _plan_dict(safer)}
            self.plan = safer
            self.pipe._apply_plan(safer)


def _library_versions() -> dict:
    import diffusers
    import transformers

    from svd_lab.version import __version__

    return {"svd_lab_version": __version__, "torch_version": torch.__version__,
            "diffusers_version": diffusers.__version__, "transformers_version": transformers.__version__}
