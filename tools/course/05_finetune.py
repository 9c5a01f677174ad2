# %% [markdown]
# # 05 · Fine-tuning SVD on your own videos
#
# The question SVD users ask most is how to train it on their own clips. Stability never released SVD's training
# code, diffusers has no SVD training example and no LoRA loader for `StableVideoDiffusionPipeline`, and the
# community script (SVD_Xtend) trains only the temporal attention blocks with the motion bucket fixed at 127. This
# notebook fine-tunes a model in front of you with **SVD's own objective**, using the same command you would run on
# a folder of your own mp4s: `svd-lab finetune DATA --out DIR`.
#
# The task: the small SVD this course ships was only ever trained on content moving **left** (a camera panning
# right). We make a few clips of content moving **right**, a motion it has never made, train a LoRA adapter on them
# (`steps` optimiser steps: the time is printed), and measure the direction of its videos before and after, and with
# the adapter switched off.
# %% [bootstrap]
# %% [markdown]
# ## Parameters
# %% tags=["parameters"]
profile = "auto"          # "auto" or "small": the shipped small SVD (fine-tuning needs trained weights to start from)
device = "auto"           # training runs on the CPU here; a GPU is used when present
seed = 0
steps = 64                # optimiser steps (0.25-0.35 s each on a 2-core CPU at batch 4; printed below)
learning_rate = 1e-2
rank = 8                  # LoRA rank
clips = 8                 # training clips to generate (one more is held out for validation)
motion_bucket_id = 200    # the speed of the generated clips
sample_steps = 12         # sampling steps of every video here (the version's 25 cost twice the time; same for all)
output_dir = None         # None: outputs/notebooks/05_finetune
solutions = False         # True: the exercises' solutions are filled in
language = "en"           # "en" or "zh-CN" (set by the zh-CN edition): hints, doctor and profile lines
# %%
import shutil
from pathlib import Path

import IPython.display
import torch

from svd_lab import display, exercises, messages, paths
from svd_lab.finetune import lora
from svd_lab.finetune.demo import write_pan_clips
from svd_lab.finetune.measure import signed_motion
from svd_lab.finetune.train import FinetuneSettings, finetune, sample
from svd_lab.record import record, reproducible
from svd_lab.small.model import is_present, load_small
from svd_lab.svd.images import image_to_tensor, load_image

messages.set_language(language)

reproducible(seed)
out_dir = Path(output_dir) if output_dir else paths.outputs_dir() / "notebooks" / "05_finetune"
if out_dir.exists():
    shutil.rmtree(out_dir)          # a fresh run each time: finetune never overwrites its output
out_dir.mkdir(parents=True)
if profile not in ("auto", "small") or not is_present():
    raise RuntimeError("this notebook fine-tunes the shipped small SVD (checkpoints/small): run it from a checkout "
                       "with profile 'auto' or 'small'")
base = load_small()
size, frames = base.native_size, base.native_frames
print(f"the small SVD: {size}x{size} pixels, {frames} frames, UNet {sum(p.numel() for p in base.unet.parameters()):,} "
      "parameters")
# %% [markdown]
# ## 1. Data: a folder of videos
#
# `svd-lab finetune` reads a folder of video files (mp4, webm, gif, ...) and/or folders of frames (SVD_Xtend's layout:
# `DATA/<clip>/<frames>`). Here we write `clips + 1` short mp4s: a crop gliding over a random "dead leaves" picture,
# played so that the content moves right. Each clip is cut into windows of the model's frame count, and every window
# gets SVD's micro-conditioning **measured from the file**: `fps_id` from its frame rate, `motion_bucket_id` from
# its measured motion (the same speed scale the small SVD was trained with).
# %%
from svd_lab.finetune.data import load_windows

data_dir = out_dir / "clips"
write_pan_clips(data_dir, clips + 1, frames + 4, size, motion_bucket_id=motion_bucket_id, direction="right",
                seed=seed)
dataset = load_windows(data_dir, frames, size, size)
print(dataset.report())
display.frame_grid(dataset.frames[0].float() / 255, columns=frames, fps=int(dataset.fps_id[0]) + 1,
                   title="one training window: the content moves right")
# %% [markdown]
# ## 2. Before: which way does the small SVD move the course's images?
#
# A video of each course image (images the model never trained on) at the same motion bucket, and its measured
# motion: `signed_motion` is the median shift between consecutive frames, in pixels per frame, **positive when the
# content moves left** (the only direction the small SVD knows).
# %%
names = ["rocket", "astronaut", "coffee"]
images = {n: image_to_tensor(load_image(str(paths.project_root() / "assets" / f"{n}.png"), size, size))[0]
          for n in names}
before = {n: sample(base, images[n], frames, fps_id=6, bucket=motion_bucket_id, steps=sample_steps) for n in names}
before_dx = {n: signed_motion(v)[0] for n, v in before.items()}
print("before fine-tuning, dx in px/frame:", ", ".join(f"{n} {dx:+.2f}" for n, dx in before_dx.items()))
# %% [markdown]
# ## 3. The objective, line by line
#
# `svd-lab finetune` trains with exactly the loss that trained the small SVD (`svd_lab.small.train.svd_loss`), which
# is SVD's: for a batch of windows with clean latents `z0` (the VAE's encoding, scaled by 0.18215),
#
# 1. `cond_aug = exp(COND_AUG_LOG_MEAN + COND_AUG_LOG_STD * n)` (log-normal; the two constants are printed below):
#    noise added to the **conditioning frame** before the VAE encodes it; the same number is the third
#    `added_time_id`, so the model knows how noisy its condition was.
# 2. `crossattn = CLIP(first frame)`, `concat = VAE(first frame + cond_aug * noise)` repeated over frames; with
#    probability `drop` both are zeroed: the unconditional branch that classifier-free guidance subtracts.
# 3. `ln sigma ~ N(p_mean, p_std^2)`, `x = z0 + sigma * noise`: a noise level per window.
# 4. EDM's v-scaling preconditioning turns the UNet output `F` into a denoiser `D = c_skip x + c_out F(c_in x)`;
#    the loss `|F - (z0 - c_skip x) / c_out|^2` is EDM's weighted `|D - z0|^2` with weight `1 / c_out^2`.
#
# The code of those steps, printed from the library (nothing is redefined here):
# %%
import inspect

from svd_lab.small.data import COND_AUG_LOG_MEAN, COND_AUG_LOG_STD
from svd_lab.small.train import svd_loss

print(f"COND_AUG_LOG_MEAN = {COND_AUG_LOG_MEAN}, COND_AUG_LOG_STD = {COND_AUG_LOG_STD}; p_mean, p_std = "
      f"{FinetuneSettings().p_mean}, {FinetuneSettings().p_std}; drop = {FinetuneSettings().drop}\n")
source = inspect.getsource(svd_loss)
print(source[source.index("    b, t = z0.shape"):])
# %% [markdown]
# ## 4. Training a LoRA adapter
#
# LoRA keeps every weight of the model and learns a low-rank update `B A` (rank `r`) beside each attention
# projection (`to_q`, `to_k`, `to_v`, `to_out.0`, spatial and temporal): `y = W x + (alpha / r) * scale * B A x`.
# Attention projections alone are the usual targets for the full SVD, which has attention at every level; this small
# UNet has it only at its coarsest level and in its middle block, and makes its motion at the finer level with the
# convolutions across frames of its temporal ResNet blocks. So the adapter goes on those too (`lora.TEMPORAL_CONVS`):
# there `A` is a convolution with the base's kernel and `r` outputs and `B` a one-by-one convolution, which merge into
# one convolution exactly. `B` starts at zero, so step 0 is exactly the base model. The trainer checkpoints as it goes (a killed run continues
# where it stopped), samples a validation video from the held-out clip before and after, and writes
# `lora.safetensors`, `loss.png` and `finetune.json`.
# %%
settings = FinetuneSettings(mode="lora", steps=steps, batch=4, lr=learning_rate, rank=rank, alpha=float(rank),
                            targets=lora.DEFAULT_TARGETS + lora.TEMPORAL_CONVS, seed=seed,
                            validation_steps=sample_steps, checkpoint_every=max(steps // 4, 1))
print("adapters on:", ", ".join(settings.targets))
model = load_small()                  # a fresh copy: `base` stays the untouched model
result = finetune(data_dir, out_dir / "lora", settings, components=model, progress=False)
print(f"trainable parameters: {result.record['trainable_parameters']:,} of {result.record['parameters']:,} "
      f"({result.record['seconds']:.0f} s, {result.record['seconds_per_step']:.2f} s/step)")
IPython.display.display(IPython.display.Image(filename=str(result.out / "loss.png")))
first_val, last_val = result.record["validations"][0], result.record["validations"][-1]
display.compare([str(result.out / first_val["video"]), str(result.out / last_val["video"]),
                 str(data_dir / max(p.name for p in data_dir.glob("*.mp4")))],
                [f"before: dx {first_val['motion_px'][0]:+.2f}", f"after: dx {last_val['motion_px'][0]:+.2f}",
                 f"the held-out clip: dx {last_val['clip_motion_px'][0]:+.2f}"],
                title="validation on the held-out clip's first frame (px/frame, + = content moving left)")
# %% [markdown]
# ## 5. After: the course's images with the adapter on, and off
#
# The same sampling as in section 2, with the adapter at scale 1 (as trained) and at scale 0 ("asking for the old
# motion": the adapter switched off, which must give back the base model's video exactly; checked on the astronaut).
# A direction counts as reversed when the content now moves right by more than
# 0.2<!-- r:still_threshold --> px/frame.
# %%
still_threshold = 0.2     # px/frame: slower than this counts as no motion
lora.set_scale(model.unet, 1.0)
after = {n: sample(model, images[n], frames, fps_id=6, bucket=motion_bucket_id, steps=sample_steps) for n in names}
after_dx = {n: signed_motion(v)[0] for n, v in after.items()}
lora.set_scale(model.unet, 0.0)
switched_off = sample(model, images["astronaut"], frames, fps_id=6, bucket=motion_bucket_id, steps=sample_steps)
lora.set_scale(model.unet, 1.0)
off_is_base = torch.equal(switched_off, before["astronaut"])
print(f"{'image':<11}{'before':>9}{'adapter 1':>11}  reversed")
for n in names:
    print(f"{n:<11}{before_dx[n]:>+9.2f}{after_dx[n]:>+11.2f}  {'yes' if after_dx[n] < -still_threshold else 'no'}")
print(f"astronaut at scale 0: dx {signed_motion(switched_off)[0]:+.2f}, the base model's video exactly: {off_is_base}")
display.compare([before[n] for n in names] + [after[n] for n in names],
                [f"{n}, base" for n in names] + [f"{n}, LoRA 1" for n in names], fps=7,
                title=f"motion bucket {motion_bucket_id}: before and after fine-tuning")
# %% [markdown]
# The table is this run's measurement: the sign of `dx` is the direction the content moves. Look at the videos as
# well as the numbers: a short run on clips of dead-leaves textures teaches the adapter their *look* along with
# their motion, and the adapter reaches the temporal convolutions at every level, so from the third or fourth frame
# on the frames break into blobs of colour, over the subject as well as where new content enters (the validation
# video of section 4 shows it too: its cream disc turns a pale whitish lavender and breaks up): the direction is
# learned, the picture is not kept. Where the table says `no`, that image gets no steady pan to the right (its content
# may jump once as it breaks up), but the adapter's look has carried over. The
# levers: more steps, more varied clips (photos:
# `write_pan_clips(..., leaves_share=0.4)` with the train extra installed) and `mode="full"`; raise `steps` and rerun
# to measure them. The adapter is `lora.safetensors` in the output folder; on the command line the same run is
#
#     svd-lab finetune outputs/notebooks/05_finetune/clips --out my-lora --mode lora --steps 64 --lr 1e-2 \
#         --lora-targets to_q,to_k,to_v,to_out.0,temporal_res_block.conv1,temporal_res_block.conv2
#     svd-lab sample assets/astronaut.png --lora my-lora/lora.safetensors --motion-bucket-id 200
# %% [markdown]
# ### Exercise 1 · Measure the direction
#
# Write `my_direction(video)`, which returns `"left"`, `"right"` or `"still"` for a video `(T, 3, H, W)`: the
# direction the content moves, "still" when it moves less than 0.2<!-- r:still_threshold --> pixels per frame. Use `signed_motion`. The check
# runs it on clips with a known direction and on the astronaut's video before fine-tuning.
# %%
my_direction = None   # your answer: a function video -> "left" / "right" / "still"
# %% tags=["solution"]
# Solution (click to reveal)
if solutions:
    def my_direction(video):
        dx, _ = signed_motion(video)
        return "still" if abs(dx) < still_threshold else ("left" if dx > 0 else "right")
# %%
from svd_lab.finetune.demo import pan_clips


def _directions_right(answer) -> bool:
    known = [(pan_clips(1, frames, size, 200, 6, "left", seed=9)[0], "left"),
             (pan_clips(1, frames, size, 200, 6, "right", seed=9)[0], "right"),
             (images["rocket"].unsqueeze(0).repeat(frames, 1, 1, 1), "still")]
    return all(answer(video) == truth for video, truth in known) and answer(before["astronaut"]) == "left"


exercises.check("direction", my_direction, _directions_right)
if my_direction is not None:
    print({n: f"{my_direction(before[n])} -> {my_direction(after[n])}" for n in names})
# %% [markdown]
# ### Exercise 2 · Count the adapter's parameters
#
# A LoRA layer on a linear map with `in` inputs and `out` outputs adds `A` (`r x in`) and `B` (`out x r`); on a
# convolution with `in` input channels, `out` output channels and a kernel of `k` taps (its `kernel_size` multiplied
# out), `A` reads `in x k` numbers for each of its `r` outputs and `B` is `out x r`. Compute the number of trainable parameters of this run
# from the layers `lora.lora_layers(model.unet)` (each has `.rank` and `.base`: an `nn.Linear` with `in_features` and
# `out_features`, or an `nn.Conv3d` with `in_channels`, `out_channels` and `kernel_size`), without counting the
# adapter's tensors directly.
# %%
my_adapter_parameters = None   # your answer: an integer
# %% tags=["solution"]
# Solution (click to reveal)
if solutions:
    import math

    def adapter_size(layer):
        base = layer.base
        if isinstance(base, torch.nn.Linear):
            return layer.rank * (base.in_features + base.out_features)
        return layer.rank * (base.in_channels * math.prod(base.kernel_size) + base.out_channels)

    my_adapter_parameters = sum(adapter_size(layer) for layer in lora.lora_layers(model.unet).values())
# %%
exercises.check("adapter_parameters", my_adapter_parameters,
                lambda a: int(a) == result.record["trainable_parameters"])
# %% [markdown]
# ## 6. On a GPU: which mode fits which card
#
# The same command fine-tunes a real SVD (`--checkpoint` a downloaded svd / svd_xt folder). What must fit in memory
# is the weights, the gradients and Adam's two moments of what trains, plus the activations. The first part follows
# from the parameter counts of SVD's UNet (built on the `meta` device: shapes only, no download):
# %%
from svd_lab.finetune.train import temporal_parameter_names
from svd_lab.svd.components import build_components

full = build_components("full", "svd", device="meta")
unet_params = sum(p.numel() for p in full.unet.parameters())
temporal = set(temporal_parameter_names(full.unet))
temporal_params = sum(p.numel() for n, p in full.unet.named_parameters() if n in temporal)
lora.add_lora(full.unet, lora.LoRAConfig(rank=64, alpha=64.0))
lora_params = sum(p.numel() for n, p in full.unet.named_parameters() if ".lora_" in n)
GB = 1e9
rows = {"full": unet_params, "temporal": temporal_params, "lora (rank 64)": lora_params}
print(f"{'mode':<16}{'trains':>16}{'fp16 weights of the UNet':>26}{'+ fp32 master, grads, Adam':>28}")
for mode, n in rows.items():
    print(f"{mode:<16}{n:>16,}{unet_params * 2 / GB:>23.1f} GB{n * 16 / GB:>25.1f} GB")
# %% [markdown]
# Weights and optimiser state are computed above; activations are not, and they dominate at SVD's sizes. The one
# public measurement (SVD_Xtend's issues #4 and #27, **their** numbers, not measured here): about 60-63 GB for 14-16
# frames at 512x320, batch 1, with the full UNet in the graph; 1024x576 ran out of memory on an 80 GB A100 (#39). So,
# as a plan to be confirmed on the card (our GPU benchmark rows fill in when a GPU is lent, `benchmarks/`):
#
# | card | what to try first |
# |---|---|
# | T4 16 GB, V100 16 GB | LoRA, fp16, gradient checkpointing, 8-bit Adam, below SVD_Xtend's 320x512 and with fewer frames |
# | V100 32 GB, RTX 4090 24 GB, A10 24 GB | LoRA or temporal with gradient checkpointing and bf16/fp16 at SVD_Xtend's 320x512, 14 frames |
# | A100 40/80 GB | temporal or full with gradient checkpointing at SVD_Xtend's 320x512; full at 576x1024 needs more than one card |
#
#     svd-lab finetune my-clips --checkpoint checkpoints/svd --mode lora --height 320 --width 512 \
#         --precision fp16 --gradient-checkpointing --optimizer adamw8bit
# %% [markdown]
# ## What you learned
#
# - SVD's training objective in code: noise levels, the conditioning frame's `cond_aug`, conditioning dropout,
#   v-prediction with EDM's preconditioning; the micro-conditioning (`fps_id`, `motion_bucket_id`) measured from data.
# - Three ways to fine-tune (everything, the temporal layers, a LoRA adapter) and what each changes; an adapter is a
#   small file, switched off at scale 0.
# - How to tell whether a new motion was learned: measure it on an image the model never trained on.
#
# ## References
#
# - Blattmann et al., *Stable Video Diffusion* (2023), sections 3-4 and appendix D (training, micro-conditioning).
# - Karras et al., *Elucidating the Design Space of Diffusion-Based Generative Models* (EDM, 2022): preconditioning.
# - Hu et al., *LoRA: Low-Rank Adaptation of Large Language Models* (2021).
# - pixeli99/SVD_Xtend (the community training script) and its issues #4, #27, #39, #63.
# %% tags=["record"]
# Values the course's regression runs compare with their baselines (see tests/baselines/); nothing is shown.
record("profile", "small")
record("windows", len(dataset))
record("still_threshold", still_threshold)
record("motion_bucket_ids", sorted(set(dataset.motion_bucket_id.tolist())))
record("trainable_parameters", result.record["trainable_parameters"])
record("before_dx", before_dx, tolerance="rel:0.02")
record("after_dx", after_dx, tolerance="rel:0.05")
record("validation_dx", [v["motion_px"][0] for v in result.record["validations"]], tolerance="rel:0.05")
record("scale0_is_base", off_is_base)
record("final_loss", result.record["loss"][-1][1], tolerance="rel:0.05")
