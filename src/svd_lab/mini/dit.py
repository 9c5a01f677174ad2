r"""A video diffusion transformer (DiT, Peebles & Xie 2023) with spacetime patches, as Sora describes.

A video ``x`` of shape (B, T, C, H, W) is cut into non-overlapping spacetime patches of ``pt x p x p`` (frames x
rows x columns); each patch is flattened and linearly projected to a token of width ``hidden``. With
``N = (T/pt)(H/p)(W/p)`` tokens, fixed 3-D sine-cosine position embeddings tell the transformer where each patch
sits in space and time. ``depth`` DiT blocks follow, then a final layer projects each token back to its patch and
the patches are stitched back into a video (unpatchify). An image is a one-frame video (T = pt = 1): with image
configs this class *is* the DiT paper's DiT-S/B/L/XL with patch 2/4/8 (:func:`dit_paper_config`).

Conditioning, as SVD does it:

* **first frame** (image-to-video): the clean first-frame latent is concatenated to every frame along channels
  (``cond["first_frame"]``, (B, 1, C, H, W) or (B, T, C, H, W)), so each token sees the patch it starts from;
* **motion micro-condition** (the analogue of SVD's ``motion_bucket_id``): a class label (``cond["labels"]``, (B,)
  int64: the speed bucket for the mini model, the ImageNet class for the paper's models), embedded and added to the
  timestep embedding ``c``. Label ``num_classes`` is the "null" label used for classifier-free guidance;
* **noise level**: ``c_noise`` (EDM: ``ln(sigma)/4``) through a sinusoidal embedding and an MLP.

adaLN-Zero (the paper's best block, FID 19.5 vs 25.2 for adaLN and 26.1 for cross-attention): each block's
LayerNorms have no learned affine; instead an MLP of ``c`` regresses, per block, a shift ``beta``, scale
``gamma`` and gate ``alpha`` for the attention and the MLP branch::

    x = x + alpha_1 * Attention(LN(x) * (1 + gamma_1) + beta_1)
    x = x + alpha_2 * MLP(LN(x) * (1 + gamma_2) + beta_2)

The regression layer is initialised to **zero**, so at initialisation every ``alpha`` is 0 and every block is the
identity function: the network starts as a shallow model (patch embedding -> final layer) and each block learns how
much to contribute. The final layer's projection is zero too, so an untrained model outputs exactly 0 (with EDM's
preconditioning: the denoiser starts as ``c_skip * x``, a sensible shrinkage).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class DiTConfig:
    """Shapes of a (video) DiT.

    ``in_channels`` is the per-frame channel count of x; ``cond_channels`` the channels of the first-frame
    condition concatenated to it (0 = none); ``out_channels`` the channels of the output (8 in the DiT paper:
    noise and learned variance for 4 latent channels).
    """

    frames: int = 8
    height: int = 8
    width: int = 8
    in_channels: int = 4
    cond_channels: int = 4
    out_channels: int = 4
    #: defaults are the shipped mini world model's: one-frame spacetime patches of 4x4 latent pixels -> 32 tokens
    #: for 8 frames of 8x8 (in equal-time trials one-frame patches beat two-frame patches, presence 92% vs 85%)
    patch_t: int = 1
    patch: int = 4
    hidden: int = 192
    depth: int = 6
    heads: int = 6
    mlp_ratio: float = 4.0
    num_classes: int = 8
    #: probability of replacing the label with the null label in training (classifier-free guidance)
    class_dropout: float = 0.1
    #: how labels become vectors: "table" (a learned row per class, the DiT paper's ImageNet classes) or "sincos"
    #: (the label *value* through a sinusoidal embedding and an MLP, as SVD embeds motion_bucket_id: neighbouring
    #: buckets start out similar, which suits an ordered micro-condition such as speed)
    label_embedding: str = "sincos"

    def __post_init__(self):
        if self.frames % self.patch_t or self.height % self.patch or self.width % self.patch:
            raise ValueError(
                f"frames/height/width ({self.frames}, {self.height}, {self.width}) must be multiples of the patch "
                f"({self.patch_t}, {self.patch}, {self.patch})"
            )
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        if self.label_embedding not in LABEL_EMBEDDERS:
            raise ValueError(f"label_embedding must be one of {sorted(LABEL_EMBEDDERS)}, got {self.label_embedding!r}")

    @property
    def grid(self) -> tuple[int, int, int]:
        """Token grid (T/pt, H/p, W/p)."""
        return self.frames // self.patch_t, self.height // self.patch, self.width // self.patch

    @property
    def num_tokens(self) -> int:
        t, h, w = self.grid
        return t * h * w

    def to_dict(self) -> dict:
        return asdict(self)


# DiT paper, Table 1: (layers, hidden, heads)
DIT_SIZES = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}


def dit_paper_config(name: str, image_size: int = 256) -> DiTConfig:
    """The DiT paper's image models, e.g. ``"XL/2"``: a one-frame video of the SD VAE latent (4 x size/8 x size/8),
    1000 ImageNet classes, 8 output channels (learned sigma), no first-frame condition."""
    try:
        size, patch = name.split("/")
        depth, hidden, heads = DIT_SIZES[size]
        patch = int(patch)
    except (ValueError, KeyError):
        raise ValueError(f"unknown DiT model {name!r}: use one of S/B/L/XL with patch 2/4/8, e.g. 'XL/2'") from None
    latent = image_size // 8
    return DiTConfig(frames=1, height=latent, width=latent, in_channels=4, cond_channels=0, out_channels=8,
                     patch_t=1, patch=patch, hidden=hidden, depth=depth, heads=heads, num_classes=1000,
                     label_embedding="table")


# ----------------------------------------------------------------------------------------------- patches
def patchify(x: torch.Tensor, patch_t: int, patch: int) -> torch.Tensor:
    """(B, T, C, H, W) -> tokens (B, N, pt*p*p*C), N = (T/pt)(H/p)(W/p), ordered time-major then row, column.

    Inside a token the values are ordered (dt, dy, dx, c).
    """
    b, t, c, h, w = x.shape
    x = x.reshape(b, t // patch_t, patch_t, c, h // patch, patch, w // patch, patch)
    x = x.permute(0, 1, 4, 6, 2, 5, 7, 3)  # b, T', H', W', pt, p, p, c
    return x.reshape(b, (t // patch_t) * (h // patch) * (w // patch), patch_t * patch * patch * c)


def unpatchify(tokens: torch.Tensor, grid: tuple[int, int, int], patch_t: int, patch: int) -> torch.Tensor:
    """Inverse of :func:`patchify`: (B, N, pt*p*p*C) -> (B, T, C, H, W) for a token grid (T', H', W')."""
    b, _, d = tokens.shape
    gt, gh, gw = grid
    c = d // (patch_t * patch * patch)
    x = tokens.reshape(b, gt, gh, gw, patch_t, patch, patch, c)
    x = x.permute(0, 1, 4, 7, 2, 5, 3, 6)  # b, T', pt, c, H', p, W', p
    return x.reshape(b, gt * patch_t, c, gh * patch, gw * patch)


def sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """Transformer sine-cosine embedding: (N,) positions -> (N, dim), frequencies 1 / 10000^(2i/dim)."""
    freqs = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim // 2))
    angles = positions.double()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def sincos_3d(dim: int, grid: tuple[int, int, int]) -> torch.Tensor:
    """Fixed spacetime position embedding (N, dim): width split between time, rows and columns (each even),
    any remainder is zero. With one frame the time part is constant: the DiT paper's 2-D embedding up to layout."""
    gt, gh, gw = grid
    d_space = 2 * (dim // 6) if gt > 1 else 2 * (dim // 4)
    d_time = dim - 2 * d_space if gt > 1 else 0
    d_time -= d_time % 2
    tt, yy, xx = torch.meshgrid(torch.arange(gt), torch.arange(gh), torch.arange(gw), indexing="ij")
    parts = [sincos_1d(d_space, yy.flatten()), sincos_1d(d_space, xx.flatten())]
    if d_time:
        parts.insert(0, sincos_1d(d_time, tt.flatten()))
    emb = torch.cat(parts, dim=1)
    return F.pad(emb, (0, dim - emb.shape[1]))


# ----------------------------------------------------------------------------------------------- embeddings
def sinusoidal(values: torch.Tensor, dim: int = 256) -> torch.Tensor:
    """(B,) real values -> (B, dim): ``[cos(v f_i), sin(v f_i)]`` with frequencies ``f_i = 10000^(-i/(dim/2))``
    (the transformer/DDPM timestep embedding)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=values.device, dtype=torch.float32) / half)
    angles = values.float()[:, None] * freqs[None]
    return torch.cat([angles.cos(), angles.sin()], dim=1)


class NoiseLevelEmbedder(nn.Module):
    """c_noise (B,) -> (B, hidden): a 256-wide sinusoidal embedding of ``1000 * c_noise`` then Linear-SiLU-Linear.

    EDM's c_noise = ln(sigma)/4 lies in about [-1.6, 1.1]; scaling by 1000 spreads it over the same range of
    frequencies as DiT's integer timesteps 0..999.
    """

    def __init__(self, hidden: int, frequency_dim: int = 256):
        super().__init__()
        self.frequency_dim = frequency_dim
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal(1000.0 * c_noise.float(), self.frequency_dim))


def _drop_labels(labels: torch.Tensor, num_classes: int, dropout: float, training: bool) -> torch.Tensor:
    """In training, replace a fraction ``dropout`` of labels by the null label ``num_classes``."""
    if training and dropout > 0:
        drop = torch.rand(labels.shape, device=labels.device) < dropout
        labels = torch.where(drop, torch.full_like(labels, num_classes), labels)
    return labels


class LabelEmbedder(nn.Module):
    """Labels (B,) -> (B, hidden) by table lookup; row ``num_classes`` is the null label (classifier-free guidance).
    In training, a fraction ``dropout`` of labels is replaced by the null label."""

    def __init__(self, num_classes: int, hidden: int, dropout: float):
        super().__init__()
        self.num_classes, self.dropout = num_classes, dropout
        self.table = nn.Embedding(num_classes + (1 if dropout > 0 else 0), hidden)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.table.weight, std=0.02)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.table(_drop_labels(labels, self.num_classes, self.dropout, self.training))


class SinusoidalLabelEmbedder(nn.Module):
    """Ordered labels (B,) -> (B, hidden): the label value through :func:`sinusoidal` and Linear-SiLU-Linear, as
    SVD embeds its micro-conditions (fps, motion_bucket_id, noise augmentation). The null label
    ``num_classes`` (classifier-free guidance) is a learned vector of its own."""

    def __init__(self, num_classes: int, hidden: int, dropout: float, frequency_dim: int = 256):
        super().__init__()
        self.num_classes, self.dropout, self.frequency_dim = num_classes, dropout, frequency_dim
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.null = nn.Parameter(torch.zeros(hidden))

    def reset_parameters(self) -> None:
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)
        nn.init.normal_(self.null, std=0.02)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        labels = _drop_labels(labels, self.num_classes, self.dropout, self.training)
        is_null = (labels == self.num_classes)[:, None]
        emb = self.mlp(sinusoidal(labels.clamp(max=self.num_classes - 1), self.frequency_dim))
        return torch.where(is_null, self.null.to(emb.dtype).expand_as(emb), emb)


LABEL_EMBEDDERS = {"table": LabelEmbedder, "sincos": SinusoidalLabelEmbedder}


# ----------------------------------------------------------------------------------------------- blocks
def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: ``x * (1 + scale) + shift`` with per-sample shift/scale (B, D) broadcast over tokens."""
    return x * (1 + scale[:, None]) + shift[:, None]


class Attention(nn.Module):
    """Multi-head self-attention over all spacetime tokens (full 3-D attention, as in Sora-style DiTs)."""

    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape  # batch, tokens, width
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(d_head)) v
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class DiTBlock(nn.Module):
    """One adaLN-Zero transformer block (see the module docstring)."""

    def __init__(self, hidden: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden, heads)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        inner = int(hidden * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(hidden, inner), nn.GELU(approximate="tanh"), nn.Linear(inner, hidden))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden))
        nn.init.zeros_(self.adaLN_modulation[-1].weight)  # adaLN-Zero: every gate starts at 0 -> identity block
        nn.init.zeros_(self.adaLN_modulation[-1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate1[:, None] * self.attn(modulate(self.norm1(x), shift1, scale1))
        x = x + gate2[:, None] * self.mlp(modulate(self.norm2(x), shift2, scale2))
        return x


class FinalLayer(nn.Module):
    """adaLN (shift, scale) then a linear map from a token to its patch values; zero-initialised."""

    def __init__(self, hidden: int, patch_values: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden, patch_values)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))
        for layer in (self.linear, self.adaLN_modulation[-1]):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm(x), shift, scale))


class VideoDiT(nn.Module):
    """The video DiT. ``forward(x_in, c_noise, cond) -> raw`` follows the sampler's network interface
    (:class:`svd_lab.sampling.edm.Denoiser`).

    Args of forward:
        x_in: (B, T, C, H, W) noisy input already scaled by the preconditioning's c_in.
        c_noise: (B,) or 0-d noise level input.
        cond: ``{"labels": (B,) int64, "first_frame": (B, 1 or T, Cc, H, W)}`` (first_frame only when
            ``config.cond_channels > 0``).
    Returns:
        (B, T, out_channels, H, W).
    """

    def __init__(self, config: DiTConfig):
        super().__init__()
        self.config = cfg = config
        patch_in = cfg.patch_t * cfg.patch * cfg.patch * (cfg.in_channels + cfg.cond_channels)
        self.patch_embed = nn.Conv3d(cfg.in_channels + cfg.cond_channels, cfg.hidden,
                                     kernel_size=(cfg.patch_t, cfg.patch, cfg.patch),
                                     stride=(cfg.patch_t, cfg.patch, cfg.patch))
        self.register_buffer("pos_embed", sincos_3d(cfg.hidden, cfg.grid)[None], persistent=False)
        self.noise_embed = NoiseLevelEmbedder(cfg.hidden)
        self.label_embed = LABEL_EMBEDDERS[cfg.label_embedding](cfg.num_classes, cfg.hidden, cfg.class_dropout)
        self.blocks = nn.ModuleList(DiTBlock(cfg.hidden, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.final = FinalLayer(cfg.hidden, cfg.patch_t * cfg.patch * cfg.patch * cfg.out_channels)
        self._init_weights(patch_in)

    def _init_weights(self, patch_in: int) -> None:
        # DiT: Xavier-uniform linears, the patch embedding like a linear layer, N(0, 0.02) embeddings;
        # then the zero inits of adaLN-Zero and the final layer (done in their constructors) are restored.
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        w = self.patch_embed.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], patch_in))
        nn.init.zeros_(self.patch_embed.bias)
        self.label_embed.reset_parameters()
        for layer in self.noise_embed.mlp:
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, std=0.02)
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        for layer in (self.final.linear, self.final.adaLN_modulation[-1]):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def null_labels(self, batch: int, device=None) -> torch.Tensor:
        """(B,) of the null label, for the unconditional branch of guidance."""
        return torch.full((batch,), self.config.num_classes, dtype=torch.long, device=device)

    def forward(self, x_in: torch.Tensor, c_noise: torch.Tensor, cond: dict) -> torch.Tensor:
        cfg = self.config
        b, t = x_in.shape[:2]
        if cfg.cond_channels:
            first = cond["first_frame"].to(x_in.dtype)
            x_in = torch.cat([x_in, first.expand(b, t, *first.shape[2:])], dim=2)
        # Conv3d wants (B, C, T, H, W); its output (B, D, T', H', W') flattens time-major into tokens.
        tokens = self.patch_embed(x_in.transpose(1, 2)).flatten(2).transpose(1, 2) + self.pos_embed
        c_noise = torch.as_tensor(c_noise, device=x_in.device).float().reshape(-1).expand(b)
        c = self.noise_embed(c_noise) + self.label_embed(cond["labels"])
        for block in self.blocks:
            tokens = block(tokens, c)
        return unpatchify(self.final(tokens, c), cfg.grid, cfg.patch_t, cfg.patch)
