# %% [markdown]
# # 00 · Setup: the machine, the kernel and the checkpoints
#
# This course teaches image-to-video diffusion in five notebooks:
#
# | notebook | what you learn |
# |---|---|
# | **00 setup** (this one) | check the machine, the Jupyter kernel and the model checkpoints |
# | 01 Sora and DiT | diffusion from scratch on 1-D data, what OpenAI's Sora report claims, the Diffusion Transformer, a mini world model you sample, measure and train live |
# | 02 latent diffusion | why diffusion runs on compressed latents, the EDM noise schedule, noising, preconditioning, guidance measured |
# | 03 SVD sampling | Stable Video Diffusion unrolled step by step, checked against the library, and what each knob does (measured) |
# | 04 GIF and display | turning the video into an mp4/GIF, showing it inline, checking frames and file sizes |
#
# Each notebook has exercises: a task, a check that says "correct" or "not yet", and a collapsed solution.
#
# Every notebook is a thin driver over the `svd_lab` library: the code you read here calls tested functions
# instead of re-implementing models. Each one runs top to bottom on a CPU (the "tiny" and "small" profiles, seconds)
# and on a CUDA GPU with the real checkpoints (the "full" profile).
#
# Running on Huawei ModelArts CodeLab, or where GitHub and the Hugging Face hub are slow or blocked? The
# [ModelArts guide](../docs/modelarts.md) says which GPU flavour to pick, where files persist, which mirrors to set
# (`SVD_LAB_SOURCE`, `PIP_INDEX_URL`, `HF_ENDPOINT`) and how to get the weights from ModelScope or OBS. This course
# also exists in Simplified Chinese: [notebooks/zh-CN/](zh-CN/) (简体中文版).
# %% [bootstrap]
# %% [markdown]
# ## Parameters
#
# The next cell holds the notebook's parameters (it is tagged `parameters`, so papermill and `svd-lab course run`
# can override them). `None` means "the course's default folder".
# %% tags=["parameters"]
profile = "auto"          # "auto" picks "full" on a CUDA GPU with a checkpoint, else the CPU profiles
device = "auto"           # "auto", "cpu" or "cuda"
checkpoints_dir = None    # None: checkpoints/ in the course folder, or $SVD_LAB_CHECKPOINTS
output_dir = None         # None: outputs/notebooks/00_setup
solutions = False         # True: the exercises' solutions are filled in
language = "en"           # "en" or "zh-CN" (set by the zh-CN edition): hints, doctor and profile lines
# %%
from pathlib import Path

import svd_lab
from svd_lab import exercises, messages, paths
from svd_lab.record import record

messages.set_language(language)

ckpt_dir = Path(checkpoints_dir) if checkpoints_dir else paths.checkpoints_dir()
out_dir = Path(output_dir) if output_dir else paths.outputs_dir() / "notebooks" / "00_setup"
print(f"svd_lab {svd_lab.__version__} imported from {Path(svd_lab.__file__).parent}")
print(f"checkpoints folder: {ckpt_dir}")
print(f"outputs folder:     {out_dir}")
# %% [markdown]
# ## 1. The doctor
#
# `svd_lab.doctor()` inspects this machine: Python, torch and its build (CPU or CUDA), the GPU and its free
# memory, disk space, ffmpeg (needed to write mp4), the libraries the course imports, the Jupyter kernel and the
# checkpoints. Every failing line says how to fix it. The same report is printed by `svd-lab doctor` in a shell
# (and is the first step of `make run`).
# %%
from IPython.display import display

report = svd_lab.doctor(ckpt_dir)
display(report)
# %% [markdown]
# The **advice** at the bottom is what the sampling code will choose on this machine:
#
# - **profile**: `full` needs a CUDA GPU *and* a downloaded checkpoint. Without them the notebooks use the CPU
#   profiles: `tiny` (SVD's real architecture shrunk to ~2.6<!-- r:tiny_parameters/1e6 --> M parameters with *untrained* weights: the pipeline
#   runs end to end in seconds, but its videos are structured noise, not pictures) and `small` (SVD's same three
#   network classes, sized for a CPU and *trained* by this project on camera pans over photos: the default of
#   notebooks 03 and 04 on a CPU). Notebooks 01 and 02 use the mini world model (a small DiT on bouncing balls).
# - **dtype**: float16 on a GPU halves memory; a CPU computes in float32.
# - **decoding_t**: how many frames the video VAE decodes at once. It is the usual cause of out-of-memory
#   errors with real SVD; notebook 03 comes back to it.
# %%
resolved_profile = report.advice.get("profile", "tiny").split()[0] if profile == "auto" else profile
print("required checks passed" if report.ok else f"{len(report.problems)} required check(s) failed: see 'fix' above")
print(f"profile for this machine: {resolved_profile}")
# %% [markdown]
# ## 2. The Jupyter kernel
#
# The notebooks ask for the kernel **Python (svd-lab)**: the Python environment in which `svd_lab` is installed.
# `make setup` installs it; by hand: `svd-lab kernel install --sys-prefix` (into the active virtual environment)
# or `--user`. In JupyterLab choose *Kernel → Change Kernel → Python (svd-lab)* if another one is selected.
# %%
import sys

from svd_lab.kernel import DISPLAY_NAME, installed_kernel

kernel_path = installed_kernel()
print(f"this notebook runs on: {sys.executable}")
print(f"kernel {DISPLAY_NAME!r}: " + (f"installed at {kernel_path}" if kernel_path else
                                      "not installed -> svd-lab kernel install --sys-prefix"))
# %% [markdown]
# ## 3. Checkpoints
#
# Stability AI released several Stable Video Diffusion checkpoints. `svd` makes 14<!-- r:registry_frames[svd] --> frames, `svd_xt` 25<!-- r:registry_frames[svd_xt] -->; the
# `*_image_decoder` variants decode every frame on its own instead of with the temporal VAE decoder; `svd_xt_1_1`
# was fine-tuned for fixed conditioning (6 fps, motion bucket 127). Each is available in the *diffusers* layout
# (a folder per network) and/or as one *sgm* file (Stability's own format, which `svd_lab` converts).
# %%
from svd_lab.checkpoints import REGISTRY


def gigabytes(n):
    return f"{n / 1e9:.1f} GB" if n else "-"


print(f"{'name':<22}{'frames':>7}  {'download':>9}  {'what is downloaded':<24}{'gated':>5}  licence")
for spec in REGISTRY.values():
    if not spec.downloadable:
        size, what = None, "-"
    elif spec.size("diffusers", "fp16"):
        size, what = spec.size("diffusers", "fp16"), "diffusers folder, fp16"
    else:   # the image-decoder variants exist only as one sgm file in fp32
        size, what = spec.size("sgm"), "sgm single file, fp32"
    print(f"{spec.name:<22}{spec.num_frames or '-':>7}  {gigabytes(size):>9}  {what:<24}{'yes' if spec.gated else 'no':>5}"
          f"  {spec.licence}")
# %% [markdown]
# Which of them are on this machine (a checkpoint is *usable* when every file is present and complete):
# %%
from svd_lab.checkpoints import present_checkpoints

found = present_checkpoints(ckpt_dir)
for ckpt in found:
    print(ckpt)
if not found:
    print(f"no checkpoints in {ckpt_dir}")
# %% [markdown]
# ### How to download
#
# Only the `full` profile needs a checkpoint (and a CUDA GPU with about 16 GB; notebook 03 shows how to fit less).
# In a shell, from the course folder:
#
# ```bash
# svd-lab models              # the table above, with what is present
# svd-lab download svd        # diffusers layout, fp16 weights (~4.5 GB) into checkpoints/svd/
# svd-lab download svd_xt     # the 25-frame model
# ```
#
# A download is verified file by file (sizes and checksums) and either completes or says exactly what went wrong;
# running it again resumes. `svd_xt_1_1` is *gated*: accept its licence on the Hugging Face model page, then log in
# (`hf auth login`, or set `HF_TOKEN`). From mainland China set `HF_ENDPOINT=https://hf-mirror.com` first, or
# download SVD-XT from ModelScope: `svd-lab download svd_xt --source modelscope`. Inside ModelArts, copy from your
# OBS bucket: `svd-lab download svd --from obs://bucket/path` (see the [ModelArts guide](../docs/modelarts.md)).
# %% [markdown]
# ### Exercise 1 · Weights in memory: predict, then compute
#
# A parameter is one number: 4 bytes in float32, 2 in float16. **Predict** first, without computing: does the whole
# of SVD (UNet, temporal VAE and CLIP image encoder) fit in the memory of a 16 GB card (a T4 or V100) in float32? In
# float16? Then **compute** the gigabytes (`1 GB = 1e9 bytes`) of its weights in both precisions from the parameter counts
# (`FULL_PARAMETER_COUNTS` in `svd_lab.svd.configs`: counted by building the networks on the `meta` device; the
# `image_vae` entry belongs to the image-decoder variants, leave it out). Compare with the fp16 download in the
# table above: a checkpoint file *is* its parameters. What your answer leaves out is the activations of sampling,
# which notebook 03 measures.
# %%
from svd_lab.svd.configs import FULL_PARAMETER_COUNTS

my_weights_gb = None   # your answer: {"fp32": gigabytes, "fp16": gigabytes}
# %% tags=["solution"]
# Solution (click to reveal)
if solutions:
    _svd_parameters = sum(FULL_PARAMETER_COUNTS[k] for k in ("unet", "vae", "image_encoder"))
    my_weights_gb = {"fp32": _svd_parameters * 4 / 1e9, "fp16": _svd_parameters * 2 / 1e9}
    print(f"{_svd_parameters:,} parameters: {my_weights_gb['fp32']:.2f} GB in float32, "
          f"{my_weights_gb['fp16']:.2f} GB in float16 (the fp16 download above)")
# %%
def _weights_right(a) -> bool:
    """Both precisions within 1% of parameters x bytes per parameter (the image-only VAE left out)."""
    n = sum(FULL_PARAMETER_COUNTS[k] for k in ("unet", "vae", "image_encoder"))
    return all(abs(float(a[k]) - n * size / 1e9) <= 0.01 * n * size / 1e9 for k, size in (("fp32", 4), ("fp16", 2)))


exercises.check("weights_in_memory", my_weights_gb, _weights_right)
# %% [markdown]
# ### Exercise 2 · The latent video SVD-XT denoises
#
# SVD never denoises pixels: its VAE turns each frame into a smaller latent (notebook 02 says why). Work out the
# shape `(frames, channels, height, width)` of the latent video that SVD-XT's UNet denoises at its reference size,
# from the model's own configuration: the version (`get_version("svd_xt")`: frames, height, width) and the VAE's
# config (`full_vae_config()`: `latent_channels`, and one halving of height and width per down block after the
# first in `block_out_channels`). Then compute how many times fewer numbers that is than the RGB video.
# %%
from svd_lab.svd.configs import full_vae_config
from svd_lab.svd.versions import get_version

my_latent_shape = None   # your answer: a tuple (frames, channels, height, width)
my_compression = None    # your answer: values of the RGB video / values of the latent video
# %% tags=["solution"]
# Solution (click to reveal)
if solutions:
    _xt, _vae = get_version("svd_xt"), full_vae_config()
    _factor = 2 ** (len(_vae["block_out_channels"]) - 1)
    my_latent_shape = (_xt.num_frames, _vae["latent_channels"], _xt.height // _factor, _xt.width // _factor)
    my_compression = (_xt.num_frames * 3 * _xt.height * _xt.width) / (
        my_latent_shape[0] * my_latent_shape[1] * my_latent_shape[2] * my_latent_shape[3])
# %%
import math


def _latent_right(a) -> bool:
    """The shape from the configs; and the compression as a number of that shape (not the shape alone)."""
    xt, vae = get_version("svd_xt"), full_vae_config()
    down = 2 ** (len(vae["block_out_channels"]) - 1)
    shape = (xt.num_frames, vae["latent_channels"], xt.height // down, xt.width // down)
    pixels = xt.num_frames * 3 * xt.height * xt.width
    return tuple(int(v) for v in a[0]) == shape and abs(float(a[1]) - pixels / math.prod(shape)) < 1e-6


exercises.check("latent_video", (my_latent_shape, my_compression) if my_latent_shape is not None else None,
                _latent_right)
# %% [markdown]
# ## What you learned
#
# - How to check a machine for the course (`svd-lab doctor`), and what each line of its advice means.
# - Which SVD releases exist, how big they are, which one is gated, and how to download and verify one.
# - What a model costs before it runs: parameters x bytes per parameter, and the latent video its UNet denoises.
# - The three profiles: `full` (the real checkpoints, a GPU), `small` (the small SVD trained by svd-lab, any CPU), `tiny`
#   (random weights, the tests).
#
# ## References
#
# - Stability AI, [generative-models](https://github.com/Stability-AI/generative-models) (the reference SVD code)
#   and the model cards on Hugging Face: [stable-video-diffusion-img2vid](https://huggingface.co/stabilityai/stable-video-diffusion-img2vid),
#   [-xt](https://huggingface.co/stabilityai/stable-video-diffusion-img2vid-xt),
#   [-xt-1-1](https://huggingface.co/stabilityai/stable-video-diffusion-img2vid-xt-1-1).
# - [huggingface_hub download guide](https://huggingface.co/docs/huggingface_hub/guides/download) (mirrors, tokens, resume).
# %% tags=["record"]
# Values the course's regression runs compare with their baselines (see tests/baselines/); nothing is shown.
from svd_lab.svd.configs import TINY_PARAMETER_COUNTS

record("profile", resolved_profile)
record("registry", sorted(REGISTRY))
record("registry_frames", {name: spec.num_frames for name, spec in REGISTRY.items()})
record("kernel_installed", kernel_path is not None)
record("tiny_parameters", sum(TINY_PARAMETER_COUNTS[k] for k in ("unet", "vae", "image_encoder")))
record("svd_fp16_download_gb", REGISTRY["svd"].size("diffusers", "fp16") / 1e9)
# %% [markdown]
# Next: **01 · Sora and DiT**.
