r"""Load an sgm SVD file into diffusers' UNet and VAE and transformers' CLIP vision model, tensor by tensor.

How a load runs (peak memory ~ model size in the target dtype + the largest tensor, never the file size):

1. read the header only (names, shapes, dtypes: no tensor data) and plan the conversion
   (:func:`svd_lab.convert.sgm_plan.plan_conversion`);
2. build the modules from the plan's configs on the ``meta`` device (no memory);
3. check every shape of the plan against the modules *before* anything is copied;
4. read the file tensor by tensor with ``safe_open`` (``pread`` backend: no memory map that would count the
   whole file in the resident set) and put each tensor, transformed and converted to the target dtype and device,
   into its module.

Numerics (checked against sgm's own outputs in tests/test_sgm_equivalence.py): sgm normalises every UNet
ResBlock with GroupNorm eps 1e-5 where diffusers' spatio-temporal down/up blocks use 1e-6;
:func:`match_sgm_groupnorm_eps` sets sgm's value (max |diff| on the tiny UNet 2.9e-5 -> 6.9e-7).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from svd_lab.convert.sgm_config import SGM_UNET_GROUPNORM_EPS
from svd_lab.convert.sgm_keys import detect_decoder_kind
from svd_lab.convert.sgm_plan import ConversionPlan, TensorSource, detect_version, plan_conversion, preview
from svd_lab.errors import SgmCheckpointError
from svd_lab.svd.components import SVDComponents
from svd_lab.svd.versions import VERSIONS

#: dtypes the modules can be loaded in (the file's own dtype does not matter)
LOAD_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


# --------------------------------------------------------------------------------------------- the file
def read_header(path: str | os.PathLike) -> tuple[dict[str, tuple[int, ...]], dict[str, str], dict[str, str]]:
    """(key -> shape, key -> dtype name, metadata) of a safetensors file, reading the header only."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise SgmCheckpointError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            shapes, dtypes = {}, {}
            for key in f.keys():  # noqa: SIM118 (safe_open is not iterable)
                view = f.get_slice(key)
                shapes[key] = tuple(view.get_shape())
                dtypes[key] = str(view.get_dtype())
            metadata = dict(f.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise SgmCheckpointError(f"{path}: not a readable safetensors file ({exc}); "
                                 "is the download complete? (svd-lab models shows its state)") from None
    return shapes, dtypes, metadata


class _TensorReader:
    """Reads tensors one at a time with ``safe_open``.

    With safetensors >= 0.8 the ``pread`` backend copies each tensor out of the file without a memory map, so
    resident memory is the model plus one tensor. Older versions memory-map the file; pages touched there count
    in the resident set until the file is closed, so the reader reopens the file every ``reopen_bytes``.
    """

    reopen_bytes = 512 * 2**20  # memory-mapped fallback only: bytes read before the file is reopened

    def __init__(self, path: Path):
        self.path = path
        self._handle, self._since_open, self._pread = None, 0, True

    def _open(self):
        from safetensors import safe_open

        if self._pread:
            try:
                return safe_open(str(self.path), framework="pt", backend="pread")
            except TypeError:  # safetensors < 0.8: no backend argument
                self._pread = False
        return safe_open(str(self.path), framework="pt")

    def get(self, key: str) -> torch.Tensor:
        if self._handle is None:
            self._handle, self._since_open = self._open(), 0
        tensor = self._handle.get_tensor(key)
        self._since_open += tensor.numel() * tensor.element_size()
        if not self._pread and self._since_open >= self.reopen_bytes:
            self.close()
        return tensor

    def close(self) -> None:
        self._handle = None  # safe_open objects release the file (and any mapping) when collected

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------------------------- modules
def build_empty_modules(plan: ConversionPlan) -> dict[str, nn.Module]:
    """The three target modules on the ``meta`` device (shapes only, no memory), built from ``plan.configs``."""
    import diffusers
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    with torch.device("meta"):
        unet = diffusers.UNetSpatioTemporalConditionModel(**plan.configs["unet"])
        vae = getattr(diffusers, plan.vae_class_name)(**plan.configs["vae"])
        image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**plan.configs["image_encoder"]))
    return {"unet": unet, "vae": vae, "image_encoder": image_encoder}


def check_plan_against_modules(plan: ConversionPlan, modules: Mapping[str, nn.Module]) -> None:
    """Strictness: every module tensor is filled by the file, no file tensor lands nowhere, all shapes agree.

    Raises SgmCheckpointError listing the missing, unexpected and mismatched keys (per component).
    """
    problems = []
    for comp, module in modules.items():
        want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        have = plan.target_shapes(comp)
        missing = sorted(set(want) - set(have))
        unexpected = sorted(set(have) - set(want))
        mismatched = [f"{k}: file {have[k]} ({plan.targets[comp][k].key}) vs module {want[k]}"
                      for k in sorted(set(want) & set(have)) if tuple(have[k]) != tuple(want[k])]
        if missing:
            problems.append(f"{comp}: {len(missing)} tensor(s) not in the file: {preview(missing)}")
        if unexpected:
            problems.append(f"{comp}: {len(unexpected)} converted tensor(s) the module does not have: "
                            f"{preview([f'{k} <- {plan.targets[comp][k].key}' for k in unexpected])}")
        if mismatched:
            problems.append(f"{comp}: {len(mismatched)} shape mismatch(es): {preview(mismatched, 6)}")
    if problems:
        raise SgmCheckpointError("the checkpoint does not fit the modules built from its own shapes -- "
                                 + "; ".join(problems))


def match_sgm_groupnorm_eps(unet: nn.Module, eps: float = SGM_UNET_GROUPNORM_EPS) -> int:
    """Give every GroupNorm inside the UNet's resnets sgm's eps (1e-5); returns how many were changed.

    sgm builds all VideoUNet ResBlocks (spatial and ``time_stack``) with ``GroupNorm32(32, C)`` (eps 1e-5) and the
    transformers' input norms with eps 1e-6. diffusers uses 1e-6 in the resnets of CrossAttnDownBlockSpatioTemporal,
    UpBlockSpatioTemporal and CrossAttnUpBlockSpatioTemporal. Only those resnet norms are touched.
    """
    changed = 0
    for name, module in unet.named_modules():
        if isinstance(module, nn.GroupNorm) and ".resnets." in f".{name}" and module.eps != eps:
            module.eps = eps
            changed += 1
    return changed


def _set_tensor(module: nn.Module, name: str, value: torch.Tensor) -> None:
    """Replace parameter or buffer ``name`` (dotted) of ``module`` with ``value`` (kept as a frozen Parameter)."""
    owner_name, _, attr = name.rpartition(".")
    owner = module.get_submodule(owner_name) if owner_name else module
    if attr in owner._parameters:
        owner._parameters[attr] = nn.Parameter(value, requires_grad=False)
    elif attr in owner._buffers:
        owner._buffers[attr] = value
    else:  # a bug, not a user error: check_plan_against_modules has matched every name to the module
        raise RuntimeError(f"{name}: neither a parameter nor a buffer of {type(module).__name__}")


def _finish_non_persistent(modules: Mapping[str, nn.Module], device: torch.device) -> None:
    """Buffers not saved in any state dict: rebuild them (they are still on meta)."""
    emb = modules["image_encoder"].vision_model.embeddings
    if getattr(emb, "position_ids", None) is not None and emb.position_ids.is_meta:
        emb.register_buffer("position_ids", torch.arange(emb.num_positions, device=device).expand((1, -1)),
                            persistent=False)
    for comp, module in modules.items():
        left = [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.is_meta]
        if left:
            raise RuntimeError(f"{comp}: tensors left without values after loading: {preview(left)}")


def fill_modules(
    path: str | os.PathLike,
    plan: ConversionPlan,
    modules: Mapping[str, nn.Module],
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> None:
    """Read the file tensor by tensor into the (meta) modules, converting to ``dtype`` on ``device``.

    Each file tensor is read once (a packed qkv tensor feeds its three targets), transformed, converted, placed,
    and dropped; every placed tensor has its own (aligned) storage.
    """
    from svd_lab.progress import progress_bar

    device = torch.device(device)
    by_source: dict[str, list[tuple[str, str, TensorSource]]] = {}
    for comp, targets in plan.targets.items():
        for name, src in targets.items():
            by_source.setdefault(src.key, []).append((comp, name, src))
    # File order = on-disk order: sequential reads.
    order = [k for k in plan.source_shapes if k in by_source]
    with _TensorReader(Path(path)) as reader, progress_bar(total=len(order), desc="loading sgm checkpoint",
                                                           unit="tensor", enabled=progress) as bar:
        for key in order:
            raw = reader.get(key)
            for comp, name, src in by_source[key]:
                value = src.apply(raw).to(device=device, dtype=dtype).contiguous()
                if value.untyped_storage().data_ptr() == raw.untyped_storage().data_ptr():
                    # Still a view of the file buffer (no dtype/device change; q/k/v are slices of one packed
                    # tensor): copy into a fresh allocation -- its own memory, 64-byte aligned like any torch
                    # tensor, so CPU kernels take the same SIMD paths as for weights built in memory.
                    value = value.clone()
                _set_tensor(modules[comp], name, value)
            del raw
            bar.update()
    _finish_non_persistent(modules, device)


# --------------------------------------------------------------------------------------------- public API
@dataclass
class SgmModules:
    """The converted modules plus what was decided about the file."""

    unet: nn.Module
    vae: nn.Module
    image_encoder: nn.Module
    plan: ConversionPlan
    version: str
    version_source: str  # how the version was decided: "argument", "registry file name", "file name", "default"

    @property
    def decoder_kind(self) -> str:
        return self.plan.decoder_kind


def check_sgm_file(path: str | os.PathLike, version: str | None = None, unet_head_channels: int | None = None,
                   clip_head_width: int | None = None) -> tuple[ConversionPlan, dict[str, nn.Module], str, str]:
    """Everything about an sgm file that its header tells, before any tensor is read: that it is an SVD checkpoint
    whose tensors fit the networks built from its own shapes (:class:`SgmCheckpointError` otherwise), its plan, the
    empty (meta) modules, its version and how the version was decided. Cheap: used to refuse a wrong file before
    asking a user to wait."""
    path = Path(path)
    shapes, dtypes, _ = read_header(path)
    try:
        kind = detect_decoder_kind(shapes)
    except SgmCheckpointError as exc:
        raise SgmCheckpointError(f"{path} is a safetensors file but not an SVD checkpoint ({exc}); pass a "
                                 "diffusers folder or Stability's svd*.safetensors (`svd-lab models`)") from None
    version, how = detect_version(path, kind, version)
    plan = plan_conversion(shapes, unet_head_channels, clip_head_width, VERSIONS[version].num_frames, dtypes)
    modules = build_empty_modules(plan)
    check_plan_against_modules(plan, modules)  # before any tensor data is read
    return plan, modules, version, how


def load_sgm_modules(
    path: str | os.PathLike,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    version: str | None = None,
    unet_head_channels: int | None = None,
    clip_head_width: int | None = None,
    sgm_groupnorm_eps: bool = True,
    progress: bool = True,
) -> SgmModules:
    """Read an sgm SVD file into diffusers' UNet, VAE and transformers' CLIP vision model (eval mode, frozen).

    Args:
        path: the ``.safetensors`` file (``svd.safetensors``, ``svd_xt.safetensors``, ``*_image_decoder``...).
        dtype: dtype of the modules (float32, float16, bfloat16); the file's own dtype does not matter.
        device: where the tensors go (``cpu``, ``cuda``...): each tensor is moved as it is read.
        version: ``svd`` / ``svd_xt`` / ... when the file name does not say (see
            :func:`svd_lab.convert.sgm_plan.detect_version`).
        unet_head_channels, clip_head_width: channels per attention head when not Stability's 64 (see
            :func:`svd_lab.convert.sgm_plan.plan_conversion`).
        sgm_groupnorm_eps: give the UNet sgm's GroupNorm eps (see :func:`match_sgm_groupnorm_eps`).
        progress: tqdm progress bar.
    """
    if dtype not in LOAD_DTYPES:
        raise SgmCheckpointError(f"dtype must be float32, float16 or bfloat16, got {dtype}")
    path = Path(path)
    plan, modules, version, how = check_sgm_file(path, version, unet_head_channels, clip_head_width)
    fill_modules(path, plan, modules, dtype=dtype, device=device, progress=progress)
    if sgm_groupnorm_eps:
        match_sgm_groupnorm_eps(modules["unet"])
    for module in modules.values():
        module.eval()
    return SgmModules(modules["unet"], modules["vae"], modules["image_encoder"], plan, version, how)


def to_components(loaded: SgmModules, source: str = "") -> SVDComponents:
    """Wrap converted modules as the pipeline's ``SVDComponents`` (version, decoder kind, profile set)."""
    return SVDComponents(
        unet=loaded.unet, vae=loaded.vae, image_encoder=loaded.image_encoder, version=loaded.version,
        decoder=loaded.decoder_kind, profile=loaded.plan.profile,
        source=source or f"sgm checkpoint (version {loaded.version}: {loaded.version_source})")


def load_sgm_checkpoint(
    path: str | os.PathLike,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    version: str | None = None,
    progress: bool = True,
    **options: Any,
) -> SVDComponents:
    """Load an sgm single-file SVD checkpoint as the pipeline's :class:`svd_lab.svd.components.SVDComponents`.

    ``options`` go to :func:`load_sgm_modules` (``unet_head_channels``, ``clip_head_width``, ``sgm_groupnorm_eps``).
    """
    from svd_lab.svd.layout import files_fingerprint

    loaded = load_sgm_modules(path, dtype=dtype, device=device, version=version, progress=progress, **options)
    components = to_components(loaded, source=f"{path} (sgm, version {loaded.version}: {loaded.version_source})")
    components.fingerprint = files_fingerprint([Path(path)])
    return components
