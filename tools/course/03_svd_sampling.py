# %% [markdown]
# # 03 · Stable Video Diffusion: one image in, a short video out
#
# By the end of this notebook you can generate a video from an image with SVD, and you know every tensor that
# goes into the UNet and why: the CLIP embedding, the unscaled image latent, the 0.18215 latent scale, the three
# micro-conditioning numbers, the unconditional branch that guidance subtracts, the EDM loop and the chunked
# decode. You write that whole algorithm out below, cell by cell, and check that it equals the library's
# `pipe.run` exactly.
#
# **Which model runs here.** With a CUDA GPU and a downloaded checkpoint (`svd-lab download svd`),
# `profile = "auto"` runs the real SVD at 576x1024 (`full`). On a CPU it runs **small**: SVD's own three network
# classes, narrow enough for a CPU, *trained by this project* on camera pans over procedural images and photos
# (`svd-lab small train`, weights in `checkpoints/small/`), at the frame size and frame count it was trained at
# (64x64<!-- r:frame_size -->, 8<!-- r:run_parameters[num_frames] --> frames). What it replaces: its CLIP image encoder is a small one with frozen random weights (the image
# reaches the UNet through the VAE latent, section 2.3), and it knows one kind of motion only, the camera panning
# right, at the speed `motion_bucket_id` asks and the step per frame `fps_id` implies. So judge the mechanics and the
# knobs here, and look at the pictures: section 2.1 shows what its VAE keeps of the input.
# (`profile = "tiny"` runs the same code with random weights.)
# %% [bootstrap]
# %% [markdown]
# ## Parameters
#
# `None` means "the default of the profile": the size and frame count the small model was trained at on a CPU, the version's
# reference values on `full`. `solutions = True` fills in the exercises' answers.
# %% tags=["parameters"]
profile = "auto"          # "auto", "small", "tiny" or "full"
version = "auto"          # "auto": the best SVD checkpoint here that fits the GPU (svd_xt_1_1 > svd_xt > svd > the
                          # image-decoder ones), svd's shape on a CPU; or svd, svd_xt, svd_xt_1_1, svd_image_decoder, ...
device = "auto"           # "auto" (CUDA > MPS > CPU), "cpu", "cuda"
seed = 23                 # Stability's default seed
image = None              # None: assets/rocket.png (a public-domain SpaceX photo); or a path to your image
num_frames = None         # None: the model's own on small (8), 4 on tiny; 14 (svd) or 25 (svd_xt) on full
num_steps = None          # None: the weights' record (the small SVD: 12), else the version's (svd 25, svd_xt 30); 3 on tiny
height = None             # None: the model's own on small (64), 64 on tiny, 576 on full (multiples of 64)
width = None              # None: the model's own on small (64), 64 on tiny, 1024 on full
motion_buckets = [0, 127, 255]   # the motion_bucket_id sweep shown side by side
output_dir = None         # None: outputs/notebooks/03_svd_sampling
solutions = False         # True: the exercises' solutions are filled in
language = "en"           # "en" or "zh-CN" (set by the zh-CN edition): hints, doctor and profile lines
# %%
from pathlib import Path

import IPython.display
import torch

from svd_lab import display, exercises, messages, paths
from svd_lab.pixels import colour_error, psnr, quantize, thumbnail
from svd_lab.record import record, reproducible
from svd_lab.sampling import edm
from svd_lab.small import data as pan_data
from svd_lab.small.metrics import displacement, frame_shifts, vae_round_trip
from svd_lab.svd import conditioning
from svd_lab.svd.images import image_to_tensor
from svd_lab.svd.profiles import load_pipeline
from svd_lab.svd.versions import VERSIONS, get_version
from svd_lab.video import count_frames, save_numbered

messages.set_language(language)

reproducible(seed)
pipe, choice = load_pipeline(version, profile=profile, device=device, seed=seed, progress=False)
resolved_profile = choice.profile
version = pipe.components.version          # "auto" resolved (the profile line below says why)
spec = get_version(version)
defaults = pipe.resolve_params()           # the profile's defaults over the version's
num_frames = num_frames or (4 if resolved_profile == "tiny" else defaults["num_frames"])
num_steps = num_steps or (3 if resolved_profile == "tiny" else defaults["num_steps"])
height = height or defaults["height"]
width = width or defaults["width"]
image_path = Path(image) if image else paths.project_root() / "assets" / "rocket.png"
if not image_path.is_file():
    raise FileNotFoundError(f"no input image at {image_path}: set the parameter image to a PNG or JPEG file")
out_dir = Path(output_dir) if output_dir else paths.outputs_dir() / "notebooks" / "03_svd_sampling"
comps = pipe.components
print(choice.line())
print(f"version {version} on {pipe.device} in {str(pipe.dtype).replace('torch.', '')}: {num_frames} frames, "
      f"{num_steps} steps, {width}x{height}")
print("parameters of the three networks:", {k: f"{n / 1e6:.2f} M" for k, n in comps.parameter_counts().items()})
# %% [markdown]
# ## 1. The versions and their reference defaults
#
# Stability released SVD (14 frames) and SVD-XT (25 frames, fine-tuned from SVD), each also with a per-frame
# image decoder, and later SVD-XT 1.1. Their reference settings (from `simple_video_sample.py`):
# %%
print(f"{'version':<22}{'frames':>7}{'steps':>7}{'guidance':>12}  decoder")
for v in VERSIONS.values():
    print(f"{v.name:<22}{v.num_frames:>7}{v.num_steps:>7}{v.min_guidance:>6.1f}-{v.max_guidance:<5.1f}  {v.decoder}")
print(f"\nall versions: {spec.width}x{spec.height}, fps_id {spec.fps_id}, motion_bucket_id {spec.motion_bucket_id}, "
      f"cond_aug {spec.cond_aug}, seed {spec.seed}, decoding_t {spec.decoding_t}")
# %% [markdown]
# ## 2. SVD unrolled, one step per cell
#
# Three networks: a **CLIP image encoder** (what the image *is*, for the UNet's cross-attention), a **VAE**
# (each frame 8x smaller in height and width, 4 channels) and the **UNet** (denoises the latent video). We now do
# by hand what `pipe.run` does, printing every shape, and compare at the end.
#
# ### 2.1 The input image
#
# Scaled to cover the target size and centre-cropped (both multiples of 64), then a tensor in [0, 1].
# %%
prepared = pipe.prepare_image(str(image_path), width, height)
image_tensor = image_to_tensor(prepared)                       # (1, 3, H, W) in [0, 1]
print(f"{image_path.name} -> {tuple(image_tensor.shape)}, values {image_tensor.min():.2f}..{image_tensor.max():.2f}")
shown_width = max(display.MIN_DISPLAY_WIDTH, width)                 # small images are scaled up to be seen
prepared.resize((shown_width, shown_width * height // width))
# %% [markdown]
# ### What the VAE keeps of it
#
# Everything the UNet makes is decoded by the VAE, so what its decoder cannot draw no video can show; the VAE's
# *round trip* of the input (encode, decode) shows what it keeps. (A generated frame may score close to it, or even above
# the round trip: the UNet's latent need not be the encoder's, and the decoder can render it closer to the input.)
# Compare the round trip with the input, and with a simple baseline that has as many numbers as the latent: the input shrunk to a thumbnail with no more values than the latent, enlarged back with bicubic
# interpolation. A useful autoencoder beats that thumbnail; PSNR (dB, higher is better) is measured against the
# input in pixel space. Look at the thin structures too: on the small model the rocket's launch towers are lost in
# the round trip as in the thumbnail, so no video below shows them.
# %%
vae_module = comps.vae
latent_values = comps.latent_channels * (height // comps.downsampling) * (width // comps.downsampling)
round_trip = quantize(vae_round_trip(vae_module, image_tensor.to(next(vae_module.parameters()).device)).cpu()[0])
baseline = thumbnail(image_tensor[0], latent_values)
vae_psnr, thumbnail_psnr = psnr(image_tensor[0], round_trip), psnr(image_tensor[0], baseline)
side = int((latent_values // 3) ** 0.5)
print(f"latent: {latent_values} values ({comps.latent_channels} channels at 1/{comps.downsampling} of the size)")
print(f"VAE round trip {vae_psnr:.2f} dB, {side}x{side} thumbnail ({3 * side * side} values) {thumbnail_psnr:.2f} dB: "
      f"the VAE {'beats' if vae_psnr > thumbnail_psnr else 'loses to'} the thumbnail by "
      f"{abs(vae_psnr - thumbnail_psnr):.2f} dB")
display.frame_grid(torch.stack([image_tensor[0], round_trip, baseline]), columns=3, size=2.6,
                   labels=["input", f"VAE round trip, {vae_psnr:.1f} dB", f"{side}x{side} thumbnail, {thumbnail_psnr:.1f} dB"])
# %% [markdown]
# ### 2.2 The CLIP embedding (cross-attention)
#
# In the real SVD this is what the image *means* (OpenCLIP ViT-H/14). The small model's CLIP is a tiny random one,
# frozen: it passes the computation through, and the image reaches its UNet through the latent of section 2.3. CLIP wants
# 224x224 pixels normalised by its training mean and standard deviation. The resize is anti-aliased
# (a Gaussian blur before the bilinear resize, as sgm and diffusers do: without it a 1024<!-- r:svd_reference[width] -->-pixel image aliases
# badly at 224). The encoder returns one vector per image; the UNet's cross-attention layers attend to it as a
# single token: `(1, 1, D)`.
# %%
encoder = comps.image_encoder
encoder_device, encoder_dtype = next(encoder.parameters()).device, next(encoder.parameters()).dtype
clip_pixels = comps.clip_preprocessing(image_tensor.to(encoder_device))       # resize 224, (x - mean) / std
print("CLIP mean/std:", [round(m, 4) for m in comps.clip_preprocessing.mean], [round(s, 4) for s in comps.clip_preprocessing.std])
with torch.no_grad():
    crossattn = encoder(clip_pixels.to(encoder_dtype)).image_embeds.unsqueeze(1)
print(f"CLIP input {tuple(clip_pixels.shape)} -> image embedding (crossattn) {tuple(crossattn.shape)}")
# %% [markdown]
# ### 2.3 What the image looks like: the latent of the noise-augmented image (concat)
#
# The image in [-1, 1] plus `cond_aug` times Gaussian noise (the **first** random draw of the run), encoded by
# the VAE; we take the mode of the encoder's Gaussian. This latent is concatenated to *every* frame's noisy
# latent, so the UNet sees 4<!-- r:latent_shape[2] --> + 4<!-- r:latent_shape[2] --> = 8<!-- r:unet_in_channels --> input channels. It is **not** multiplied by the latent scale 0.18215 (sgm
# and diffusers both leave it unscaled; the UNet was trained that way). In float16 the VAE encodes in float32:
# its activations overflow float16 (`force_upcast`).
# %%
params = pipe.resolve_params(num_frames=num_frames, num_steps=num_steps, height=height, width=width, seed=seed)
cond_aug, fps_id, motion_bucket_id = params["cond_aug"], params["fps_id"], params["motion_bucket_id"]
generator = torch.Generator().manual_seed(seed)                   # the pipeline's generator: CPU, from the seed
vae = comps.vae
vae_device, vae_dtype = next(vae.parameters()).device, next(vae.parameters()).dtype
pixels = image_tensor * 2 - 1                                       # [0, 1] -> [-1, 1]
cond_noise = torch.randn(pixels.shape, generator=generator)         # first random draw
noisy_image = (pixels + cond_aug * cond_noise).to(vae_device)
upcast = vae_dtype == torch.float16 and vae.config.force_upcast
with torch.no_grad():
    if upcast:
        torch.nn.Module.to(vae, dtype=torch.float32)
    image_latent = vae.encode(noisy_image.to(torch.float32 if upcast else vae_dtype)).latent_dist.mode()
    if upcast:
        torch.nn.Module.to(vae, dtype=vae_dtype)
concat = image_latent.to(crossattn.dtype).unsqueeze(1).repeat(1, num_frames, 1, 1, 1)
print(f"cond_aug {cond_aug}: image latent {tuple(image_latent.shape)} -> concat (repeated per frame) {tuple(concat.shape)}")
print(f"latent scale (vae.config.scaling_factor): {comps.latent_scaling}; "
      f"std of the unscaled image latent {image_latent.float().std():.3f}")
# %% [markdown]
# ### 2.4 The micro-conditioning: `added_time_ids`
#
# Three numbers describing the clip the model should imitate: `[fps_id, motion_bucket_id, cond_aug]` (frames per
# second minus one, the amount of motion 0-255, and the noise added in section 2.3). The UNet embeds each one
# sinusoidally and adds them to its noise-level embedding.
# %%
vector = torch.tensor([[fps_id, motion_bucket_id, cond_aug]], dtype=crossattn.dtype, device=crossattn.device)
cond = {"crossattn": crossattn, "concat": concat, "vector": vector}
print(f"added_time_ids {vector.tolist()} {tuple(vector.shape)}")
# %% [markdown]
# ### 2.5 The unconditional branch
#
# Classifier-free guidance needs the model's prediction *without* the image: SVD was trained with the image
# conditioning dropped now and then, and at sampling time the unconditional branch **zeroes the CLIP embedding
# and the image latent and keeps the three micro-conditioning numbers** (so guidance amplifies "this image",
# not "this much motion").
# %%
uncond = {"crossattn": torch.zeros_like(crossattn), "concat": torch.zeros_like(concat), "vector": vector}
print({k: (tuple(v.shape), "zeros" if not v.any() else "kept") for k, v in uncond.items()})
# %% [markdown]
# ### 2.6 The start: pure noise at sigma_max, and the schedule
#
# The **second** random draw: Gaussian noise of the latent video's shape `(1, T, C, H/f, W/f)` (SVD: 4 channels,
# f = 8; both read from the VAE's config, `comps.latent_shape`). SVD uses
# `VScalingWithEDMcNoise` preconditioning, whose sampler starts at `sqrt(sigma_max^2 + 1) * n` (the noisy latent
# has variance `sigma^2 + sigma_data^2` with `sigma_data = 1`), with `sigma_max = 700`. The noise levels follow
# Karras' schedule with `rho = 7`, ending at 0. Guidance rises linearly over the frames.
# %%
noise = torch.randn(comps.latent_shape(num_frames, height, width), generator=generator).to(pipe.device)
sigmas = edm.karras_sigmas(num_steps, spec.sigma_min, spec.sigma_max, spec.rho)
x = noise * (sigmas[0] ** 2 + 1) ** 0.5
guidance_scales = edm.linear_guidance(num_frames, params["min_guidance"], params["max_guidance"])
print(f"initial latents {tuple(x.shape)}, std {x.std():.1f} (= sqrt(700^2 + 1) times that of n)")
print("sigmas:", [round(float(s), 3) for s in sigmas])
print("guidance per frame:", [round(float(s), 3) for s in guidance_scales])
# %% [markdown]
# ### 2.7 The loop: Euler steps of the probability-flow ODE
#
# Per step: run the UNet once on `[uncond, cond]` stacked as a batch of two (cheaper than two calls), mix the two
# predictions with the per-frame guidance scale, turn the network's v-prediction into the denoised latent
# (`svd_lab.sampling.edm`'s preconditioning: `D = c_skip x + c_out F(c_in x, c_noise)`), and take an Euler step
# `x <- x + (sigma_next - sigma) (x - D) / sigma`.
# %%
denoiser = edm.Denoiser(conditioning.UNetNetwork(comps.unet), edm.v_scaling_preconditioning)
both = {k: torch.cat([uncond[k], cond[k]]) for k in cond}           # batch [uncond, cond]
scales = guidance_scales.to(pipe.device).view(1, -1, 1, 1, 1)       # one scale per frame
first_step = {}
with torch.no_grad():
    for i in range(num_steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        raw_uncond, raw_cond = denoiser.raw(torch.cat([x, x]), sigma, both).chunk(2)
        raw = raw_uncond + scales * (raw_cond - raw_uncond)            # classifier-free guidance
        if i == 0:
            first_step = {"raw_uncond": raw_uncond, "raw_cond": raw_cond, "raw": raw}
        denoised = denoiser.combine(x, raw.to(x.dtype), sigma)
        derivative = (x - denoised) / sigma                             # dx/dsigma of the ODE
        x = x + derivative * (sigma_next - sigma)
        if i in (0, num_steps // 2, num_steps - 1):
            print(f"step {i + 1:>2}/{num_steps}: sigma {float(sigma):8.3f} -> {float(sigma_next):7.3f}, "
                  f"latent std {x.std():.3f}")
latents_by_hand = x
print("latents", tuple(latents_by_hand.shape))
# %% [markdown]
# ### 2.8 Decoding, `decoding_t` frames at a time
#
# Undo the latent scale (divide by 0.18215) and decode. The temporal decoder mixes the frames *within* a chunk
# (its 3D convolutions see neighbouring frames), so it decodes `decoding_t` frames together (14 in the reference
# script; fewer when GPU memory is short).
# %%
decoding_t = min(params["decoding_t"], num_frames)
z = 1 / comps.latent_scaling * latents_by_hand.flatten(0, 1)       # (T, C, h, w)
chunks = []
with torch.no_grad():
    for start in range(0, z.shape[0], decoding_t):
        chunk = z[start:start + decoding_t].to(vae_device, vae_dtype)
        decoded = (vae.decode(chunk, num_frames=chunk.shape[0]) if comps.decoder == "temporal" else vae.decode(chunk))
        chunks.append(decoded.sample.float())
frames_by_hand = (torch.cat(chunks) * 0.5 + 0.5).clamp(0, 1)        # (T, 3, H, W) in [0, 1]
print(f"decoded in chunks of {decoding_t}: frames {tuple(frames_by_hand.shape)}")
# %% [markdown]
# ### 2.9 The same through `pipe.run`, and the check
#
# `pipe.run` does all of the above (plus memory planning and out-of-memory retries) and returns the latents, the
# frames, a `Video` and every parameter used.
# %%
generation = pipe.run(str(image_path), num_frames=num_frames, num_steps=num_steps, height=height, width=width,
                      seed=seed, progress=False)
video = generation.video
by_hand_vs_pipeline = (frames_by_hand.cpu() - generation.frames).abs().max().item()
latent_difference = (latents_by_hand.float().cpu() - generation.latents).abs().max().item()
print(f"largest difference, by hand vs pipe.run: latents {latent_difference:.2e}, frames {by_hand_vs_pipeline:.2e}")
assert by_hand_vs_pipeline < 1e-5, "the unrolled algorithm should equal pipe.run"
print("identical, bit for bit" if by_hand_vs_pipeline == 0 else "equal up to float rounding")
display.show_video(video, caption=f"{version}, {resolved_profile} profile, seed {seed}")
# %%
display.frame_grid(video, title=f"the {video.num_frames} frames ({resolved_profile} profile)")
# %% [markdown]
# ### 2.10 Inside the UNet: an image UNet with temporal layers in between
#
# SVD's UNet is Stable Diffusion 2.1's image UNet, which it was initialised from, with temporal layers added:
# after every spatial ResNet block a temporal one (a 3-D convolution over neighbouring frames); after every spatial
# transformer (self-attention within a frame, cross-attention to the CLIP embedding) a temporal transformer
# (attention across all frames at each latent pixel, with a frame-position embedding); and after each pair a learned
# blend, `out = alpha * spatial + (1 - alpha) * temporal`. SVD was trained in three stages (Blattmann et al. 2023):
# image pretraining (the SD 2.1 weights), video pretraining on a curated set of short clips at low resolution
# (filtered for motion, text and aesthetics), and fine-tuning on fewer, high-quality clips at 576x1024. The
# parameters of the full-size UNet by kind of layer, counted on the `meta` device (shapes only, no memory):
# %%
from svd_lab.svd import anatomy
from svd_lab.svd.components import build_components

full_unet = build_components("full", version, device="meta").unet
groups = anatomy.parameter_groups(full_unet)
total = sum(groups.values())
for kind, count in groups.items():
    print(f"{kind:<58}{count / 1e6:>9.1f} M  {count / total:>6.1%}")
temporal_share = (groups["temporal ResNet (3-D conv over frames)"]
                  + groups["temporal attention (across frames)"]) / total
print(f"{'total':<58}{total / 1e6:>9.1f} M; the temporal layers are {temporal_share:.0%} of it")
# %% [markdown]
# One temporal transformer block of the model loaded here: attention whose tokens are the frames at one latent pixel.
# %%
name, block = next((n, m) for n, m in comps.unet.named_modules() if n.endswith("temporal_transformer_blocks.0"))
print(name)
print(block)
# %% [markdown]
# Which layers mix frames? Change frame 0 at the input of each layer (with the inputs it saw in one UNet call) and
# measure how much the *other* frames' outputs move, relative to frame 0's own change. A layer that works frame by
# frame leaves them exactly as they were.
# %%
unet_dtype = next(comps.unet.parameters()).dtype
unet_input = torch.cat([x, cond["concat"]], dim=2).to(pipe.device, unet_dtype)    # (1, T, 8, h, w)
unet_cond = {"timestep": edm.v_scaling_preconditioning.noise_level(sigmas[0]).to(pipe.device),
             "encoder_hidden_states": cond["crossattn"].to(unet_dtype),
             "added_time_ids": cond["vector"].to(unet_dtype)}
mixing = anatomy.frame_mixing(comps.unet, unet_input, unet_cond)
by_kind = {}
for row in mixing:
    by_kind.setdefault(row.kind, []).append(row.leak)
for kind, leaks in by_kind.items():
    verdict = "mixes frames" if max(leaks) > 1e-6 else "frame by frame"
    print(f"{kind:<58}{len(leaks):>3} layers  other frames move {max(leaks):.1e} x  -> {verdict}")
# %% [markdown]
# ### Exercise 1 · Guidance by hand
#
# At the first step the loop kept `first_step["raw_uncond"]` and `first_step["raw_cond"]`, the UNet's two
# predictions, each `(1, T, C, h, w)`. Compute the guided prediction from them and `guidance_scales` (one scale
# per frame, shape `(T,)`), without looking at section 2.7. Watch the broadcasting.
# %%
my_guided = None   # your answer: a tensor shaped like first_step["raw_cond"]
# %% tags=["solution"]
# Solution (click to reveal)
if solutions:
    g = guidance_scales.to(first_step["raw_cond"].device).view(1, -1, 1, 1, 1)
    my_guided = first_step["raw_uncond"] + g * (first_step["raw_cond"] - first_step["raw_uncond"])
# %%
exercises.check("guidance_by_hand", my_guided,
                lambda a: a.shape == first_step["raw"].shape and torch.allclose(a, first_step["raw"]))
# %% [markdown]
# ## 3. The knobs: fps_id, motion_bucket_id, cond_aug, decoding_t
#
# SVD was trained with *micro-conditioning*: numbers describing each training clip, fed to the UNet next to the
# noise level. At sampling time you choose them:
#
# - **motion_bucket_id** (0-255, default 127<!-- r:svd_reference[motion_bucket_id] -->): how much motion. The small model
#   was trained on pans whose speed is proportional to it (0.2<!-- r:pan_speed_at_255 --> image widths per second at
#   motion_bucket_id 255).
# - **fps_id** (default 6<!-- r:svd_reference[fps_id] -->): the frame rate, minus one. At the same speed a lower frame rate means a bigger step
#   between frames: per-frame step = speed / (fps_id + 1). The saved video plays at fps_id + 1 frames per second.
# - **cond_aug** (default 0.02<!-- r:svd_reference[cond_aug] -->): the noise added to the conditioning image. More noise makes the video follow the
#   image less literally (and the real SVD move more); 0.02<!-- r:svd_reference[cond_aug] --> keeps it faithful.
# - **decoding_t** (default 14<!-- r:svd_reference[decoding_t] -->): frames decoded at once. It changes the result (the temporal decoder mixes frames
#   within a chunk: measured at the end of this section) and it is what runs out of GPU memory first.
#
# ### A motion_bucket_id sweep, measured
#
# Same image, same seed, only the motion bucket changes. We measure the motion in pixels, between **consecutive**
# frames: both frames are standardised (a change of colour or brightness is not motion), phase correlation finds the
# whole-pixel shift, and a few Gauss-Newton steps refine it to a fraction of a pixel (`svd_lab.small.metrics`). A
# video's motion is the *median* of its consecutive shifts, so a video that stands still and jumps once does not
# pass for a pan; the plot below shows every shift, accumulated over time. On the small profile the training
# data's rule says what to expect (dashed). Look at the last frames as well: a true pan keeps the picture's colours
# (new content enters at one edge only), so the printed colour drift of a fast video should stay as small as a slow
# one's. Here it does: the drift stays small at every speed. Guidance is what drives it on this model: the record of
# its weights ends the guidance ramp at 1.5<!-- r:run_parameters[max_guidance] --> instead of the svd version's 2.5<!-- r:svd_reference[max_guidance] -->, with which the last frames of the
# fastest pans drift, the coffee's most (README's sweep table: the colour error, (g)). Small changes remain: in the
# batch made with `svd_lab.batch` further down, in the last frames of the astronaut's fast pan a dark purplish-grey
# patch grows up the right edge from the bottom-right corner, where new content enters beside the orange suit, and
# the top-right corner turns pale green; the face keeps its colour.
# %%
def measured_step(generated) -> float:
    """Pixels per frame of a generated video (frames (T, 3, H, W) in [0, 1]); positive = content moving left."""
    return displacement(generated.frames)


def requested_step(bucket: int, fps: int) -> float:
    """What the small model's training clips did at this bucket and fps_id (pixels per frame at this width)."""
    return float(pan_data.speed_to_step(bucket, fps, width))


sweep = {}
for bucket in motion_buckets:
    sweep[bucket] = pipe.run(str(image_path), num_frames=num_frames, num_steps=num_steps, height=height, width=width,
                             seed=seed, motion_bucket_id=bucket, progress=False)
IPython.display.display(display.compare([g.video for g in sweep.values()], [f"motion_bucket_id {b}" for b in sweep],
                                        title=f"motion_bucket_id sweep ({resolved_profile} profile, seed {seed})"))
motion = {b: measured_step(g) for b, g in sweep.items()}


def colour_drift(generated) -> float:
    """How far the last frame's mean colour moved from frame 0's (0..1, averaged over R, G, B)."""
    means = generated.frames.float().mean(dim=(2, 3))          # (T, 3)
    return float((means[-1] - means[0]).abs().mean())


for b, m in motion.items():
    expected = f", training rule {requested_step(b, fps_id):.2f}" if resolved_profile == "small" else ""
    print(f"motion_bucket_id {b:>3}: {m:5.2f} pixels per frame measured{expected}; colour drift to the last frame "
          f"{colour_drift(sweep[b]):.3f}")
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 3.2))
for b, g in sweep.items():
    accumulated = [0.0]
    for shift in frame_shifts(g.frames):
        accumulated.append(accumulated[-1] + shift)
    line, = ax.plot(range(len(accumulated)), accumulated, marker="o", label=f"bucket {b}")
    if resolved_profile == "small":
        ax.plot(range(len(accumulated)), [t * requested_step(b, fps_id) for t in range(len(accumulated))], ls="--",
                color=line.get_color())
ax.set(xlabel="frame t", ylabel="content moved left (px)", title="measured shift, accumulated (dashed: training rule)")
ax.legend()
plt.show()
# %% [markdown]
# ### fps_id: the same speed, sampled at two frame rates
# %%
fps_sweep = {f: pipe.run(str(image_path), num_frames=num_frames, num_steps=num_steps, height=height, width=width,
                         seed=seed, motion_bucket_id=191, fps_id=f, progress=False) for f in (6, 12)}
fps_motion = {f: measured_step(g) for f, g in fps_sweep.items()}
for f, m in fps_motion.items():
    expected = f", training rule {requested_step(191, f):.2f}" if resolved_profile == "small" else ""
    print(f"fps_id {f:>2} (bucket 191): {m:5.2f} pixels per frame measured{expected}")
# %% [markdown]
# ### Exercise 2 · The frame-rate effect: predict, measure, explain
#
# The training clips moved `speed / (fps_id + 1)` pixels per frame. **Predict**, before looking at the numbers
# above: by what factor should the per-frame displacement at fps_id 12<!-- r:fps_ids[1] --> be *smaller* than at
# fps_id 6<!-- r:fps_ids[0] -->? Give the ratio displacement(12<!-- r:fps_ids[1] -->) /
# displacement(6<!-- r:fps_ids[0] -->) as a number. Then **measure** the model's ratio from `fps_motion` (measured
# above), and **explain** the gap by comparing each measured step with what the training rule asks
# (`requested_step(191, fps_id)`): choose one sentence.
#
# - `"a"`: the measured ratio is above the prediction: the model falls further short of the rule at fps_id
#   6<!-- r:fps_ids[0] --> (the larger step) than at 12<!-- r:fps_ids[1] -->;
# - `"b"`: the measured ratio is below the prediction: the model falls further short of the rule at fps_id
#   12<!-- r:fps_ids[1] --> (the smaller step);
# - `"c"`: the two ratios agree within 0.01<!-- r:fps_ratio_agreement -->: the model follows the rule at both frame
#   rates.
# %%
my_ratio = None        # your prediction, e.g. 0.5
my_measured = None     # the model's ratio, from fps_motion
my_gap = None          # "a", "b" or "c"
# %% tags=["solution"]
# Solution (click to reveal)
if solutions:
    my_ratio = (6 + 1) / (12 + 1)      # the step is speed / fps, fps = fps_id + 1: 7 / 13
    my_measured = fps_motion[12] / fps_motion[6]
    for f in (6, 12):
        print(f"fps_id {f}: measured {fps_motion[f]:.3f}, rule {requested_step(191, f):.3f}, "
              f"{fps_motion[f] / requested_step(191, f):.1%} of the rule")
    my_gap = "a" if my_measured > my_ratio + 0.01 else "b" if my_measured < my_ratio - 0.01 else "c"
# %%
fps_ids = sorted(fps_motion)
fps_ratio_agreement = 0.01
predicted_ratio = (fps_ids[0] + 1) / (fps_ids[1] + 1)
measured_ratio = fps_motion[fps_ids[1]] / fps_motion[fps_ids[0]] if fps_motion[fps_ids[0]] else float("nan")
# the explanation the measurements support: compare each measured step with the rule's
true_gap = ("c" if abs(measured_ratio - predicted_ratio) <= fps_ratio_agreement else
            "a" if measured_ratio > predicted_ratio else "b")


def _fps_right(a) -> bool:
    prediction, measured, gap = a
    return (abs(float(prediction) - predicted_ratio) < 0.01 and abs(float(measured) - measured_ratio) < 1e-6
            and gap == true_gap)


exercises.check("fps_ratio", (my_ratio, my_measured, my_gap) if my_ratio is not None else None, _fps_right)
# %% [markdown]
# ### Exercise 3 · Ask for a speed, then measure it
#
# The small model was trained with a rule: at `motion_bucket_id` b and `fps_id` f the content moves
# `pan_data.speed_to_step(b, f, width)` pixels per frame (`requested_step` above). **Invert** the rule: which bucket
# should make the rocket move 1.2<!-- r:target_step --> px per frame at fps_id 6<!-- r:fps_ids[0] -->? **Generate**
# that video with `pipe.run` (same image, seed and size as above) and **measure** it with `measured_step`. The check
# generates it again, measures it with the same estimator (`svd_lab.small.metrics`: sub-pixel phase correlation of
# consecutive frames, the median shift) and compares your numbers with the training rule: your bucket must ask for
# the target within 5%<!-- r:target_tolerance*100 -->, your measurement must be the estimator's, and on the small
# profile the model must move within 25%<!-- r:rule_tolerance*100 --> of what the rule asks. Then try your own photo
# (the parameter `image`).
# %%
target_step = 1.2          # pixels per frame at fps_id 6
my_speed = None            # your answer: (bucket, measured pixels per frame)
# %% tags=["solution"]
# Solution (click to reveal)
if solutions:
    _bucket = round(target_step / requested_step(255, 6) * 255)     # the rule is proportional to the bucket
    _video = pipe.run(str(image_path), num_frames=num_frames, num_steps=num_steps, height=height, width=width,
                      seed=seed, motion_bucket_id=_bucket, fps_id=6, progress=False)
    my_speed = (_bucket, measured_step(_video))
    print(f"bucket {_bucket}: rule {requested_step(_bucket, 6):.2f}, measured {my_speed[1]:.2f} px/frame")
# %%
target_tolerance, rule_tolerance = 0.05, 0.25


def _speed_right(a) -> bool:
    bucket, measured = int(a[0]), float(a[1])
    rule = requested_step(bucket, 6)
    check = measured_step(pipe.run(str(image_path), num_frames=num_frames, num_steps=num_steps, height=height,
                                   width=width, seed=seed, motion_bucket_id=bucket, fps_id=6, progress=False))
    print(f"bucket {bucket}: the rule asks {rule:.2f} px/frame (target {target_step}), you measured {measured:.2f}, "
          f"the estimator {check:.2f}")
    obeys = abs(check - rule) <= rule_tolerance * rule if resolved_profile == "small" else True
    return (0 <= bucket <= 255 and abs(rule - target_step) <= target_tolerance * target_step
            and abs(measured - check) < 1e-6 and obeys)


exercises.check("speed_asked", my_speed, _speed_right)
# %% [markdown]
# ### decoding_t changes the result
#
# The same latents decoded all at once (this run's `decoding_t`) and one frame at a time. The temporal decoder's 3D
# convolutions see the neighbouring frames of a chunk only, so the two differ; measured: the largest pixel
# difference, and each frame's colour error (mean colour against the input's, 0..1) for both.
# %%
frames_chunked = pipe.decode(generation.latents.to(pipe.device), decoding_t=1).cpu()
decoding_t_change = (frames_chunked - generation.frames).abs().max().item()
input_colours = image_tensor[0].expand_as(generation.frames)
colour_together = colour_error(generation.frames, input_colours)
colour_one_by_one = colour_error(frames_chunked, input_colours)
print(f"decoding_t {generation.params['decoding_t']} vs 1: largest pixel difference {decoding_t_change:.4f} "
      f"({'the temporal decoder mixes frames' if comps.decoder == 'temporal' else 'per-frame decoder'})")
print("colour error per frame, decoded together:", [round(float(v), 3) for v in colour_together])
print("colour error per frame, one at a time:   ", [round(float(v), 3) for v in colour_one_by_one])
# %% [markdown]
# ### Many videos at once: `svd_lab.batch`
#
# Liked one video and want fifty? `svd_lab.batch` makes one video per (image, seed, motion bucket) into a folder
# with a manifest (`manifest.jsonl`: every job's parameters, status and output). It is **resumable**: run it again
# and finished jobs are skipped, failed ones retried, nothing is overwritten; a bad image fails only its own jobs.
# Here: two of the course images at two motion buckets, with the pipeline already loaded.
# %%
import svd_lab

course_images = [paths.project_root() / "assets" / f"{name}.png" for name in ("rocket", "astronaut")]
batch_result = svd_lab.batch(course_images, out_dir / "batch", motion_bucket_ids=[0, 255], seeds=[seed], pipe=pipe,
                             num_frames=num_frames, num_steps=num_steps, width=width, height=height)
IPython.display.display(batch_result)      # the manifest as a table (plain text outside a notebook)
# %% [markdown]
# In a shell the same runs on every GPU of a machine (or several CPU processes), the jobs split between
# processes by Hugging Face `accelerate`:
#
# ```bash
# svd-lab batch my_photos/ --out outputs/batch --seeds 1,2,3 --motion-bucket-ids 64,127,255 --processes 4
# accelerate launch --multi_gpu --num_processes 4 -m svd_lab batch my_photos/ --out outputs/batch   # the same
# ```
# %% [markdown]
# ## 4. Memory: what fits on which GPU, and what happens when it does not
#
# In float16 the three networks take about 4.5 GB; sampling adds the UNet's activations for twice as many images as frames
# (guidance batches the conditional and unconditional passes), and decoding adds the VAE decoder's activations,
# which grow with decoding_t. The doctor and the pipeline plan this from the free GPU memory:
# %%
from svd_lab import memory

print(f"{'free VRAM':>10} {'decoding_t':>11} {'CPU offload':>12}   (svd_xt, 25 frames at 576x1024)")
for gib in (8, 12, 16, 24, 40, 80):
    plan = memory.plan_for_free_vram(gib * memory.GIB, 25, 576, 1024)
    print(f"{gib:>7} GiB {plan.decoding_t:>11} {'yes' if plan.cpu_offload else 'no':>12}")
print("\nthis run:", generation.params["memory_plan"])
# %% [markdown]
# If the GPU still runs out of memory, the pipeline frees it and retries **once** with safer settings (smaller
# decoding_t, model CPU offload, UNet forward chunking), recording what happened in `params["oom_fallback"]`. If
# that fails too, it raises `SVDOutOfMemoryError` naming settings expected to fit, for example:
# %%
print(memory.fitting_settings(6 * memory.GIB, 25, 576, 1024))
print("this run needed a fallback:", generation.params["oom_fallback"] or "no")
# %% [markdown]
# ## 5. Saving, like the reference script
#
# The reference script numbers its outputs `000000.mp4`, `000001.mp4`, ... and never overwrites one. An mp4 is
# read back to check that every frame was written.
# %%
saved = save_numbered(video, out_dir, conditioning_image=prepared)   # {"mp4": ..., "png": ..., "json": ...}
mp4_path = saved["mp4"]
mp4_frames = count_frames(mp4_path)
print(f"{mp4_path}: {mp4_path.stat().st_size:,} bytes, {mp4_frames} frames at {video.fps} fps")
# %% [markdown]
# ## 6. From Stability's `simple_video_sample.py` to this notebook
#
# | the reference workflow | here |
# |---|---|
# | `git clone https://github.com/Stability-AI/generative-models`, `pip install -r requirements/pt2.txt` | `make setup` (or the bootstrap cell); notebook 00 checks the machine |
# | put `svd.safetensors` in `checkpoints/` | `svd-lab download svd` (diffusers layout), or `svd-lab convert` for an sgm single file (notebook 00) |
# | `python scripts/sampling/simple_video_sample.py --input_path assets/test_image.png --version svd` | `load_pipeline(version)` and `pipe.run(image)`: section 2 unrolls it, section 2.9 checks the two agree |
# | `--decoding_t 14` (lower it when VRAM is short) | `decoding_t`, planned from free VRAM (section 4) |
# | `fps_id`, `motion_bucket_id`, `cond_aug`, `seed` arguments | the same names (section 3) |
# | `outputs/simple_video_sample/svd/000000.mp4` | `save_numbered` (section 5); GIFs and inline display in notebook 04 |
# %% [markdown]
# ## 7. Playground
#
# Everything above in one panel: pick one of the course's images or upload your own, set `motion_bucket_id`,
# `fps_id`, the number of steps, the guidance ramp (first frame → last frame) and the seed, press **Generate**. The bar
# follows the sampler's steps; below the video is its motion, measured between consecutive frames with the same
# estimator as section 3 (and, on the small profile, what the training rule asks). It drives the pipeline loaded at
# the top, so it runs the same model as the rest of this notebook, on a CPU or a GPU. Predict before each press:
# what will bucket 0 do, and bucket 255? A single step? Guidance 0? Your own photo?
# %%
from svd_lab.playground import Playground

Playground(pipe, image=image_path, num_frames=num_frames, height=height, width=width, num_steps=num_steps, seed=seed)
# %% [markdown]
# ## What you learned
#
# - SVD turns an image into three conditioning signals: CLIP's embedding (cross-attention), the VAE latent of the
#   slightly noised image (concatenated to every frame, *unscaled*), and `[fps_id, motion_bucket_id, cond_aug]`.
# - Guidance mixes a conditional and an unconditional prediction per frame; SVD's unconditional branch drops
#   the image and keeps the motion numbers.
# - Sampling is an Euler loop over Karras noise levels from `sqrt(700^2 + 1) n` to 0, then `latents / 0.18215`
#   decoded `decoding_t` frames at a time.
# - `motion_bucket_id` and `fps_id` mean speed and frame rate, and you can *measure* whether a model obeys them:
#   invert the training rule, generate, measure, and explain what differs.
#
# ## References
#
# - Blattmann et al. 2023, *Stable Video Diffusion: Scaling Latent Video Diffusion Models to Large Datasets*,
#   [arXiv:2311.15127](https://arxiv.org/abs/2311.15127); code: [Stability-AI/generative-models](https://github.com/Stability-AI/generative-models)
#   (`scripts/sampling/simple_video_sample.py`).
# - Karras et al. 2022, *Elucidating the Design Space of Diffusion-Based Generative Models* (EDM),
#   [arXiv:2206.00364](https://arxiv.org/abs/2206.00364).
# - Salimans & Ho 2022, *Progressive Distillation for Fast Sampling of Diffusion Models* (v-prediction),
#   [arXiv:2202.00512](https://arxiv.org/abs/2202.00512).
# - Ho & Salimans 2022, *Classifier-Free Diffusion Guidance*, [arXiv:2207.12598](https://arxiv.org/abs/2207.12598).
# - Rombach et al. 2022, *High-Resolution Image Synthesis with Latent Diffusion Models*,
#   [arXiv:2112.10752](https://arxiv.org/abs/2112.10752).
# - Radford et al. 2021, *Learning Transferable Visual Models From Natural Language Supervision* (CLIP),
#   [arXiv:2103.00020](https://arxiv.org/abs/2103.00020).
# - diffusers' [`StableVideoDiffusionPipeline`](https://huggingface.co/docs/diffusers/api/pipelines/svd), which
#   `tests/test_svd_equivalence.py` checks this library against.
# %% tags=["record"]
# Values the course's regression runs compare with their baselines (see tests/baselines/); nothing is shown.
frames_float = generation.frames
record("profile", resolved_profile)
record("version", version)
record("run_parameters", {k: generation.params[k] for k in ("num_frames", "num_steps", "height", "width", "fps_id",
                                                            "motion_bucket_id", "cond_aug", "decoding_t", "seed",
                                                            "min_guidance", "max_guidance")},
       tolerance="exact")
record("guidance_scales", guidance_scales, tolerance="exact")
record("sigmas", edm.karras_sigmas(num_steps, spec.sigma_min, spec.sigma_max, spec.rho), tolerance="exact")
record("latent_shape", list(generation.latents.shape))
record("video_shape", [video.num_frames, video.height, video.width, 3])
record("frame_mean", frames_float.mean().item())
record("frame_std", frames_float.std().item())
record("frame_means_per_frame", frames_float.mean(dim=(1, 2, 3)))
record("latent_std", generation.latents.std().item())
record("decoding_t_1_max_change", decoding_t_change)
record("vae_psnr_db", vae_psnr)
record("thumbnail_psnr_db", thumbnail_psnr)
record("colour_error_decoded_together", colour_together)
record("colour_error_one_by_one", colour_one_by_one)
record("sweep_motion", {str(b): m for b, m in motion.items()})
record("fps_motion", {str(f): m for f, m in fps_motion.items()})
record("by_hand_vs_pipeline", by_hand_vs_pipeline)
record("batch_counts", batch_result.counts)
record("mp4_frames", mp4_frames)
record("mp4_bytes", mp4_path.stat().st_size)
record("frame_size", [height, width])
record("display_min_width", display.MIN_DISPLAY_WIDTH)
record("svd_reference", get_version("svd").defaults())
record("unet_in_channels", comps.unet.config.in_channels)
record("pan_speed_at_255", pan_data.SPEED_AT_255)
record("fps_ids", fps_ids)
record("fps_ratio_agreement", fps_ratio_agreement)
record("fps_ratios", {"predicted": predicted_ratio, "measured": measured_ratio})
record("target_step", target_step)
record("target_tolerance", target_tolerance)
record("rule_tolerance", rule_tolerance)
