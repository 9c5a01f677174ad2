"""diffusers' and transformers' own SVD pipeline on our networks: for equivalence tests and benchmarks only.

svd-lab samples with its own loop (:mod:`svd_lab.sampling.edm`); these helpers build the reference it is compared
with (``StableVideoDiffusionPipeline``) and transformers' CLIP image processor our preprocessing must equal.
"""

from __future__ import annotations

import importlib.util

from svd_lab.svd.components import ClipImagePreprocessing, SVDComponents
from svd_lab.svd.configs import feature_extractor_config, scheduler_config


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
    config = dict(config or feature_extractor_config())
    if image_processor_backend() == "pil":
        from transformers import CLIPImageProcessorPil as processor_class
    else:
        from transformers import CLIPImageProcessor as processor_class
    config.pop("feature_extractor_type", None)
    config.pop("image_processor_type", None)
    return processor_class(**config)



def processor_config(pre: ClipImagePreprocessing) -> dict:
    """The hub's preprocessor config with a preprocessing's mean, std and size."""
    return {**feature_extractor_config(), "image_mean": list(pre.mean), "image_std": list(pre.std),
            "crop_size": {"height": pre.size, "width": pre.size}, "size": {"shortest_edge": pre.size}}


def diffusers_pipeline(components: SVDComponents):
    """diffusers' StableVideoDiffusionPipeline on these very modules (for comparisons and benchmarks)."""
    from diffusers import EulerDiscreteScheduler, StableVideoDiffusionPipeline

    # An image-decoder AutoencoderKL works too: the pipeline passes num_frames only to a decode() accepting it.
    pipe = StableVideoDiffusionPipeline(
        vae=components.vae, image_encoder=components.image_encoder, unet=components.unet,
        scheduler=EulerDiscreteScheduler.from_config(scheduler_config()),
        feature_extractor=clip_image_processor(processor_config(components.clip_preprocessing)),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
