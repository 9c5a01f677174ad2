"""What every loader returns: the three SVD networks plus what is needed to feed them.

``SVDComponents`` is returned by :func:`build_components` (random weights from the configs of
:mod:`svd_lab.svd.configs`, any profile),
by :func:`svd_lab.svd.loading.load_diffusers_folder` (a hub-layout folder on disk) and by the sgm converter
(``svd_lab.convert.sgm.load_sgm_checkpoint``). The pipeline (:mod:`svd_lab.svd.pipeline`) only needs this.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from svd_lab.errors import InputError
from svd_lab.svd.configs import CLIP_MEAN, CLIP_STD, PROFILES, image_encoder_config, unet_config, vae_config
from svd_lab.svd.versions import DECODER_IMAGE, DECODER_TEMPORAL, DEFAULT_VERSION, get_version


# ------------------------------------------------------------------------------------------- CLIP input
def _gaussian_kernel(size: int, sigma: float, dtype: torch.dtype, device: torch.device | None = None) -> torch.Tensor:
    """Normalised 1-d Gaussian taps, (size,): exp(-k^2 / (2 sigma^2)) for k = -(size//2) .. size//2 (size odd).

    Computed in ``dtype`` (both references build it in the dtype they blur in, sigma included) on ``device``
    (None: the CPU).
    """
    offsets = torch.arange(size, dtype=dtype, device=device) - size // 2
    weights = torch.exp(-(offsets**2) / (2 * torch.tensor(sigma, dtype=dtype, device=device) ** 2))
    return weights / weights.sum()


def _blur_along(images: torch.Tensor, kernel: torch.Tensor, axis: int) -> torch.Tensor:
    """Depthwise 1-d convolution of (B, C, H, W) along width (axis=-1) or height (axis=-2), reflect padding.

    Laid out exactly as kornia's ``filter2d`` (which diffusers copies), because the layout picks the convolution
    kernel and so the rounding: one kernel expanded (stride 0) over the channels, and the padded input passed
    through ``view(-1, C, H', W')`` -- for a batch of one that view resets the batch stride, so a channels-last
    image (how diffusers lays out a PIL input) takes the contiguous-format convolution (in fp16 that changes bits).
    """
    channels, k = images.shape[1], kernel.numel()
    shape = (1, 1, 1, k) if axis == -1 else (1, 1, k, 1)
    pad = (k // 2, k // 2, 0, 0) if axis == -1 else (0, 0, k // 2, k // 2)
    weight = kernel.to(device=images.device, dtype=images.dtype).reshape(shape).expand(channels, 1, *shape[2:])
    padded = F.pad(images, pad, mode="reflect")
    padded = padded.view(-1, channels, *padded.shape[-2:])
    return F.conv2d(padded, weight, groups=channels).view(images.shape)


def resize_with_antialiasing(images: torch.Tensor, size: tuple[int, int], reference: str = "diffusers") -> torch.Tensor:
    """Blur then bicubic-resize (B, C, H, W) -> (B, C, *size), the way SVD's CLIP embedder downsizes its input.

    Down-sampling by a factor f without a low-pass filter aliases; a Gaussian with sigma = (f - 1) / 2 per axis (at
    least 0.001; ``int(max(4 sigma, 3))`` taps, made odd) removes the frequencies the smaller grid cannot hold. The
    blur runs along the width, then the height, with reflect padding; then bicubic interpolation with
    align_corners=True in the images' dtype, which is returned.

    ``reference`` -- the two implementations SVD's references use, identical in all of the above:

    - ``"diffusers"``: diffusers' ``_resize_with_antialiasing`` (the pipeline's CLIP input). It always blurs --
      along an axis that does not shrink, sigma 0.001 gives the taps [0, 1, 0] -- in the images' dtype, with the
      taps built on the CPU and moved to the images' device.
    - ``"kornia"``: ``kornia.geometry.resize(..., antialias=True)`` (kornia 0.9.0, as in sgm's reference outputs),
      what sgm's ``FrozenOpenCLIPImageEmbedder`` calls. It blurs only when an axis shrinks (max factor > 1), builds
      the taps on the images' device, and blurs float16/bfloat16 images in float32, rounding once before the
      bicubic step.

    For float32 on the CPU the two agree bit for bit on finite values (the [0, 1, 0] blur is exact); they differ
    where a skipped blur would have spread a NaN or an infinity, in half precision, and on an accelerator, whose
    ``exp`` may round the taps differently from the CPU's.
    """
    if reference not in ("diffusers", "kornia"):
        raise ValueError(f"reference must be 'diffusers' or 'kornia', got {reference!r}")
    if images.ndim != 4:
        raise ValueError(f"expected an image batch (B, C, H, W), got shape {tuple(images.shape)}")
    h, w = images.shape[-2:]
    size = (int(size[0]), int(size[1]))
    factors = (h / size[0], w / size[1])
    if reference == "diffusers" or max(factors) > 1:
        sigma_y, sigma_x = (max((f - 1.0) / 2.0, 0.001) for f in factors)
        k_y, k_x = int(max(4.0 * sigma_y, 3)), int(max(4.0 * sigma_x, 3))
        k_y, k_x = k_y + (k_y % 2 == 0), k_x + (k_x % 2 == 0)
        kornia = reference == "kornia"
        half = images.dtype in (torch.float16, torch.bfloat16)
        blurred = images.float() if kornia and half else images
        device = blurred.device if kornia else None
        blurred = _blur_along(blurred, _gaussian_kernel(k_x, sigma_x, blurred.dtype, device), axis=-1)
        blurred = _blur_along(blurred, _gaussian_kernel(k_y, sigma_y, blurred.dtype, device), axis=-2)
        images = blurred.to(images.dtype)
    return F.interpolate(images, size=size, mode="bicubic", align_corners=True)


@dataclass
class ClipImagePreprocessing:
    """Image (B, 3, H, W) in [0, 1] -> CLIP input (B, 3, 224, 224): anti-aliased resize, then (x - mean) / std.

    The resize runs on [-1, 1] values (x * 2 - 1, then back), as the reference does; the result is equal to
    diffusers' ``_encode_image`` followed by the CLIP image processor (tested against the active backend).
    """

    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    size: int = 224

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images * 2.0 - 1.0
        x = resize_with_antialiasing(x, (self.size, self.size))
        x = (x + 1.0) / 2.0
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std


# ------------------------------------------------------------------------------------------- components
@dataclass
class SVDComponents:
    """The networks of one SVD version and how to feed them.

    Attributes:
        unet: diffusers ``UNetSpatioTemporalConditionModel``.
        vae: ``AutoencoderKLTemporalDecoder`` (decoder == 'temporal') or ``AutoencoderKL`` ('image').
        image_encoder: transformers ``CLIPVisionModelWithProjection``.
        version: a key of :data:`svd_lab.svd.versions.VERSIONS`.
        decoder: 'temporal' (frames decoded together, mixing within a chunk) or 'image' (frame by frame).
        profile: 'tiny', 'small' or 'full' (:data:`svd_lab.svd.configs.PROFILES`).
        source: where the weights came from (a path, or 'random init, seed N').
        clip_preprocessing: image -> CLIP input.
        fingerprint: what identifies the weights: 'random <profile> <version> seed N', or a hash of the weight
            files' names, sizes and modification times (:func:`svd_lab.svd.loading.files_fingerprint`). Batch jobs
            include it in their identity, so videos of other weights are never taken for this model's.
        trained_size: (height, width) a fine-tuned full-size model was trained at (its record says so): the
            sampling default instead of the version's 576x1024. None: the version's (or the small profile's own).
        sampling: sampling defaults the weights' record recommends instead of the version's (``num_steps``,
            ``min_guidance``, ``max_guidance``; the small SVD's were chosen by its evaluation,
            :data:`svd_lab.small.model.SAMPLING`). Empty: the version's.
    """

    unet: torch.nn.Module
    vae: torch.nn.Module
    image_encoder: torch.nn.Module
    version: str = DEFAULT_VERSION
    decoder: str = DECODER_TEMPORAL
    profile: str = "full"
    source: str = ""
    clip_preprocessing: ClipImagePreprocessing = field(default_factory=ClipImagePreprocessing)
    fingerprint: str = ""
    trained_size: tuple[int, int] | None = None
    sampling: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.decoder not in (DECODER_TEMPORAL, DECODER_IMAGE):
            raise ValueError(f"decoder must be {DECODER_TEMPORAL!r} or {DECODER_IMAGE!r}, got {self.decoder!r}")

    # -- placement
    def modules(self) -> dict[str, torch.nn.Module]:
        return {"unet": self.unet, "vae": self.vae, "image_encoder": self.image_encoder}

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> SVDComponents:
        for module in self.modules().values():
            # torch.nn.Module.to, not diffusers' ModelMixin.to: the latter warns about "modules that should be
            # kept in float32" on every dtype cast even when that list is empty, as it is for these models.
            torch.nn.Module.to(module, device=device, dtype=dtype)
        return self

    def eval(self) -> SVDComponents:
        """Inference mode for every network (constructors return train mode; from_pretrained returns eval)."""
        for module in self.modules().values():
            module.eval()
            module.requires_grad_(False)
        return self

    def parameter_counts(self) -> dict[str, int]:
        return {name: sum(p.numel() for p in m.parameters()) for name, m in self.modules().items()}

    @property
    def latent_scaling(self) -> float:
        """The VAE's scaling factor (0.18215): latents are multiplied by it after encoding, divided before decoding."""
        return float(self.vae.config.scaling_factor)

    # -- the latent space, read from the networks (never written as 4 channels and 8x)
    @property
    def latent_channels(self) -> int:
        """Channels of a latent frame: the VAE's ``latent_channels`` (4 for SVD)."""
        return int(self.vae.config.latent_channels)

    @property
    def downsampling(self) -> int:
        """Pixels per latent cell along each side: the VAE halves the size between its levels (8 for SVD)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int, int]:
        """(1, T, C, H / f, W / f): the latents of one video of ``num_frames`` frames at ``height`` x ``width``."""
        f = self.downsampling
        return (1, num_frames, self.latent_channels, height // f, width // f)

    @property
    def native_frames(self) -> int:
        """The frame count the UNet was trained for (its config's ``num_frames``: 14 svd, 25 svd_xt)."""
        return int(self.unet.config.num_frames)

    @property
    def native_size(self) -> int:
        """The frame side the UNet was built for, in pixels: its config's ``sample_size`` (latent cells) times the
        VAE's down-sampling (the full UNet says 96 -> 768; the small model says what it was trained at)."""
        return int(self.unet.config.sample_size) * self.downsampling


# ------------------------------------------------------------------------------------------- builders
def build_unet(profile: str, version: str = DEFAULT_VERSION):
    from diffusers import UNetSpatioTemporalConditionModel

    return UNetSpatioTemporalConditionModel(**unet_config(profile, version))


def build_vae(profile: str, version: str = DEFAULT_VERSION):
    from diffusers import AutoencoderKL, AutoencoderKLTemporalDecoder

    kind, config = vae_config(profile, version)
    if kind == DECODER_TEMPORAL:
        return AutoencoderKLTemporalDecoder(**config)
    return AutoencoderKL(**config)


def build_image_encoder(profile: str):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    return CLIPVisionModelWithProjection(CLIPVisionConfig(**image_encoder_config(profile)))


def random_fingerprint(profile: str, version: str, seed: int) -> str:
    """The fingerprint of randomly initialised networks: the same profile, version and seed give the same weights."""
    return f"random {profile} {version} seed {seed}"


def build_components(profile: str = "tiny", version: str = DEFAULT_VERSION, device: str | torch.device = "cpu",
                     dtype: torch.dtype = torch.float32, seed: int = 0):
    """Build the three networks of a version with random weights, in eval mode.

    ``device="meta"`` builds the structure only (no memory; for parameter counts and FLOP counting): diffusers'
    AlphaBlender creates its ``mix_factor`` with ``torch.Tensor([alpha])``, which ignores the default device, so
    everything is moved to ``meta`` explicitly after construction.

    On a real device the weights are the constructors' default initialisation drawn from ``seed`` (deterministic;
    the caller's global random state is left untouched). Returns an ``SVDComponents``.
    """
    if profile not in PROFILES:
        raise InputError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    spec = get_version(version)
    device = torch.device(device)
    if device.type == "meta":
        with torch.device("meta"):
            unet, vae, encoder = build_unet(profile, version), build_vae(profile, version), build_image_encoder(profile)
        unet, vae, encoder = unet.to("meta"), vae.to("meta"), encoder.to("meta")
    else:
        # Build on the CPU so that the same seed gives the same weights on every device.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            unet, vae, encoder = build_unet(profile, version), build_vae(profile, version), build_image_encoder(profile)
    components = SVDComponents(
        unet=unet, vae=vae, image_encoder=encoder, version=spec.name, decoder=spec.decoder, profile=profile,
        source="meta device (structure only)" if device.type == "meta" else f"random init, seed {seed}",
        fingerprint=random_fingerprint(profile, spec.name, seed),
    )
    return components.to(device=device, dtype=dtype).eval()
