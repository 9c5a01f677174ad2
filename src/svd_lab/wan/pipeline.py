r"""Wan text(-and-image)-to-video: diffusers' networks, our own flow-matching samplers, every step readable.

The algorithm (what :meth:`WanPipeline.run` does, in order)
----------------------------------------------------------
1. **Text.** The prompt (and the negative prompt guidance steers away from) -> UMT5 token ids, padded to
   ``max_sequence_length`` -> the encoder's hidden states ``(B, L, 4096)``, with the padded positions set to zero.
2. **Noise.** ``(B, C, 1 + (F - 1) / 4, H / s, W / s)`` standard normal latents: the VAE keeps the first frame and
   compresses the others 4x in time, ``s`` (8 or 16) in space; ``C`` = 16 or 48 latent channels.
3. **Image (Wan2.2-TI2V only).** The image -> VAE latent of one frame, normalised with the release's per-channel
   ``latents_mean`` / ``latents_std``. At every step the first latent frame of the transformer's input is that
   latent (a mask ``m`` is 0 there, 1 elsewhere: ``input = (1 - m) image + m x``) and its tokens are told
   timestep 0 -- "this frame is clean" -- while the others get the step's timestep (``expand_timesteps``).
4. **Flow sampling.** From t = 1 (the noise) to t = 0: the transformer predicts a velocity ``v`` from the latents,
   the timestep and the text; classifier-free guidance ``v = v_neg + g (v_text - v_neg)``; the solver moves the
   latents (:func:`svd_lab.sampling.unipc.sample_unipc`, Wan's default, or Euler,
   :func:`svd_lab.sampling.flow.sample_flow`) on the shifted schedule of :mod:`svd_lab.sampling.flow`.
5. **Decode.** Un-normalise (``z * std + mean``) and run the causal 3D VAE decoder: ``(B, 3, F, H, W)`` in
   [-1, 1] -> frames in [0, 1].

Equal, bit for bit on a CPU in float32, to diffusers' ``WanPipeline`` (text only) and ``WanImageToVideoPipeline``
with ``expand_timesteps`` (Wan2.2-TI2V) run with the same scheduler (``tests/test_wan.py``).
"""

from __future__ import annotations

import html
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from svd_lab.alignment import align_module
from svd_lab.errors import InputError, UserError
from svd_lab.sampling.flow import FlowSchedule, euler_schedule, sample_flow, unipc_schedule
from svd_lab.sampling.unipc import sample_unipc
from svd_lab.wan import configs
from svd_lab.wan.versions import DEFAULT_NEGATIVE_PROMPT, WanVersion, get_wan_version

SOLVERS = ("unipc", "euler")
PROFILES = ("tiny", "full")


def clean_prompt(text: str) -> str:
    """HTML entities decoded (twice, as in scraped captions), runs of white space collapsed, ends stripped: the
    cleaning Wan's prompts get before tokenizing (diffusers also runs ``ftfy`` when it is installed; svd-lab does
    not depend on it, so a prompt with broken unicode may tokenize differently there)."""
    return re.sub(r"\s+", " ", html.unescape(html.unescape(text)).strip()).strip()


def flow_schedule(solver: str, num_steps: int, shift: float) -> FlowSchedule:
    if solver == "unipc":
        return unipc_schedule(num_steps, shift)
    if solver == "euler":
        return euler_schedule(num_steps, shift)
    raise InputError(f"unknown solver {solver!r}: use one of {', '.join(SOLVERS)}")


def check_settings(name: str, height: int | None, width: int | None, num_frames: int | None,
                   num_steps: int | None = None, multiple: int | None = None, temporal: int | None = None,
                   spatial: int | None = None) -> None:
    """Frame size, frame count and steps valid for version ``name`` (its factors, or the networks' when given):
    an :class:`InputError` with the nearest valid value otherwise. None values are not checked."""
    spec = get_wan_version(name)
    multiple, temporal = multiple or spec.size_multiple, temporal or spec.temporal_factor
    spatial = spatial or spec.spatial_factor
    for key, value in (("height", height), ("width", width)):
        if value is not None and (value < multiple or value % multiple):
            raise InputError(f"{key} {value} must be a positive multiple of {multiple} for {name} (its VAE "
                             f"down-samples {spatial}x and the transformer takes 2x2 patches); try "
                             f"{max(multiple, round(value / multiple) * multiple)}")
    if num_frames is not None and (num_frames < 1 or (num_frames - 1) % temporal):
        nearest = max(1, round((num_frames - 1) / temporal) * temporal + 1)
        raise InputError(f"num_frames {num_frames} must be {temporal} k + 1 (the VAE keeps the first frame and "
                         f"compresses the rest {temporal}x in time): try {nearest}")
    if num_steps is not None and num_steps < 1:
        raise InputError(f"num_steps must be at least 1, got {num_steps}")


@dataclass
class WanComponents:
    """The networks of one Wan version, and where they came from."""

    version: WanVersion
    transformer: Any            # diffusers WanTransformer3DModel
    vae: Any                    # diffusers AutoencoderKLWan
    text_encoder: Any           # transformers UMT5EncoderModel
    tokenizer: Any
    profile: str                # "tiny" (random tiny networks) or "full" (a checkpoint)
    source: str
    shift: float                # the scheduler config's flow_shift
    expand_timesteps: bool      # Wan2.2-TI2V: per-token timesteps, the image as the first latent frame

    @property
    def spatial_factor(self) -> int:
        return int(self.vae.config.scale_factor_spatial)

    @property
    def temporal_factor(self) -> int:
        return int(self.vae.config.scale_factor_temporal)

    @property
    def size_multiple(self) -> int:
        """Height and width must be multiples of this: the VAE's down-sampling times the transformer's patch."""
        return self.spatial_factor * int(self.transformer.config.patch_size[1])

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"text_encoder": self.text_encoder, "transformer": self.transformer, "vae": self.vae}


def tiny_components(version: str | WanVersion, seed: int = 0) -> WanComponents:
    """Random tiny networks with the version's structure (the tiny profile: the machinery, in seconds)."""
    spec = version if isinstance(version, WanVersion) else get_wan_version(version)
    parts = configs.build_tiny(spec.name, seed)
    return WanComponents(spec, parts["transformer"], parts["vae"], parts["text_encoder"], parts["tokenizer"],
                         profile="tiny", source=f"random tiny networks (seed {seed})", shift=spec.shift,
                         expand_timesteps=spec.takes_image)


def check_wan_folder(folder: Path | str) -> dict:
    """A diffusers Wan folder's ``model_index.json``, checked before any weights load: every network folder and
    its weights present. An :class:`InputError` naming what is missing otherwise."""
    folder = Path(folder)
    index_path = folder / "model_index.json"
    if not index_path.is_file():
        raise InputError(f"{folder} is not a diffusers Wan checkpoint (no model_index.json); download one with "
                         "`svd-lab download wan2.1-t2v-1.3b`")
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{index_path} is not readable JSON ({exc}): download the checkpoint again") from None
    if "transformer" not in index or not str(index.get("_class_name", "")).startswith("Wan"):
        raise InputError(f"{folder} is not a Wan checkpoint (its model_index.json names {index.get('_class_name')})")
    missing = []
    for part in ("transformer", "vae", "text_encoder"):
        sub = folder / part
        if not (sub / "config.json").is_file():
            missing.append(f"{part}/config.json")
        elif not any(sub.glob("*.safetensors")):
            missing.append(f"{part}/*.safetensors")
        for shard_index in sub.glob("*.safetensors.index.json"):
            try:
                shards = set(json.loads(shard_index.read_text())["weight_map"].values())
            except (OSError, ValueError, KeyError):
                missing.append(f"{part}/{shard_index.name} (unreadable)")
                continue
            missing += [f"{part}/{s}" for s in sorted(shards) if not (sub / s).is_file()]
    if not (folder / "tokenizer").is_dir():
        missing.append("tokenizer/")
    if missing:
        raise InputError(f"the Wan checkpoint in {folder} is incomplete: missing {', '.join(missing)}. Run the "
                         "download again (it resumes and verifies)")
    return index


def load_components(folder: Path | str, version: str | WanVersion, dtype: torch.dtype = torch.float32,
                    vae_dtype: torch.dtype = torch.float32) -> WanComponents:
    """A downloaded Wan checkpoint (diffusers layout) -> components. The VAE stays in float32 by default, as Wan's
    own scripts keep it (its decoder is the stage most sensitive to half precision)."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import AutoTokenizer, UMT5EncoderModel

    spec = version if isinstance(version, WanVersion) else get_wan_version(version)
    folder = Path(folder)
    index = check_wan_folder(folder)
    shift = spec.shift
    scheduler_config = folder / "scheduler" / "scheduler_config.json"
    if scheduler_config.is_file():
        shift = float(json.loads(scheduler_config.read_text()).get("flow_shift", shift))
    networks = {
        "transformer": WanTransformer3DModel.from_pretrained(folder / "transformer", torch_dtype=dtype),
        "vae": AutoencoderKLWan.from_pretrained(folder / "vae", torch_dtype=vae_dtype),
        "text_encoder": UMT5EncoderModel.from_pretrained(folder / "text_encoder", torch_dtype=dtype)}
    for network in networks.values():
        # from_pretrained leaves weights at their file offsets; CPU kernels pick code paths by address, so a
        # loaded network would compute other last bits than the same one in fresh memory (svd_lab.alignment)
        align_module(network.eval().requires_grad_(False))
    return WanComponents(
        spec, **networks,
        tokenizer=AutoTokenizer.from_pretrained(folder / "tokenizer"),
        profile="full", source=str(folder), shift=shift,
        expand_timesteps=bool(index.get("expand_timesteps", spec.takes_image)),
    )


@dataclass
class WanGeneration:
    """What a run made: ``frames`` (F, H, W, 3) float in [0, 1], the final ``latents``, and the parameters."""

    frames: torch.Tensor
    latents: torch.Tensor
    params: dict = field(default_factory=dict)

    def video(self):
        from svd_lab.video import Video

        return Video(self.frames.numpy(), fps=float(self.params["fps"]), params=self.params)


class WanPipeline:
    """Sampling with one set of :class:`WanComponents` on one device (see the module docstring for the steps).

    ``memory``: ``"resident"`` (everything on the device), ``"offload"`` (each network moves to the device only
    while it runs: model CPU offload), or a :class:`svd_lab.wan.memory.WanMemoryPlan` from
    :func:`svd_lab.wan.memory.plan_memory`.
    """

    def __init__(self, components: WanComponents, device: str | torch.device = "cpu", memory: Any = "resident"):
        from svd_lab.wan.memory import WanMemoryPlan, apply_plan

        self.components = components
        self.device = torch.device(device)
        self.plan = memory if isinstance(memory, WanMemoryPlan) else WanMemoryPlan(mode=memory, reason="asked")
        apply_plan(self.components, self.device, self.plan)

    # -- 1. text
    def encode_text(self, prompts: list[str], max_sequence_length: int) -> torch.Tensor:
        """Prompts -> UMT5 hidden states ``(B, max_sequence_length, D)``, zero beyond each prompt's tokens."""
        c = self.components
        tokens = c.tokenizer([clean_prompt(p) for p in prompts], padding="max_length",
                             max_length=max_sequence_length, truncation=True, add_special_tokens=True,
                             return_attention_mask=True, return_tensors="pt")
        lengths = tokens.attention_mask.gt(0).sum(dim=1).long()
        with self._on_device(c.text_encoder) as encoder_device:
            hidden = c.text_encoder(tokens.input_ids.to(encoder_device),
                                    tokens.attention_mask.to(encoder_device)).last_hidden_state
        hidden = hidden.to(dtype=c.text_encoder.dtype, device=self.device)
        # the encoder attends only to real tokens, but its outputs at padded positions are not zero: zero them,
        # as Wan's training did, so the cross-attention sees exactly the prompt
        return torch.stack([torch.cat([h[:n], h.new_zeros(max_sequence_length - n, h.size(1))])
                            for h, n in zip(hidden, lengths)])

    # -- 3. image
    def encode_image(self, image: Any, height: int, width: int) -> torch.Tensor:
        """An image (path, PIL, array) -> its normalised VAE latent ``(1, C, 1, h, w)`` (Wan2.2-TI2V)."""
        from svd_lab.svd.images import image_to_tensor, load_image

        c = self.components
        pixels = image_to_tensor(load_image(image, width, height)) * 2.0 - 1.0        # [-1, 1], as diffusers
        with self._on_device(c.vae) as vae_device:
            latent = c.vae.encode(pixels.unsqueeze(2).to(vae_device, c.vae.dtype)).latent_dist.mode()
        mean, inv_std = self._latent_statistics(torch.float32)
        return (latent.to(self.device, torch.float32) - mean.to(self.device)) * inv_std.to(self.device)

    def _latent_statistics(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """The release's per-channel latent mean and *inverse* std, shaped to broadcast over (B, C, T, H, W)."""
        config = self.components.vae.config
        mean = torch.tensor(config.latents_mean).view(1, config.z_dim, 1, 1, 1).to(dtype=dtype)
        inv_std = 1.0 / torch.tensor(config.latents_std).view(1, config.z_dim, 1, 1, 1).to(dtype=dtype)
        return mean, inv_std

    # -- 5. decode
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents ``(B, C, T, h, w)`` -> frames ``(B, F, H, W, 3)`` in [0, 1] (float32, CPU)."""
        vae = self.components.vae
        with self._on_device(vae) as vae_device:
            latents = latents.to(vae_device, vae.dtype)
            mean, inv_std = self._latent_statistics(latents.dtype)
            latents = latents / inv_std.to(vae_device) + mean.to(vae_device)
            video = vae.decode(latents, return_dict=False)[0]
        return (video / 2 + 0.5).clamp(0, 1).float().cpu().permute(0, 2, 3, 4, 1)

    def resolve(self, **given: Any) -> dict:
        """The run's settings: what was given, else the profile's (tiny) or the version's defaults; validated."""
        c = self.components
        spec = c.version
        tiny = c.profile == "tiny"
        height, width = configs.TINY_SIZE[spec.name] if tiny else (spec.height, spec.width)
        params = {"height": height, "width": width,
                  "num_frames": configs.TINY_FRAMES if tiny else spec.num_frames,
                  "num_steps": configs.TINY_STEPS if tiny else spec.num_steps,
                  "guidance": spec.guidance, "shift": c.shift, "solver": spec.solver, "seed": spec.seed,
                  "fps": spec.fps,
                  "max_sequence_length": configs.TINY_MAX_SEQUENCE_LENGTH if tiny else spec.max_sequence_length}
        params.update({k: v for k, v in given.items() if v is not None})
        check_settings(spec.name, params["height"], params["width"], params["num_frames"], params["num_steps"],
                       multiple=c.size_multiple, temporal=c.temporal_factor, spatial=c.spatial_factor)
        if params["solver"] not in SOLVERS:
            raise InputError(f"unknown solver {params['solver']!r}: use one of {', '.join(SOLVERS)}")
        if not params["shift"] > 0:
            raise InputError(f"shift must be positive, got {params['shift']}")
        if not params["guidance"] >= 0:
            raise InputError(f"guidance must be >= 0, got {params['guidance']}")
        return params

    def run(self, prompt: str, image: Any = None, *, negative_prompt: str | None = None,
            num_frames: int | None = None, num_steps: int | None = None, height: int | None = None,
            width: int | None = None, guidance: float | None = None, shift: float | None = None,
            solver: str | None = None, seed: int | None = None, latents: torch.Tensor | None = None,
            prompt_embeds: torch.Tensor | None = None, negative_prompt_embeds: torch.Tensor | None = None,
            max_sequence_length: int | None = None, progress: bool = True) -> WanGeneration:
        """One video from a prompt (and, for Wan2.2-TI2V, optionally an image as its first frame)."""
        c = self.components
        if image is not None and not c.version.takes_image:
            raise InputError(f"{c.version.name} is text-to-video only: it takes no image (leave the image out, or "
                             "use wan2.2-ti2v-5b for image-to-video)")
        if prompt_embeds is None and not (isinstance(prompt, str) and prompt.strip()):
            raise InputError("a Wan video needs a prompt (--prompt \"what happens in the video\")")
        p = self.resolve(num_frames=num_frames, num_steps=num_steps, height=height, width=width,
                         guidance=guidance, shift=shift, solver=solver, seed=seed,
                         max_sequence_length=max_sequence_length)
        negative = DEFAULT_NEGATIVE_PROMPT if negative_prompt is None else negative_prompt
        guided = p["guidance"] > 1.0
        timings = {}
        started = time.perf_counter()

        # 1. text
        dtype = c.transformer.dtype
        text = prompt_embeds if prompt_embeds is not None else self.encode_text([prompt], p["max_sequence_length"])
        text = text.to(self.device, dtype)
        negative_text = None
        if guided:
            negative_text = (negative_prompt_embeds if negative_prompt_embeds is not None
                             else self.encode_text([negative], p["max_sequence_length"]))
            negative_text = negative_text.to(self.device, dtype)

        # 2. noise (drawn on the CPU, so a seed gives the same video on every device)
        shape = (1, int(c.vae.config.z_dim), (p["num_frames"] - 1) // c.temporal_factor + 1,
                 p["height"] // c.spatial_factor, p["width"] // c.spatial_factor)
        if latents is None:
            generator = torch.Generator().manual_seed(int(p["seed"]))
            latents = torch.randn(shape, generator=generator, dtype=torch.float32)
        elif tuple(latents.shape) != shape:
            raise InputError(f"latents must be shaped {shape} for these settings, got {tuple(latents.shape)}")
        latents = latents.to(self.device, torch.float32)

        # 3. the image as the clean first latent frame (Wan2.2-TI2V)
        condition = mask = None
        if c.expand_timesteps:
            mask = torch.ones((1, 1, *shape[2:]), dtype=torch.float32, device=self.device)
            if image is not None:
                condition = self.encode_image(image, p["height"], p["width"])
                mask[:, :, 0] = 0
        timings["encode_seconds"] = time.perf_counter() - started

        # 4. flow sampling with classifier-free guidance on the text
        def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if mask is not None:
                if condition is not None:
                    x = (1 - mask) * condition + mask * x
                # one timestep per token (2x2 patches): 0 on the clean image frame, t elsewhere
                timestep = (mask[0][0][:, ::2, ::2] * t).flatten().unsqueeze(0).expand(x.shape[0], -1)
            else:
                timestep = t.expand(x.shape[0])
            x = x.to(dtype)
            v = c.transformer(hidden_states=x, timestep=timestep, encoder_hidden_states=text, return_dict=False)[0]
            if guided:
                v_negative = c.transformer(hidden_states=x, timestep=timestep, encoder_hidden_states=negative_text,
                                           return_dict=False)[0]
                v = v_negative + p["guidance"] * (v - v_negative)
            return v

        schedule = flow_schedule(p["solver"], p["num_steps"], p["shift"])
        started = time.perf_counter()
        with self._on_device(c.transformer):     # offload: on the device for the whole loop, not per step
            if p["solver"] == "unipc":
                latents = sample_unipc(velocity, latents, schedule, progress=progress)
            else:
                latents = sample_flow(velocity, latents, schedule, progress=progress)
        if condition is not None:
            latents = (1 - mask) * condition + mask * latents
        timings["sampling_seconds"] = time.perf_counter() - started

        # 5. decode
        started = time.perf_counter()
        frames = self.decode(latents)[0]
        timings["decoding_seconds"] = time.perf_counter() - started
        params = {"model": c.version.name, "profile": c.profile, "source": c.source, "prompt": prompt,
                  "negative_prompt": negative if guided else None, "image": image is not None, **p,
                  "device": str(self.device), "dtype": str(dtype).replace("torch.", ""),
                  "memory": self.plan.mode, "memory_plan": self.plan.reason, **timings}
        return WanGeneration(frames, latents.cpu(), params)

    # -- placement
    def _on_device(self, module: torch.nn.Module):
        from svd_lab.wan.memory import on_device

        return on_device(module, self.device, self.plan)


def load_wan_pipeline(version: str, profile: str = "tiny", checkpoint: Path | str | None = None,
                      device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                      memory: str = "auto", num_frames: int | None = None, height: int | None = None,
                      width: int | None = None) -> WanPipeline:
    """The Wan pipeline for ``version`` on ``profile``: ``tiny`` (random tiny networks) or ``full`` (the
    checkpoint at ``checkpoint``, default ``checkpoints/<version>``), memory planned from free VRAM on CUDA."""
    from svd_lab.wan.memory import plan_memory

    spec = get_wan_version(version)
    device = torch.device(device)
    if profile == "tiny":
        components = tiny_components(spec)
    elif profile == "full":
        if checkpoint is None:
            from svd_lab.checkpoints.local import checkpoints_root

            checkpoint = checkpoints_root() / spec.name
        if not Path(checkpoint).exists():
            raise UserError(f"no {spec.name} checkpoint at {checkpoint}: download it with `svd-lab download "
                            f"{spec.name}` (add --source modelscope from mainland China), or use --profile tiny")
        if dtype is None:
            dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        components = load_components(checkpoint, spec, dtype=dtype)
    else:
        raise InputError(f"unknown profile {profile!r} for Wan: use tiny or full")
    plan = plan_memory(components, device, memory, num_frames=num_frames or spec.num_frames,
                       height=height or spec.height, width=width or spec.width)
    return WanPipeline(components, device, plan)
