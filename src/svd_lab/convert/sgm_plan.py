r"""Everything decided about an sgm SVD file from its header, before any tensor data is read (no torch).

:func:`plan_conversion` turns key -> shape into a :class:`ConversionPlan`: the decoder kind, the three networks'
configs (:mod:`svd_lab.convert.sgm_config`), and for every module tensor the file tensor it comes from and the
:class:`~svd_lab.convert.sgm_keys.Transform` on the way (:mod:`svd_lab.convert.sgm_keys`). Every file tensor is
converted or on the documented ignore list; anything else is an error that names it. :func:`detect_version` decides
the SVD version (frames, sampling defaults), which the keys alone cannot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svd_lab.convert.sgm_config import infer_configs
from svd_lab.convert.sgm_keys import IMAGE, TEMPORAL, Transform, ignored_reason, key_layout, targets_of
from svd_lab.errors import SgmCheckpointError, UnknownNameError
from svd_lab.svd.versions import VERSIONS


class UnknownSgmVersionError(SgmCheckpointError, UnknownNameError):
    """A version name that is not in :data:`svd_lab.svd.versions.VERSIONS` (both errors: either ``except`` works)."""


@dataclass(frozen=True)
class TensorSource:
    """Where one diffusers tensor comes from: an sgm key and the :class:`Transform` on the way.

    ``transform`` may be given by name (``TensorSource(key, "squeeze_1x1")``); it is stored as the enum member.
    """

    key: str
    transform: Transform = Transform.COPY

    def __post_init__(self):
        object.__setattr__(self, "transform", Transform(self.transform))  # frozen: set once, here

    def output_shape(self, shape: Iterable[int]) -> tuple[int, ...] | None:
        """The shape after the transform, or None when the source shape does not allow it."""
        return self.transform.output_shape(shape)

    def apply(self, tensor):
        """The module tensor made from the file tensor ``tensor`` (see :class:`Transform`)."""
        return self.transform.apply(tensor)


@dataclass
class ConversionPlan:
    """Everything decided from the file header, before any tensor data is read.

    Attributes:
        decoder_kind: ``"temporal"`` (VideoDecoder -> AutoencoderKLTemporalDecoder) or ``"image"`` (per-frame
            2D decoder -> AutoencoderKL), detected from the keys.
        configs: diffusers/transformers constructor arguments per component (``unet``, ``vae``, ``image_encoder``).
        targets: per component, diffusers key -> :class:`TensorSource`.
        ignored: sgm key -> reason, for the file's tensors on the :data:`~svd_lab.convert.sgm_keys.IGNORED` list.
        source_shapes: every tensor of the file, key -> shape (in file order).
        profile: the svd-lab profile (``svd_lab.svd.configs.CONFIGS``) with these shapes: ``full`` for Stability's
            releases, ``tiny`` for the course's test model; ``full`` for unregistered sizes too.
        source_dtypes: key -> the file's dtype name (``F32``, ``F16``...), when known.
    """

    decoder_kind: str
    configs: dict[str, dict[str, Any]]
    targets: dict[str, dict[str, TensorSource]]
    ignored: dict[str, str]
    source_shapes: dict[str, tuple[int, ...]]
    profile: str = "full"
    source_dtypes: dict[str, str] = field(default_factory=dict)

    @property
    def vae_class_name(self) -> str:
        return "AutoencoderKLTemporalDecoder" if self.decoder_kind == TEMPORAL else "AutoencoderKL"

    def target_shapes(self, component: str) -> dict[str, tuple[int, ...]]:
        """diffusers key -> shape the file provides (after the transform)."""
        return {k: src.output_shape(self.source_shapes[src.key]) for k, src in self.targets[component].items()}

    def used_keys(self) -> set[str]:
        return {src.key for comp in self.targets.values() for src in comp.values()}

    def summary(self) -> str:
        return (f"sgm SVD checkpoint, {self.decoder_kind} decoder: {len(self.source_shapes)} tensors, "
                f"{len(self.used_keys())} used, {len(self.ignored)} ignored (unused by inference)")


def preview(items: list[str], limit: int = 12) -> str:
    """The first ``limit`` items, comma-separated, and how many more there are (for error messages)."""
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def plan_conversion(
    shapes: Mapping[str, Iterable[int]],
    unet_head_channels: int | None = None,
    clip_head_width: int | None = None,
    num_frames: int = 14,
    dtypes: Mapping[str, str] | None = None,
) -> ConversionPlan:
    """Map every tensor of an sgm SVD state dict (given as key -> shape) onto diffusers/transformers keys.

    Works on headers only (no data), so it runs on the full-size key lists in milliseconds.

    Args:
        shapes: sgm key -> shape, e.g. from :func:`svd_lab.convert.sgm_load.read_header` or the fixtures'
            ``keys_svd.json``.
        unet_head_channels, clip_head_width: attention head sizes in channels per head (not stored in the weights).
            None: the sizes of a registered svd-lab configuration with the same shapes (the course's tiny model),
            else Stability's 64.
        num_frames: written into the UNet config (diffusers' ``num_frames``; 14 for svd, 25 for svd_xt).
        dtypes: key -> the file's dtype name, kept on the plan.

    Raises:
        SgmCheckpointError: unknown keys (every one named), missing required tensors, an unsupported layout, a head
            size that does not divide the channels, or a transform that does not fit a shape.
        InputError: a head size that is not a positive integer.
    """
    shapes = {k: tuple(int(d) for d in v) for k, v in shapes.items()}
    layout = key_layout(shapes)
    configs, profile = infer_configs(shapes, layout.decoder_kind, num_frames, unet_head_channels, clip_head_width)
    targets: dict[str, dict[str, TensorSource]] = {"unet": {}, "vae": {}, "image_encoder": {}}
    ignored: dict[str, str] = {}
    unknown: list[str] = []
    for key in shapes:
        reason = ignored_reason(key)
        if reason is not None:
            ignored[key] = reason
            continue
        found = targets_of(key, layout)
        if not found:
            unknown.append(key)
        for component, name, transform in found:
            if name in targets[component]:  # a mapping bug, never a property of the file
                raise SgmCheckpointError(f"two tensors map onto {component}.{name}: "
                                         f"{targets[component][name].key} and {key}")
            targets[component][name] = TensorSource(key, transform)
    if unknown:
        raise SgmCheckpointError(f"{len(unknown)} tensor(s) of the file are neither converted nor on the documented "
                                 f"ignore list: {preview(unknown)}")
    bad = [f"{comp}.{k} <- {src.key} {shapes[src.key]} ({src.transform.value})"
           for comp in targets for k, src in targets[comp].items() if src.output_shape(shapes[src.key]) is None]
    if bad:
        raise SgmCheckpointError(f"tensor shapes that do not fit their conversion: {preview(bad)}")
    return ConversionPlan(layout.decoder_kind, configs, targets, ignored, shapes, profile, dict(dtypes or {}))


def detect_version(path: str | Path, decoder_kind: str, version: str | None = None) -> tuple[str, str]:
    """(version, how it was decided) for an sgm file whose keys hold a ``decoder_kind`` decoder.

    The decoder kind comes from the keys. svd, svd_xt and svd_xt_1_1 have identical keys and shapes -- only the
    trained weights differ -- so the frame count and sampling defaults follow from, in order: an explicit
    ``version``; the checkpoints registry entry whose sgm file name this is; ``xt`` in the file name; else
    ``svd``. A name-derived guess is corrected to the keys' decoder kind (a renamed image-decoder file is still
    one); an explicit version that contradicts the keys is an error.

    Raises:
        UnknownSgmVersionError: ``version`` is not a known version name (an SgmCheckpointError and a KeyError).
        SgmCheckpointError: ``version`` uses the other decoder kind.
    """
    # Imported here: the checkpoints package scans folders and reads the hub registry, which planning from a
    # header (the rest of this module) never needs.
    from svd_lab.checkpoints.registry import spec_for_sgm_file

    name = Path(path).name
    if version is not None:
        if version not in VERSIONS:
            raise UnknownSgmVersionError(f"unknown SVD version {version!r}; known: {', '.join(VERSIONS)}")
        if VERSIONS[version].decoder != decoder_kind:
            raise SgmCheckpointError(
                f"{name}: version {version!r} uses the {VERSIONS[version].decoder} decoder, but the file's keys hold "
                f"the {decoder_kind} decoder; choose one of "
                f"{', '.join(v for v, spec in VERSIONS.items() if spec.decoder == decoder_kind)}")
        return version, "argument"
    spec = spec_for_sgm_file(name)
    if spec is not None and spec.version in VERSIONS:
        guess, how = spec.version, "registry file name"
    elif re.search(r"(^|[^a-z])xt([^a-z]|$)", name.lower()):
        guess, how = "svd_xt", "file name"
    else:
        guess, how = "svd", "default"
    if VERSIONS[guess].decoder != decoder_kind:
        family = "svd_xt" if guess.startswith("svd_xt") else "svd"
        guess = family + ("_image_decoder" if decoder_kind == IMAGE else "")
        how += ", decoder from the keys"
    return guess, how
