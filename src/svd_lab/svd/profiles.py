"""Which networks to sample with: the profile (tiny, small, full), the checkpoint it needs, and the loaded pipeline.

- ``tiny``: SVD's networks at a tiny size with random weights (CI's equivalence tests; only the machinery is real);
- ``small``: the small SVD the project trains and ships (``checkpoints/small/``, :mod:`svd_lab.small`): seconds on
  a CPU, at the frame size and frame count it was trained at;
- ``full``: a real checkpoint (a downloaded diffusers folder or an sgm single file);
- ``auto``: an explicit checkpoint -> full; a usable local checkpoint on a GPU -> full; otherwise small when its
  weights are present, else tiny. Full-size SVD on a CPU takes hours: ask for it with ``profile="full"``.

The old name of the small profile, ``mini`` (which also named the bouncing-ball world model), still works for now
and prints a one-line notice.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch

from svd_lab.errors import InputError
from svd_lab.svd.configs import PROFILES
from svd_lab.svd.pipeline import SVDPipeline, resolve_device, resolve_dtype
from svd_lab.svd.versions import DECODER_TEMPORAL, DEFAULT_VERSION, get_version

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


def choose_profile(profile: str, version: str, checkpoint: str | None, device: torch.device) -> ProfileChoice:
    """Decide tiny, small or full (see the module docstring); an :class:`~svd_lab.errors.InputError` says why not."""
    profile = canonical_profile(profile)
    if profile not in ("auto", *PROFILES):
        raise InputError(f"unknown profile {profile!r}; use auto, {', '.join(PROFILES)}")
    if profile in ("tiny", "small"):
        if checkpoint:
            raise InputError(f"profile {profile} uses the course's own small weights: drop --checkpoint, or use "
                             "--profile full")
        if profile == "small" and not _small_present():
            raise InputError(_small_missing_message())
        if profile == "small" and get_version(version).decoder != DECODER_TEMPORAL:
            raise InputError(f"the small SVD has a temporal VAE decoder; {version} uses the per-frame image "
                             "decoder: use --profile tiny, or a version without _image_decoder")
        what = "random weights" if profile == "tiny" else "the small SVD trained by svd-lab"
        return ProfileChoice(profile, f"{profile} profile requested ({what})")
    if checkpoint:
        return ProfileChoice("full", f"checkpoint {checkpoint}", str(checkpoint))
    found = _find_local(version)
    if profile == "full":
        if found is None:
            raise InputError(_missing_checkpoint_message(version))
        return ProfileChoice("full", f"local checkpoint {found}", found)
    if found is not None and device.type != "cpu":
        return ProfileChoice("full", f"local checkpoint {found}", found)
    fallback = "small" if _small_present() and get_version(version).decoder == DECODER_TEMPORAL else "tiny"
    what = "the small SVD trained by svd-lab" if fallback == "small" else "random weights"
    if found is None:
        return ProfileChoice(fallback, f"no local {version} checkpoint: running the {fallback} profile ({what}); "
                                       f"`svd-lab download {version}` for the real model")
    return ProfileChoice(fallback, f"{version} checkpoint found, but this is a CPU: running the {fallback} profile "
                                   f"({what}; full size takes hours here; ask for it with --profile full --yes)")


def load_pipeline(version: str | None = None, profile: str = "auto", checkpoint: str | None = None,
                  device: str | torch.device = "auto", dtype: str | torch.dtype | None = None, memory: str = "auto",
                  seed: int = 0, progress: bool = True, unet_head_channels: int | None = None,
                  clip_head_width: int | None = None) -> tuple[SVDPipeline, ProfileChoice]:
    """Build the pipeline for a version and profile (see :func:`choose_profile`); returns it with the choice made.

    ``version`` None means 'svd', or with a checkpoint the version the checkpoint holds (an explicit version labels
    a diffusers folder, e.g. svd_xt_1_1, which its configs cannot tell from svd_xt). ``unet_head_channels`` /
    ``clip_head_width``: attention head sizes of an sgm checkpoint file (see
    :func:`svd_lab.svd.loading.load_checkpoint`).
    """
    from svd_lab.svd.components import build_components
    from svd_lab.svd.loading import load_checkpoint

    requested_version = version
    version = version or DEFAULT_VERSION
    get_version(version)
    dev = resolve_device(device)
    resolved_dtype = resolve_dtype(dtype, dev)
    choice = choose_profile(profile, version, checkpoint, dev)
    if choice.profile == "tiny":
        components = build_components("tiny", version, seed=seed)
    elif choice.profile == "small":
        from svd_lab.small.model import load_small

        components = load_small(dtype=resolved_dtype, version=version)
    else:
        # Load on the CPU in the target dtype; the pipeline places the networks (offload may keep them there).
        components = load_checkpoint(choice.checkpoint, dtype=resolved_dtype, device="cpu",
                                     version=version if checkpoint is None else requested_version,
                                     progress=progress, unet_head_channels=unet_head_channels,
                                     clip_head_width=clip_head_width)
    return SVDPipeline(components, device=dev, dtype=resolved_dtype, memory=memory), choice
