# %% [markdown]
# # 03 · Stable Video Diffusion: one image in, a short video out
#
# This is what Stability AI's reference script `simple_video_sample.py` does, one readable step at a time:
# load a model, prepare an image, sample a latent video conditioned on it, decode it, save an mp4.
#
# **Profiles.** With a CUDA GPU and a downloaded checkpoint (`svd-lab download svd`), `profile = "auto"` runs the
# real model at 576x1024 (`full`). Everywhere else it runs the **tiny** profile: SVD's architecture (the same
# three networks, much narrower), about 2.6 M parameters with *random, untrained* weights, at 64x64. Every step
# below runs and every number is real, but the tiny videos show structured noise, not a moving scene: judge the
# mechanics here, the pictures on a GPU.
# %% [bootstrap]
# %% [markdown]
# ## Parameters
#
# `None` means "the default of the profile": small on the tiny profile (so this notebook runs in seconds on a
# CPU), the version's reference values on `full`.
# %% tags=["parameters"]
profile = "auto"          # "auto", "tiny" or "full"
version = "svd"           # svd, svd_xt, svd_xt_1_1, svd_image_decoder, svd_xt_image_decoder
device = "auto"           # "auto" (CUDA > MPS > CPU), "cpu", "cuda"
seed = 23                 # Stability's default seed
image = None              # None: assets/rocket.png (a public-domain SpaceX photo); or a path to your image
num_frames = None         # None: 4 on tiny; 14 (svd) or 25 (svd_xt) on full
num_steps = None          # None: 3 on tiny; 25 (svd) or 30 (svd_xt) on full
height = None             # None: 64 on tiny, 576 on full (multiples of 64)
width = None              # None: 64 on tiny, 1024 on full
motion_buckets = [1, 127, 255]   # the motion_bucket_id sweep shown side by side
output_dir = None         # None: outputs/notebooks/03_svd_sampling
# %%
from pathlib import Path

from svd_lab import display, paths
from svd_lab.record import record, reproducible
from svd_lab.sampling import edm
from svd_lab.svd.pipeline import load_pipeline
from svd_lab.svd.versions import VERSIONS, get_version
from svd_lab.video import count_frames, save_numbered

reproducible(seed)
spec = get_version(version)
pipe, choice = load_pipeline(version, profile=profile, device=device, seed=seed, progress=False)
resolved_profile = choice.profile
tiny = resolved_profile == "tiny"
num_frames = num_frames or (4 if tiny else spec.num_frames)
num_steps = num_steps or (3 if tiny else spec.num_steps)
height = height or (64 if tiny else spec.height)
width = width or (64 if tiny else spec.width)
image_path = Path(image) if image else paths.project_root() / "assets" / "rocket.png"
if not image_path.is_file():
    raise FileNotFoundError(f"no input image at {image_path}: set the parameter image to a PNG or JPEG file")
out_dir = Path(output_dir) if output_dir else paths.outputs_dir() / "notebooks" / "03_svd_sampling"
print(f"profile: {resolved_profile} ({choice.reason})")
print(f"version {version} on {pipe.device} in {str(pipe.dtype).replace('torch.', '')}: {num_frames} frames, "
      f"{num_steps} steps, {width}x{height}")
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
counts = pipe.components.parameter_counts()
print("\nparameters of the networks loaded here:", {k: f"{n / 1e6:.2f} M" for k, n in counts.items()})
# %% [markdown]
# Three networks: a **CLIP image encoder** (the image's "meaning", given to the UNet's cross-attention), a **VAE**
# (compresses each frame 8x in height and width into 4 latent channels, and decodes latents back to frames) and
# the **UNet** (denoises the latent video; Stable Diffusion 2.1's UNet with temporal layers added).
#
# ## 2. The input image
#
# The image is scaled to cover the target size and centre-cropped (width and height must be multiples of 64).
# It conditions the video twice: CLIP's embedding of it, and its VAE latent, concatenated to every frame's
# noisy latent.
# %%
prepared = pipe.prepare_image(str(image_path), width, height)
print(f"{image_path.name}: prepared at {prepared.width}x{prepared.height}")
prepared.resize((max(256, width), max(256, width) * height // width))
# %% [markdown]
# ## 3. Image in, video out
#
# `pipe.run` does the whole algorithm and returns the latents, the frames, a `Video` and every parameter used.
# %%
generation = pipe.run(str(image_path), num_frames=num_frames, num_steps=num_steps, height=height, width=width,
                      seed=seed, progress=False)
video = generation.video
print(video)
print(f"latents {tuple(generation.latents.shape)} -> frames {tuple(generation.frames.shape)}")
shown = ("version", "profile", "num_frames", "num_steps", "min_guidance", "max_guidance", "fps_id",
         "motion_bucket_id", "cond_aug", "decoding_t", "seed", "sampling_seconds", "decoding_seconds")
for key in shown:
    print(f"  {key:<18} {generation.params[key]}")
display.show_video(video, caption=f"{version}, {resolved_profile} profile, seed {seed}")
# %%
display.frame_grid(video, title=f"the {video.num_frames} frames ({resolved_profile} profile)")
# %% [markdown]
# ## 4. The knobs: fps_id, motion_bucket_id, cond_aug, decoding_t
#
# SVD was trained with *micro-conditioning*: numbers describing each training clip, fed to the UNet next to the
# noise level. At sampling time you choose them:
#
# - **fps_id** (default 6): the frame rate the video should imitate, minus one (the model was told "fps - 1").
#   A lower value asks for bigger changes between frames. The saved video plays at fps_id + 1 frames per second.
# - **motion_bucket_id** (0-255, default 127): how much motion; higher means more camera and object movement.
# - **cond_aug** (default 0.02): the noise added to the conditioning image. More noise makes the video follow the
#   image less literally and usually move more; 0.02 keeps it faithful.
# - **decoding_t** (default 14): how many frames the VAE decodes at once. The temporal decoder mixes frames
#   *within* a chunk, so it changes the result (slightly, with trained weights), and it is what runs out of GPU
#   memory first.
#
# Guidance rises linearly over the frames (notebook 02), from the version's min_guidance on the first frame to its
# max_guidance on the last:
# %%
guidance_scales = edm.linear_guidance(num_frames, spec.min_guidance, spec.max_guidance)
print("guidance per frame:", [round(s, 3) for s in guidance_scales.tolist()])
# decoding_t: decode the same latents in chunks of 1 frame instead of all at once
frames_chunked = pipe.decode(generation.latents.to(pipe.device), decoding_t=1).cpu()
decoding_t_change = (frames_chunked - generation.frames).abs().max().item()
print(f"decoding_t {generation.params['decoding_t']} vs 1: largest pixel difference {decoding_t_change:.4f} "
      f"({'the temporal decoder mixes frames' if pipe.components.decoder == 'temporal' else 'per-frame decoder'})")
# %% [markdown]
# ### A motion_bucket_id sweep
#
# Same image, same seed, only the motion bucket changes. On the full profile the camera and the smoke move more as
# the bucket rises; with the tiny random weights the differences are real but arbitrary.
# %%
sweep = {}
for bucket in motion_buckets:
    sweep[bucket] = pipe(str(image_path), num_frames=num_frames, num_steps=num_steps, height=height, width=width,
                         seed=seed, motion_bucket_id=bucket, progress=False)
display.compare(list(sweep.values()), [f"motion_bucket_id {b}" for b in sweep],
                title=f"motion_bucket_id sweep ({resolved_profile} profile, seed {seed})")
# %%
motion = {b: float(abs(v.frames[1:].astype("float32") - v.frames[:-1].astype("float32")).mean()) for b, v in sweep.items()}
for b, m in motion.items():
    print(f"motion_bucket_id {b:>3}: mean change between consecutive frames {m:6.2f} (0-255 scale)")
# %% [markdown]
# ## 5. Memory: what fits on which GPU, and what happens when it does not
#
# In float16 the three networks take about 4.5 GB; sampling adds the UNet's activations for 2 x frames images
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
# ## 6. Saving, like the reference script
#
# The reference script numbers its outputs `000000.mp4`, `000001.mp4`, ... and never overwrites one. An mp4 is
# read back to check that every frame was written.
# %%
saved = save_numbered(video, out_dir, conditioning_image=prepared)   # {"mp4": ..., "png": ..., "json": ...}
mp4_path = saved["mp4"]
mp4_frames = count_frames(mp4_path)
print(f"{mp4_path}: {mp4_path.stat().st_size:,} bytes, {mp4_frames} frames at {video.fps} fps")
# %%
# Values the course's regression runs compare with their baselines (see tests/baselines/); nothing is shown.
frames_float = generation.frames
record("profile", resolved_profile)
record("version", version)
record("run_parameters", {k: generation.params[k] for k in ("num_frames", "num_steps", "height", "width", "fps_id",
                                                            "motion_bucket_id", "cond_aug", "decoding_t", "seed")},
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
record("sweep_motion", {str(b): m for b, m in motion.items()})
record("mp4_frames", mp4_frames)
record("mp4_bytes", mp4_path.stat().st_size)
