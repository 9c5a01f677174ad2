"""Our SVD pipeline (own conditioning, own EDM sampler, own CLIP preprocessing) vs diffusers' pipeline.

Tiny profile, same modules, same generator: the latents and the decoded frames must be bitwise equal. What makes
that possible (each was needed): random draws in the same order (conditioning noise, then latents), fps_id =
diffusers' fps - 1, the same CLIP preprocessing arithmetic, eval mode, float32 step arithmetic written in the
reference order, 1 / scaling * z before decoding, and the input image laid out channels-last like diffusers'.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from svd_lab.svd.components import ClipImagePreprocessing, build_components
from svd_lab.svd.diffusers_interop import clip_image_processor, diffusers_pipeline, image_processor_backend
from svd_lab.svd.images import image_to_tensor
from svd_lab.svd.pipeline import SVDPipeline


def _image(width, height, seed=0):
    rng = np.random.default_rng(seed)
    # smooth content plus noise: exercises the anti-aliasing blur more than pure noise would
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x / width, y / height, (x + y) / (width + height)], -1) * 200
    return Image.fromarray(np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8))


def _diffusers(comps, img, *, frames, steps, seed, decoding_t, output_type, fps_id=6, motion=127, aug=0.02,
               gmin=1.0, gmax=2.5):
    pipe = diffusers_pipeline(comps)
    return pipe(img, height=img.height, width=img.width, num_frames=frames, num_inference_steps=steps,
                min_guidance_scale=gmin, max_guidance_scale=gmax, fps=fps_id + 1, motion_bucket_id=motion,
                noise_aug_strength=aug, decode_chunk_size=decoding_t, output_type=output_type,
                generator=torch.Generator().manual_seed(seed)).frames


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


@pytest.fixture(scope="module")
def tiny():
    return build_components("tiny", "svd", seed=0)


def test_bitwise_equal_to_diffusers_pipeline(tiny):
    img = _image(64, 64)
    ours = SVDPipeline(tiny, device="cpu").run(img, num_frames=3, num_steps=4, seed=5, decoding_t=3, progress=False)
    latents = _diffusers(tiny, img, frames=3, steps=4, seed=5, decoding_t=3, output_type="latent")
    assert torch.equal(ours.latents, latents)
    frames = _diffusers(tiny, img, frames=3, steps=4, seed=5, decoding_t=3, output_type="pt")
    assert torch.equal(ours.frames, frames[0])
    pil = _diffusers(tiny, img, frames=3, steps=4, seed=5, decoding_t=3, output_type="pil")[0]
    assert np.array_equal(ours.video.frames, np.stack([np.asarray(f) for f in pil]))
    # not a vacuous comparison: the frames move and depend on the seed
    assert ours.frames.std() > 0.01
    other = SVDPipeline(tiny, device="cpu").run(img, num_frames=3, num_steps=4, seed=6, decoding_t=3, progress=False)
    assert not torch.equal(other.latents, ours.latents)


def test_bitwise_equal_with_blur_chunked_decoding_and_other_conditioning(tiny):
    """320x256: the CLIP resize blurs (sigma 0.21 across, 0.07 down); decoding 1 frame at a time; other knobs."""
    img = _image(320, 256, seed=1)
    kwargs = {"frames": 2, "steps": 2, "seed": 3, "decoding_t": 1, "fps_id": 10, "motion": 40, "aug": 0.1,
              "gmin": 1.5, "gmax": 3.0}
    ours = SVDPipeline(tiny, device="cpu").run(
        img, num_frames=2, num_steps=2, seed=3, decoding_t=1, fps_id=10, motion_bucket_id=40, cond_aug=0.1,
        min_guidance=1.5, max_guidance=3.0, width=320, height=256, progress=False)
    assert torch.equal(ours.frames, _diffusers(tiny, img, output_type="pt", **kwargs)[0])


def test_bitwise_equal_for_the_image_decoder_version():
    comps = build_components("tiny", "svd_image_decoder", seed=2)
    img = _image(64, 64, seed=2)
    ours = SVDPipeline(comps, device="cpu").run(img, num_frames=3, num_steps=2, seed=1, decoding_t=2, progress=False)
    assert torch.equal(ours.frames, _diffusers(comps, img, frames=3, steps=2, seed=1, decoding_t=2,
                                               output_type="pt")[0])


def test_same_seed_same_video_and_callback_sees_every_step(tiny):
    pipe = SVDPipeline(tiny, device="cpu")
    img = _image(64, 64)
    steps = []
    a = pipe.run(img, num_frames=2, num_steps=3, seed=9, progress=False, callback=steps.append)
    b = pipe.run(img, num_frames=2, num_steps=3, generator=torch.Generator().manual_seed(9), progress=False)
    assert torch.equal(a.latents, b.latents)
    assert [s.index for s in steps] == [0, 1, 2]
    assert steps[0].denoised.shape == (1, 2, 4, 8, 8)
    assert torch.equal(steps[-1].x, a.latents)


# ------------------------------------------------------------------ CLIP preprocessing backend
def test_clip_preprocessing_equals_the_active_image_processor_backend():
    """transformers 5 without torchvision uses CLIPImageProcessorPil; with torchvision (Colab) the torchvision
    backend. Our preprocessing must equal whichever is active, the way diffusers calls it."""
    import transformers
    from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import (
        _resize_with_antialiasing,
    )

    from svd_lab.svd.configs import feature_extractor_config

    backend = image_processor_backend()
    processor = clip_image_processor()
    # transformers' own choice for the hub's processor config (it warns when it falls back to PIL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default = transformers.CLIPImageProcessor(**feature_extractor_config())
    assert type(processor) is type(default)
    assert type(processor).__name__ == ("CLIPImageProcessorPil" if backend == "pil" else "CLIPImageProcessor")

    for width, height in ((64, 64), (448, 256), (1024, 576)):
        image = image_to_tensor(_image(width, height, seed=width))
        ours = ClipImagePreprocessing()(image)
        reference = processor(
            images=(_resize_with_antialiasing(image * 2.0 - 1.0, (224, 224)) + 1.0) / 2.0,
            do_normalize=True, do_center_crop=False, do_resize=False, do_rescale=False, return_tensors="pt",
        ).pixel_values
        assert ours.shape == (1, 3, 224, 224)
        assert torch.equal(ours, reference), (width, height)


def test_the_guidance_rule_where_diffusers_differs(tiny):
    """svd-lab's rule: guide whenever any per-frame scale differs from 1 (``F_u + s (F_c - F_u)`` for every s,
    also s < 1). diffusers' rule: guide only when max_guidance_scale > 1. They agree whenever max > 1 (tested
    bit for bit above); they differ for max <= 1 with some scale != 1, and diffusers crashes for min > 1 >= max."""
    img = _image(64, 64)
    kwargs = {"num_frames": 3, "num_steps": 2, "seed": 5, "decoding_t": 3, "progress": False}
    ours = SVDPipeline(tiny, device="cpu")
    unguided = ours.run(img, min_guidance=1.0, max_guidance=1.0, **kwargs)
    below_one = ours.run(img, min_guidance=0.5, max_guidance=1.0, **kwargs)
    theirs = _diffusers(tiny, img, frames=3, steps=2, seed=5, decoding_t=3, output_type="latent", gmin=0.5, gmax=1.0)
    assert torch.equal(theirs, unguided.latents)          # diffusers ignored the scale 0.5 of the first frame
    assert not torch.equal(below_one.latents, unguided.latents)  # svd-lab applied it
    # the frame with scale exactly 1 is the conditional branch in both cases: only frames with s != 1 differ
    changed = (below_one.latents != unguided.latents).flatten(2).any(-1)[0]
    assert changed.tolist()[0] is True
    # decreasing guidance (min > 1 >= max): diffusers fails, svd-lab guides each frame with its own scale
    with pytest.raises(Exception):  # noqa: B017 - diffusers' error type is an implementation detail
        _diffusers(tiny, img, frames=3, steps=2, seed=5, decoding_t=3, output_type="latent", gmin=2.0, gmax=1.0)
    decreasing = ours.run(img, min_guidance=2.0, max_guidance=1.0, **kwargs)
    assert torch.isfinite(decreasing.latents).all() and not torch.equal(decreasing.latents, unguided.latents)
