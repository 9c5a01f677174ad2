"""A whole 4-step SVD sampling run on the converted tiny sgm model reproduces sgm's own run.

Reference (shared/fixtures/sgm/tiny/reference.safetensors, group d): the body of sgm's
``simple_video_sample.sample`` for 3 frames, 4 Euler steps, fps_id 6, motion_bucket_id 127, cond_aug 0.02,
guidance 1.0 -> 2.5, seed 5, decoding_t 3, fp32 on the CPU with 1 thread; the intermediate values of every step
are stored too.

Tolerance: 1e-5 max |difference| on the final latents and frames (measured: 2.4e-6 / 2.3e-6 with sgm's float32
sigmas, 4.9e-6 / 3.5e-6 through the pipeline with its float64 sigmas). Every difference is accounted for:

- noise: identical (the stored draws are fed in; the pipeline's own generator draws the same numbers);
- sigmas: ``karras_sigmas(..., compute_dtype=float32)`` is bitwise sgm's EDMDiscretization; the pipeline's default
  float64 ramp (diffusers' way) differs by up to 1.2e-4 at sigma 700 (2e-7 relative);
- initial state ``n * sqrt(1 + sigma_0^2)``: bitwise equal;
- conditioning: CLIP embedding 4.8e-7 and VAE latent 1.3e-6 (order of floating-point operations: transformers'
  SDPA vs OpenCLIP's MultiheadAttention, Linear vs 1x1 conv);
- UNet: ~1e-6 per call (same reason; the GroupNorm eps is sgm's);
- guidance mixes the raw v-outputs where sgm mixes the denoised x0 -- equal in exact arithmetic, rounding only;
- decoding: 2.9e-6 from identical latents (the VAE comparison of test_sgm_equivalence).

One input of sgm's UNet has no diffusers counterpart: ``image_only_indicator`` (sgm passes zeros during sampling,
which is what diffusers' UNet hard-codes), so ``unet_out_ioi_mixed`` is not reproducible and not needed.
"""

from __future__ import annotations

import json

import pytest
import torch

from conftest import max_abs_diff
from svd_lab.convert import sgm
from svd_lab.convert.sgm_preprocess import sgm_clip_preprocess

TOL_SAMPLE = 1e-5


@pytest.fixture(scope="module")
def components(sgm_tiny_dir, one_thread):
    return sgm.load_sgm_checkpoint(sgm_tiny_dir / "svd_tiny.safetensors", progress=False)


def test_components_carry_the_version(components):
    assert (components.version, components.decoder, components.profile) == ("svd", "temporal", "tiny")
    assert "sgm" in components.source


def test_sampler_run_step_by_step(components, sgm_reference, one_thread):
    """svd_lab's sampler (svd_lab.sampling.edm.sample) on the converted networks, fed sgm's noise."""
    from svd_lab.sampling import edm
    from svd_lab.svd import conditioning

    frames = 3
    image = sgm_reference["sample_in_image"]  # cond_frames_without_noise, in [-1, 1]
    with torch.no_grad():
        crossattn = components.image_encoder(sgm_clip_preprocess(image)).image_embeds[:, None]
        latent = components.vae.encode(image + 0.02 * sgm_reference["sample_cond_aug_noise"]).latent_dist.mode()
    cond = {"crossattn": crossattn, "concat": latent[:, None].repeat(1, frames, 1, 1, 1),
            "vector": torch.tensor([[6.0, 127.0, 0.02]])}
    assert max_abs_diff(cond["crossattn"].expand(frames, 1, -1), sgm_reference["sample_c_crossattn"]) <= 1e-6
    assert max_abs_diff(cond["concat"][0], sgm_reference["sample_c_concat"]) <= 4e-6
    uncond = conditioning.unconditional(cond)
    assert not uncond["crossattn"].any() and not uncond["concat"].any()

    sigmas = edm.karras_sigmas(4, compute_dtype=torch.float32)
    assert torch.equal(sigmas, sgm_reference["sample_sigmas"])
    network = conditioning.UNetNetwork(components.unet)
    raw_outputs = []

    def recording_network(x_in, c_noise, c):
        out = network(x_in, c_noise, c)
        raw_outputs.append(out)
        return out

    steps = []
    latents = edm.sample(edm.Denoiser(recording_network, edm.v_scaling_preconditioning),
                         sgm_reference["sample_initial_noise"][None], sigmas, cond,
                         uncond_builder=conditioning.unconditional,
                         guidance=edm.linear_guidance(frames, 1.0, 2.5), callback=steps.append, progress=False)

    start = sgm_reference["sample_initial_noise"] * (1 + sigmas[0] ** 2) ** 0.5
    assert torch.equal(start, sgm_reference["sample_step_x"][0])
    for i, step in enumerate(steps):
        # batch [uncond; cond], 3 frames each = sgm's 6 rows
        assert max_abs_diff(raw_outputs[i].reshape(6, 4, 8, 8), sgm_reference["sample_step_unet_out"][i]) <= 5e-6, i
        assert max_abs_diff(step.denoised[0], sgm_reference["sample_step_denoised"][i]) <= TOL_SAMPLE, i
        if i + 1 < len(steps):  # the state scales with sigma: compare relative to it
            scale = float(sigmas[i + 1]) + 1.0
            assert max_abs_diff(step.x[0], sgm_reference["sample_step_x"][i + 1]) <= TOL_SAMPLE * scale, i
    assert max_abs_diff(latents[0], sgm_reference["sample_latents"]) <= TOL_SAMPLE

    with torch.no_grad():
        decoded = components.vae.decode((1 / 0.18215) * latents[0], num_frames=frames).sample
    assert max_abs_diff(decoded, sgm_reference["sample_decoded"]) <= TOL_SAMPLE
    assert max_abs_diff(torch.clamp((decoded + 1) / 2, 0, 1), sgm_reference["sample_frames"]) <= TOL_SAMPLE


def test_pipeline_run_reproduces_sgm(components, sgm_reference, one_thread):
    """The course's pipeline on the converted file, from the input image and the seed alone."""
    from svd_lab.svd.pipeline import SVDPipeline

    pipe = SVDPipeline(components, device="cpu", dtype="float32")
    out = pipe.run(sgm_reference["sample_in_image_uint8"].numpy(), num_frames=3, num_steps=4, seed=5, fps_id=6,
                   motion_bucket_id=127, cond_aug=0.02, min_guidance=1.0, max_guidance=2.5, decoding_t=3,
                   width=64, height=64, progress=False)
    assert max_abs_diff(out.latents[0], sgm_reference["sample_latents"]) <= TOL_SAMPLE
    assert max_abs_diff(out.frames, sgm_reference["sample_frames"]) <= TOL_SAMPLE


@pytest.mark.parametrize("file_name, version, frames", [("svd.safetensors", "svd", 14),
                                                       ("svd_xt.safetensors", "svd_xt", 25)])
def test_pipeline_loader_picks_up_sgm_files_and_their_version(tmp_path, sgm_tiny_dir, file_name, version, frames):
    """`svd-lab sample IMAGE --checkpoint checkpoints/svd.safetensors` goes through load_pipeline: the sgm loader
    is used, and the version (frames, steps, guidance defaults) follows the release the file is."""
    import shutil

    from svd_lab.svd.profiles import load_pipeline
    from svd_lab.svd.versions import get_version

    placed = tmp_path / file_name  # as a user places the seed's file (a temporary copy, outside the repository)
    shutil.copyfile(sgm_tiny_dir / "svd_tiny.safetensors", placed)
    pipe, choice = load_pipeline(checkpoint=str(placed), device="cpu", dtype="float32", progress=False)
    assert choice.checkpoint == str(placed)
    comps = pipe.components
    assert (comps.version, comps.decoder, comps.profile) == (version, "temporal", "tiny")
    assert comps.unet.config.num_frames == frames
    assert "sgm" in comps.source
    params = pipe.resolve_params()
    assert (params["num_frames"], params["num_steps"]) == (frames, get_version(version).num_steps)


def test_cli_sample_runs_an_sgm_checkpoint(tmp_path, sgm_tiny_dir, sgm_reference, capsys):
    """End to end: `svd-lab sample IMAGE --checkpoint .../svd.safetensors` converts the sgm file in memory."""
    import shutil

    from PIL import Image

    from svd_lab.cli import main

    placed = tmp_path / "svd.safetensors"
    shutil.copyfile(sgm_tiny_dir / "svd_tiny.safetensors", placed)
    image = tmp_path / "input.png"
    Image.fromarray(sgm_reference["sample_in_image_uint8"].numpy()).save(image)
    out = tmp_path / "out"
    rc = main(["sample", str(image), "--checkpoint", str(placed), "--yes", "--frames", "3", "--steps", "2",
               "--width", "64", "--height", "64", "--out", str(out), "--device", "cpu", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    records = list(out.glob("*.json"))
    assert len(records) == 1 and list(out.glob("*.mp4"))
    params = json.loads(records[0].read_text())
    assert params["version"] == "svd" and "sgm" in params["weights"] and params["num_frames"] == 3
