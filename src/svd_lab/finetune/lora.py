r"""LoRA for SVD's UNet: low-rank updates on the attention projections (and, if asked, on convolutions), a file
anyone can read, and merging.

A LoRA layer keeps a frozen linear layer ``W`` (out x in) and learns two small matrices, ``A`` (r x in) and ``B``
(out x r), with ``r`` much smaller than in and out:

    y = W x + (alpha / r) * scale * B (A x)

On a convolution (``nn.Conv2d`` / ``nn.Conv3d``, e.g. the 3x1x1 convolutions across frames of SVD's
``temporal_res_block``) ``A`` is a convolution with the base's kernel, stride and padding and ``r`` output channels,
and ``B`` a 1x1 convolution back to the base's channels (peft's layout): ``B`` after ``A`` is again a convolution
with the base's kernel, so it merges into ``W`` exactly (``W[o, i, k] += alpha / r * sum_j B[o, j] A[j, i, k]``).

``B`` starts at zero, so a fresh adapter changes nothing (the first step is the base model's); ``A`` starts random
(Kaiming uniform, as in the LoRA paper's reference code) so that gradients reach ``B``. ``scale`` is chosen at
sampling time: 0 gives the base model back exactly, 1 the trained adapter.

diffusers 0.42 has no LoRA loader for ``UNetSpatioTemporalConditionModel`` or ``StableVideoDiffusionPipeline``, and
peft is not a dependency here, so the layers are our own. **The file** is plain safetensors in the key layout
diffusers and peft use for UNet adapters (``unet.<module path>.lora_A.weight`` (r, in) and ``...lora_B.weight``
(out, r)), with the rank, alpha and targets in the file's metadata (``svd_lab_lora`` JSON): peft's
``set_peft_model_state_dict`` reads it after stripping the ``unet.`` prefix, and any tool can merge it by hand
(``W + alpha / r * B @ A``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from svd_lab.errors import InputError

#: attention projections of diffusers' ``Attention`` (spatial and temporal transformers alike)
DEFAULT_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
#: the two convolutions across frames (kernel 3x1x1) of every ``TemporalResnetBlock``: where a UNet with little
#: attention (the small SVD has it only at 4x4 and in the middle) makes its motion
TEMPORAL_CONVS = ("temporal_res_block.conv1", "temporal_res_block.conv2")
#: the layer types an adapter can wrap
ADAPTABLE = (nn.Linear, nn.Conv2d, nn.Conv3d)
#: which attention blocks get adapters: every one, only the temporal ones (across frames), or only the spatial ones
BLOCKS = ("all", "temporal", "spatial")
KEY_PREFIX = "unet."
METADATA_KEY = "svd_lab_lora"


class LoRAError(InputError):
    """An adapter file that cannot be applied to this model: the message says why and what to do."""


@dataclass(frozen=True)
class LoRAConfig:
    rank: int = 8
    alpha: float = 8.0
    targets: tuple[str, ...] = DEFAULT_TARGETS
    blocks: str = "all"

    def __post_init__(self):
        if self.rank < 1:
            raise InputError(f"LoRA rank must be >= 1, got {self.rank}")
        if not math.isfinite(self.alpha) or self.alpha <= 0:
            raise InputError(f"LoRA alpha must be a positive number, got {self.alpha}")
        if self.blocks not in BLOCKS:
            raise InputError(f"LoRA blocks must be one of {', '.join(BLOCKS)}, got {self.blocks!r}")
        if not self.targets:
            raise InputError("LoRA needs at least one target projection (e.g. to_q,to_k,to_v,to_out.0)")


class LoRALayer(nn.Module):
    """``base(x) + alpha / rank * scale * B(A(x))`` around a frozen layer (see :class:`LoRALinear`,
    :class:`LoRAConv`)."""

    def __init__(self, base: nn.Module, rank: int, alpha: float, lora_A: nn.Module, lora_B: nn.Module):
        super().__init__()
        self.base = base
        self.rank, self.alpha, self.scale = rank, alpha, 1.0
        self.lora_A, self.lora_B = lora_A, lora_B
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)       # a new adapter is the identity: training starts from the base model

    @property
    def factor(self) -> float:
        return self.alpha / self.rank * self.scale

    @property
    def fan_in(self) -> int:
        """Numbers each of A's ``rank`` outputs reads: in_features, or in_channels x kernel taps."""
        return self.lora_A.weight[0].numel()

    @property
    def fan_out(self) -> int:
        """Outputs of the base layer (out_features or out_channels): B has ``fan_out x rank`` numbers."""
        return self.lora_B.weight.shape[0]

    def delta(self) -> torch.Tensor:
        """``B A`` as a weight of the base's shape (without the factor), in float32."""
        a, b = self.lora_A.weight.float(), self.lora_B.weight.float()
        return torch.einsum("or,ri...->oi...", b.flatten(1), a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.scale == 0:
            return out                          # exactly the base model, not base + 0 * (something)
        return out + self.factor * self.lora_B(self.lora_A(x.to(self.lora_A.weight.dtype))).to(out.dtype)


class LoRALinear(LoRALayer):
    """LoRA on an ``nn.Linear``: ``A`` (rank x in), ``B`` (out x rank)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        kw = {"bias": False, "dtype": base.weight.dtype, "device": base.weight.device}
        super().__init__(base, rank, alpha, nn.Linear(base.in_features, rank, **kw),
                         nn.Linear(rank, base.out_features, **kw))


class LoRAConv(LoRALayer):
    """LoRA on an ``nn.Conv2d`` / ``nn.Conv3d``: ``A`` a convolution like the base's with ``rank`` outputs, ``B`` a
    1x1 convolution to the base's outputs."""

    def __init__(self, base: nn.Conv2d | nn.Conv3d, rank: int, alpha: float):
        if base.groups != 1 or isinstance(base.padding, str):
            raise LoRAError(f"LoRA needs an ungrouped convolution with numeric padding, got {base}")
        conv = type(base)
        kw = {"bias": False, "dtype": base.weight.dtype, "device": base.weight.device}
        super().__init__(base, rank, alpha,
                         conv(base.in_channels, rank, base.kernel_size, base.stride, base.padding, base.dilation,
                              padding_mode=base.padding_mode, **kw),
                         conv(rank, base.out_channels, 1, **kw))


def _adapter(base: nn.Module, rank: int, alpha: float) -> LoRALayer:
    return LoRALinear(base, rank, alpha) if isinstance(base, nn.Linear) else LoRAConv(base, rank, alpha)


def _is_temporal(path: str) -> bool:
    parts = path.split(".")
    return "temporal_transformer_blocks" in parts or "temporal_res_block" in parts


def target_paths(unet: nn.Module, config: LoRAConfig) -> list[str]:
    """Dotted names of the layers that get adapters (in module order): linear layers and convolutions whose name
    ends with one of ``config.targets`` (``to_q`` matches every attention's query projection,
    ``temporal_res_block.conv1`` every such convolution), in the ``config.blocks`` asked for."""
    paths = []
    for name, module in unet.named_modules():
        if not isinstance(module, ADAPTABLE) or not any(f".{name}".endswith("." + t) for t in config.targets):
            continue
        if config.blocks == "temporal" and not _is_temporal(name):
            continue
        if config.blocks == "spatial" and _is_temporal(name):
            continue
        paths.append(name)
    return paths


def _parent(root: nn.Module, path: str) -> tuple[nn.Module, str]:
    *parents, last = path.split(".")
    module = root
    for part in parents:
        module = getattr(module, part) if not part.isdigit() else module[int(part)]
    return module, last


def _set(root: nn.Module, path: str, new: nn.Module) -> None:
    parent, last = _parent(root, path)
    if last.isdigit():
        parent[int(last)] = new
    else:
        setattr(parent, last, new)


def add_lora(unet: nn.Module, config: LoRAConfig, seed: int = 0) -> dict[str, LoRALayer]:
    """Wrap every target layer of ``unet`` in a :class:`LoRALinear` or :class:`LoRAConv` (``A`` drawn from
    ``seed``); freezes the base weights and returns the adapters by path. Raises when nothing matches
    ``config.targets``."""
    if has_lora(unet):
        raise LoRAError("this UNet already has LoRA layers: merge or remove them first")
    paths = target_paths(unet, config)
    if not paths:
        raise LoRAError(f"no linear or convolution layer named {', '.join(config.targets)} in the {config.blocks} "
                        "blocks of this UNet: check --lora-targets (diffusers names: to_q, to_k, to_v, to_out.0; "
                        "temporal_res_block.conv1, temporal_res_block.conv2)")
    unet.requires_grad_(False)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        layers = {}
        for path in paths:
            base = unet.get_submodule(path)
            layer = _adapter(base, config.rank, config.alpha)
            _set(unet, path, layer)
            layers[path] = layer
    finally:
        torch.random.set_rng_state(generator_state)
    for layer in layers.values():
        layer.lora_A.requires_grad_(True)
        layer.lora_B.requires_grad_(True)
    return layers


def lora_layers(unet: nn.Module) -> dict[str, LoRALayer]:
    return {name: m for name, m in unet.named_modules() if isinstance(m, LoRALayer)}


def has_lora(unet: nn.Module) -> bool:
    return bool(lora_layers(unet))


def set_scale(unet: nn.Module, scale: float) -> None:
    """The adapters' strength at sampling: 0 is the base model, 1 the trained adapter."""
    if not math.isfinite(scale):
        raise InputError(f"LoRA scale must be a finite number, got {scale}")
    for layer in lora_layers(unet).values():
        layer.scale = float(scale)


def adapter_state(unet: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter's tensors in the file's key layout (``unet.<path>.lora_A.weight`` / ``lora_B.weight``)."""
    state = {}
    for path, layer in lora_layers(unet).items():
        state[f"{KEY_PREFIX}{path}.lora_A.weight"] = layer.lora_A.weight.detach()
        state[f"{KEY_PREFIX}{path}.lora_B.weight"] = layer.lora_B.weight.detach()
    return state


def save_adapter(unet: nn.Module, config: LoRAConfig, path: str | os.PathLike, record: dict | None = None,
                 dtype: torch.dtype = torch.float32) -> Path:
    """Write the adapter as safetensors (atomically; an existing file is never replaced)."""
    from safetensors.torch import save

    from svd_lab.atomic import write_bytes_atomic

    tensors = {k: v.to(dtype).contiguous().cpu() for k, v in adapter_state(unet).items()}
    if not tensors:
        raise LoRAError("this UNet has no LoRA layers to save")
    meta = {"format": "svd-lab-lora/1", **asdict(config), "targets": list(config.targets), **(record or {})}
    return write_bytes_atomic(Path(path), save(tensors, metadata={METADATA_KEY: json.dumps(meta)}))


def read_adapter(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], LoRAConfig, dict]:
    """Tensors, config and the whole record of an adapter file; a clear error for anything else."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise LoRAError(f"no LoRA adapter at {path}: pass the .safetensors file `svd-lab finetune --mode lora` wrote "
                        "(DIR/lora.safetensors)")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key).clone() for key in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise LoRAError(f"{path} is not a readable safetensors file ({exc}): was it written completely?") from None
    if METADATA_KEY not in metadata:
        raise LoRAError(f"{path} has no svd-lab LoRA record (metadata '{METADATA_KEY}'): it was not written by "
                        "`svd-lab finetune --mode lora`")
    meta = json.loads(metadata[METADATA_KEY])
    config = LoRAConfig(rank=int(meta["rank"]), alpha=float(meta["alpha"]), targets=tuple(meta["targets"]),
                        blocks=meta.get("blocks", "all"))
    return tensors, config, meta


def apply_adapter(unet: nn.Module, path: str | os.PathLike, scale: float = 1.0) -> dict:
    """Add the adapter in ``path`` to ``unet`` (LoRA layers, weights loaded, ``scale`` set); returns its record.

    Every key must name a projection of this UNet with matching shapes: an adapter trained on another model (the
    tiny SVD's on svd_xt, say) is refused before anything changes.
    """
    tensors, config, meta = read_adapter(path)
    paths = target_paths(unet, config)
    expected = {f"{KEY_PREFIX}{p}.lora_{ab}.weight" for p in paths for ab in "AB"}
    if set(tensors) != expected:
        missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise LoRAError(f"{path} does not fit this UNet ({len(missing)} projections without weights, {len(extra)} "
                        f"weights for layers it lacks, e.g. {(missing or extra)[0]}): it was trained on another model "
                        f"({meta.get('base', 'unknown')})")
    for p in paths:
        base = unet.get_submodule(p)
        a, b = tensors[f"{KEY_PREFIX}{p}.lora_A.weight"], tensors[f"{KEY_PREFIX}{p}.lora_B.weight"]
        taps = tuple(base.weight.shape[2:])                      # () for a linear layer, the kernel for a conv
        want_a = (config.rank, base.weight.shape[1], *taps)
        want_b = (base.weight.shape[0], config.rank, *(1 for _ in taps))
        if tuple(a.shape) != want_a or tuple(b.shape) != want_b:
            raise LoRAError(f"{path}: {p} has shapes {tuple(a.shape)}/{tuple(b.shape)}, this UNet needs "
                            f"{want_a}/{want_b}: it was trained on another model ({meta.get('base', 'unknown')})")
    layers = add_lora(unet, config)
    with torch.no_grad():
        for p, layer in layers.items():
            layer.lora_A.weight.copy_(tensors[f"{KEY_PREFIX}{p}.lora_A.weight"])
            layer.lora_B.weight.copy_(tensors[f"{KEY_PREFIX}{p}.lora_B.weight"])
            layer.requires_grad_(False)
    set_scale(unet, scale)
    return meta


def merge_lora(unet: nn.Module) -> int:
    """Fold every adapter into its base weight (``W += alpha / r * scale * B @ A``) and remove the LoRA layers, so
    the UNet saves as a plain diffusers folder; returns the number of layers merged."""
    layers = lora_layers(unet)
    with torch.no_grad():
        for path, layer in layers.items():
            layer.base.weight += (layer.factor * layer.delta()).to(layer.base.weight.dtype)
            _set(unet, path, layer.base)
    return len(layers)
