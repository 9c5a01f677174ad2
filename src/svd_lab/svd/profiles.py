"""Which networks to sample with: the profile (tiny, small, full), the checkpoint it needs, and the loaded pipeline.

- ``tiny``: SVD's networks at a tiny size with random weights (CI's equivalence tests; only the machinery is real);
- ``small``: the small SVD the project trains and ships (``checkpoints/small/``, :mod:`svd_lab.small`): seconds on
  a CPU, at the frame size and frame count it was trained at;
- ``full``: a real checkpoint (a downloaded diffusers folder or an sgm single file);
- ``auto``: an explicit checkpoint -> full; a usable local checkpoint on a GPU -> full; otherwise small when its
  weights are present, else tiny. Full-size SVD on a CPU takes hours: ask for it with ``profile="full"``.

The version may be ``"auto"`` (or None, the same): among the SVD checkpoints present here, the first in
:data:`AUTO_VERSIONS` that the memory planner expects to fit on this GPU (a user who downloaded only ``svd_xt``
gets ``svd_xt``); the small or tiny model (svd's shape) when none is usable here. An explicit version always wins.

The old name of the small profile, ``mini`` (which also named the bouncing-ball world model), still works for now
and prints a one-line notice.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from svd_lab.errors import InputError
from svd_lab.messages import t
from svd_lab.svd.configs import PROFILES
from svd_lab.svd.pipeline import SVDPipeline, resolve_device, resolve_dtype
from svd_lab.svd.versions import DECODER_TEMPORAL, DEFAULT_VERSION, get_version

#: ``version="auto"`` prefers present checkpoints in this order: the newest fine-tune first; the per-frame image
#: decoders last (they flicker more, and exist only as sgm single files)
AUTO_VERSIONS = ("svd_xt_1_1", "svd_xt", "svd", "svd_xt_image_decoder", "svd_image_decoder")
AUTO = "auto"

#: old profile names -> current ones (each still accepted, with a notice)
PROFILE_ALIASES = {"mini": "small"}


def canonical_profile(profile: str, notice=None) -> str:
    """``profile`` under its current name; an old name prints a one-line notice (to stderr by default)."""
    if profile in PROFILE_ALIASES:
        new = PROFILE_ALIASES[profile]
        message = (f"note: profile {profile!r} is now called {new!r} (the name {profile!r} is the bouncing-ball "
                   f"world model's); {profile!r} will stop working in a later release")
        (notice or (lambda m: print(m, file=sys.stderr)))(message)
        return new
    return profile


@dataclass
class ProfileChoice:
    profile: str
    reason: str
    checkpoint: str | None = None
    #: the SVD version to build or load; None only with an explicit checkpoint and no version (its files say)
    version: str | None = None

    def line(self) -> str:
        """"profile small: <why>", in the reader's language (:mod:`svd_lab.messages`)."""
        return t("profile.line", profile=self.profile, reason=self.reason)


def _small_present() -> bool:
    from svd_lab.small.model import is_present

    return is_present()


def _small_missing_message() -> str:
    from svd_lab.small.model import shipped_folder

    return (f"the small SVD's weights are not in {shipped_folder()} (they ship with the repository in "
            "checkpoints/small/: `git checkout -- checkpoints/small`), or make your own with "
            "`svd-lab small train --out DIR` and pass --checkpoint DIR")


def _find_local(version: str) -> str | None:
    from svd_lab.checkpoints import find_checkpoint

    found = find_checkpoint(version)
    return str(found.path) if found is not None else None


def _missing_checkpoint_message(version: str) -> str:
    from svd_lab.svd.loading import image_decoder_needs_checkpoint

    if not get_version(version).diffusers_format:
        return image_decoder_needs_checkpoint(version)
    return (f"no usable {version} checkpoint found: `svd-lab download {version}`, or pass --checkpoint PATH "
            "(a diffusers folder or an sgm .safetensors file)")


def _free_memory(device: torch.device) -> int | None:
    """Free bytes on a CUDA device; None elsewhere (and where CUDA is absent: a device named in a test)."""
    from svd_lab.svd.pipeline import free_vram

    return free_vram(device) if device.type == "cuda" and torch.cuda.is_available() else None


def _fits(version: str, device: torch.device) -> tuple[bool, str]:
    """Whether the memory planner expects ``version`` to sample on ``device`` (with offload and chunking if need
    be), and the free memory it judged by ('' off CUDA, where nothing is planned)."""
    from svd_lab.memory import GIB, sampling_fits

    free = _free_memory(device)
    if free is None:
        return True, ""
    spec = get_version(version)
    return sampling_fits(free, spec.num_frames, spec.height, spec.width, offload=True, forward_chunking=True), \
        f"{free / GIB:.1f} GiB free"


def _choose_auto_version(profile: str, device: torch.device) -> ProfileChoice:
    """``version="auto"`` (see the module docstring): the first usable present checkpoint, else the CPU model."""
    order = " > ".join(AUTO_VERSIONS)
    if profile in ("tiny", "small"):
        choice = choose_profile(profile, DEFAULT_VERSION, None, device)
        choice.reason += t("profile.auto_small", version=DEFAULT_VERSION, profile=profile)
        return choice
    present = {v: path for v in AUTO_VERSIONS if (path := _find_local(v)) is not None}
    if profile == "full" or device.type != "cpu":
        judged = ""
        for version, path in present.items():
            fits, judged = _fits(version, device)
            if fits:
                where = t("profile.auto_fits", judged=judged) if judged else ""
                return ProfileChoice("full", t("profile.auto_full", version=version, order=order, where=where,
                                               path=path), path, version)
        if profile == "full":
            if not present:
                raise InputError(f"{_missing_checkpoint_message(DEFAULT_VERSION)} (version auto looked for "
                                 f"{', '.join(AUTO_VERSIONS)})")
            version, path = next(iter(present.items()))
            return ProfileChoice("full", t("profile.auto_none_fit_full", version=version, judged=judged, path=path),
                                 path, version)
    choice = choose_profile(profile, DEFAULT_VERSION, None, device) if not present else None
    fallback = "small" if _small_present() else "tiny"
    what = t(f"profile.what.{fallback}")
    if choice is not None:
        choice.reason = t("profile.auto_no_local", versions=", ".join(AUTO_VERSIONS), profile=fallback, what=what)
        return choice
    names = ", ".join(present)
    if device.type == "cpu":
        reason = t("profile.found_on_cpu", names=names, profile=fallback, what=what)
    else:
        reason = t("profile.auto_none_fit", names=names, judged=judged, profile=fallback, what=what)
    return ProfileChoice(fallback, reason, None, DEFAULT_VERSION)


def choose_profile(profile: str, version: str | None, checkpoint: str | None, device: torch.device) -> ProfileChoice:
    """Decide tiny, small or full, and the version (see the module docstring); an
    :class:`~svd_lab.errors.InputError` says why not."""
    profile = canonical_profile(profile)
    if profile not in ("auto", *PROFILES):
        raise InputError(f"unknown profile {profile!r}; use auto, {', '.join(PROFILES)}")
    if version in (None, AUTO):
        if checkpoint is None:
            return _choose_auto_version(profile, device)
        version = None
    else:
        get_version(version)
    choice = _choose_profile(profile, version or DEFAULT_VERSION, checkpoint, device)
    choice.version = version if checkpoint is not None and choice.profile == "full" else version or DEFAULT_VERSION
    return choice


def _choose_profile(profile: str, version: str, checkpoint: str | None, device: torch.device) -> ProfileChoice:
    if profile in ("tiny", "small"):
        if checkpoint:
            raise InputError(f"profile {profile} uses the course's own small weights: drop --checkpoint, or use "
                             "--profile full")
        if profile == "small" and not _small_present():
            raise InputError(_small_missing_message())
        if profile == "small" and get_version(version).decoder != DECODER_TEMPORAL:
            raise InputError(f"the small SVD has a temporal VAE decoder; {version} uses the per-frame image "
                             "decoder: use --profile tiny, or a version without _image_decoder")
        return ProfileChoice(profile, t("profile.requested", profile=profile, what=t(f"profile.what.{profile}")))
    if checkpoint:
        return ProfileChoice("full", t("profile.checkpoint", path=checkpoint), str(checkpoint))
    found = _find_local(version)
    if profile == "full":
        if found is None:
            raise InputError(_missing_checkpoint_message(version))
        return ProfileChoice("full", t("profile.local", path=found), found)
    if found is not None and device.type != "cpu":
        return ProfileChoice("full", t("profile.local", path=found), found)
    fallback = "small" if _small_present() and get_version(version).decoder == DECODER_TEMPORAL else "tiny"
    what = t(f"profile.what.{fallback}")
    if found is None:
        return ProfileChoice(fallback, t("profile.no_local", version=version, profile=fallback, what=what))
    return ProfileChoice(fallback, t("profile.checkpoint_on_cpu", version=version, profile=fallback, what=what))


def load_pipeline(version: str | None = None, profile: str = "auto", checkpoint: str | None = None,
                  device: str | torch.device = "auto", dtype: str | torch.dtype | None = None, memory: str = "auto",
                  seed: int = 0, progress: bool = True, unet_head_channels: int | None = None,
                  clip_head_width: int | None = None, lora: str | os.PathLike | None = None,
                  lora_scale: float = 1.0) -> tuple[SVDPipeline, ProfileChoice]:
    """Build the pipeline for a version and profile (see :func:`choose_profile`); returns it with the choice made.

    ``version`` None or "auto": see the module docstring; with a checkpoint, the version the checkpoint holds (an
    explicit version labels a diffusers folder, e.g. svd_xt_1_1, which its configs cannot tell from svd_xt).
    ``unet_head_channels`` / ``clip_head_width``: attention head sizes of an sgm checkpoint file (see
    :func:`svd_lab.svd.loading.load_checkpoint`). ``lora``: an adapter file ``svd-lab finetune --mode lora`` wrote,
    applied at ``lora_scale`` (:func:`apply_lora`).
    """
    from svd_lab.svd.components import build_components
    from svd_lab.svd.loading import load_checkpoint

    dev = resolve_device(device)
    resolved_dtype = resolve_dtype(dtype, dev)
    choice = choose_profile(profile, version, checkpoint, dev)
    version = choice.version or DEFAULT_VERSION
    if choice.profile == "tiny":
        components = build_components("tiny", version, seed=seed)
    elif choice.profile == "small":
        from svd_lab.small.model import load_small

        components = load_small(dtype=resolved_dtype, version=version)
    else:
        # Load on the CPU in the target dtype; the pipeline places the networks (offload may keep them there).
        components = load_checkpoint(choice.checkpoint, dtype=resolved_dtype, device="cpu",
                                     version=choice.version,
                                     progress=progress, unet_head_channels=unet_head_channels,
                                     clip_head_width=clip_head_width)
    if lora is not None:
        apply_lora(components, lora, lora_scale)
    return SVDPipeline(components, device=dev, dtype=resolved_dtype, memory=memory), choice


def apply_lora(components, path: str | os.PathLike, scale: float = 1.0) -> dict:
    """Add a LoRA adapter to the components' UNet (:func:`svd_lab.finetune.lora.apply_adapter`); the adapter's
    file hash and scale join the weights' fingerprint (a batch job's identity), and a full-size model samples at the
    size the adapter was trained at."""
    import hashlib

    from svd_lab.finetune.lora import apply_adapter

    record = apply_adapter(components.unet, path, scale)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    components.fingerprint = f"{components.fingerprint or components.source} + lora {digest} x{scale:g}"
    components.source = f"{components.source} + LoRA {path}"
    if components.profile == "full" and record.get("height") and record.get("width"):
        components.trained_size = (int(record["height"]), int(record["width"]))
    return record
