"""What every loader returns: the three SVD networks plus what is needed to feed them.

``SVDComponents`` is returned by :func:`svd_lab.svd.configs.build_components` (random weights, tiny or full),
by :func:`svd_lab.svd.loading.load_diffusers_folder` (a hub-layout folder on disk) and by the sgm converter
(``svd_lab.convert.sgm.load_sgm_checkpoint``). The pipeline (:mod:`svd_lab.svd.pipeline`) only needs this.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from svd_lab.svd.versions import DECODER_IMAGE, DECODER_TEMPORAL

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def image_processor_backend() -> str:
    """Which backend transformers' ``CLIPImageProcessor`` uses here: 'torchvision' or 'pil'.

    transformers 5 prefers a torchvision-backed processor; without torchvision (this project avoids it: PyPI's
    torchvision breaks beside the CPU torch) it falls back to ``CLIPImageProcessorPil``. Colab has torchvision.
    Our own preprocessing (:class:`ClipImagePreprocessing`) does not depend on either.

    Decided the way transformers decides (torchvision's package metadata present, not "importable"): a broken
    torchvision install still selects the torchvision backend, which then fails -- this function says so.
    """
    try:
        from transformers.utils import is_torchvision_available
    except ImportError:  # older transformers: the same test by hand
        return "torchvision" if importlib.util.find_spec("torchvision") is not None else "pil"
    return "torchvision" if is_torchvision_available() else "pil"


def clip_image_processor(config: dict | None = None):
    """transformers' CLIP image processor for the active backend, built from the hub's preprocessor config.

    Only diffusers' own pipeline needs it (equivalence tests, benchmark). Picking the class ourselves avoids
    transformers' "falling back to CLIPImageProcessorPil" warning on machines without torchvision.
    """
    from svd_lab.svd.configs import feature_extractor_config

    config = dict(config or feature_extractor_config())
    if image_processor_backend() == "pil":
        from transformers import CLIPImageProcessorPil as processor_class
    else:
        from transformers import CLIPImageProcessor as processor_class
    config.pop("feature_extractor_type", None)
    config.pop("image_processor_type", None)
    return processor_class(**config)


# ------------------------------------------------------------------------------------------- CLIP input
def _gaussian_kernel(size: int, sigma: float, dtype: torch.dtype) -> torch.Tensor:
    """Normalised 1-d Gaussian, (size,): exp(-k^2 / (2 sigma^2)) for k = -size//2 .. size//2."""
    offsets = torch.arange(size, dtype=dtype) - size // 2
    weights = torch.exp(-(offsets**2) / (2 * torch.tensor(sigma, dtype=dtype) ** 2))
    return weights / weights.sum()


def _blur_along(images: torch.Tensor, kernel: torch.Tensor, axis: int) -> torch.Tensor:
    """Depthwise 1-d convolution along the last (axis=-1) or second-to-last (axis=-2) dimension, reflect padding."""
    channels, k = images.shape[1], kernel.numel()
    shape = (1, 1, 1, k) if axis == -1 else (1, 1, k, 1)
    pad = (k // 2, k // 2, 0, 0) if axis == -1 else (0, 0, k // 2, k // 2)
    weight = kernel.view(shape).expand(channels, 1, *shape[2:]).contiguous().to(images.device)
    return F.conv2d(F.pad(images, pad, mode="reflect"), weight, groups=channels)


def resize_with_antialiasing(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Blur then bicubic-resize (B, C, H, W) -> (B, C, *size), the way SVD's CLIP embedder downsizes its input.

    Down-sampling by a factor f without a low-pass filter aliases; a Gaussian with sigma = (f - 1) / 2 (at least
    0.001, kernel 4 sigma wide, odd, at least 3) removes the frequencies the smaller grid cannot hold. Then bicubic
    interpolation with align_corners=True (the reference's kornia-style resize).
    """
    h, w = images.shape[-2:]
    sigma_y = max((h / size[0] - 1.0) / 2.0, 0.001)
    sigma_x = max((w / size[1] - 1.0) / 2.0, 0.001)
    k_y, k_x = int(max(4.0 * sigma_y, 3)), int(max(4.0 * sigma_x, 3))
    k_y, k_x = k_y + (k_y % 2 == 0), k_x + (k_x % 2 == 0)
    blurred = _blur_along(images, _gaussian_kernel(k_x, sigma_x, images.dtype), axis=-1)
    blurred = _blur_along(blurred, _gaussian_kernel(k_y, sigma_y, images.dtype), axis=-2)
    return F.interpolate(blurred, size=size, mode="bicubic", align_corners=True)


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
        profile: 'tiny' or 'full'.
        source: where the weights came from (a path, or 'random init, seed N').
        clip_preprocessing: image -> CLIP input.
    """

    unet: torch.nn.Module
    vae: torch.nn.Module
    image_encoder: torch.nn.Module
    version: str = "svd"
    decoder: str = DECODER_TEMPORAL
    profile: str = "full"
    source: str = ""
    clip_preprocessing: ClipImagePreprocessing = field(default_factory=ClipImagePreprocessing)

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

    def diffusers_pipeline(self):
        """diffusers' StableVideoDiffusionPipeline on these very modules (for comparisons and benchmarks)."""
        from diffusers import EulerDiscreteScheduler, StableVideoDiffusionPipeline

        from svd_lab.svd.configs import scheduler_config

        # An image-decoder AutoencoderKL works too: the pipeline passes num_frames only to a decode() accepting it.
        pipe = StableVideoDiffusionPipeline(
            vae=self.vae, image_encoder=self.image_encoder, unet=self.unet,
            scheduler=EulerDiscreteScheduler.from_config(scheduler_config()),
            feature_extractor=clip_image_processor(
                {**_processor_config_from(self.clip_preprocessing)}),
        )
        pipe.set_progress_bar_config(disable=True)
        return pipe


def _processor_config_from(pre: ClipImagePreprocessing) -> dict:
    from svd_lab.svd.configs import feature_extractor_config

    return {**feature_extractor_config(), "image_mean": list(pre.mean), "image_std": list(pre.std),
            "crop_size": {"height": pre.size, "width": pre.size}, "size": {"shortest_edge": pre.size}}
