# %% [markdown]
# # 06 · From SVD to Wan: a video DiT trained with flow matching
#
# Notebook 01 told Sora's recipe: a diffusion transformer over spacetime patches of a compressed video. SVD, the
# model of notebooks 03-05, is a UNet. The open models that realise Sora's recipe today are video DiTs trained with
# **flow matching**, and the one a reader of this course can run is Alibaba's **Wan** (open weights under the Apache
# licence, on the Hugging Face hub and on ModelScope). This notebook shows what changes from SVD to Wan, each change with shapes on real
# modules, and then measures the change of objective on a model you can train here: the course's mini video DiT,
# trained once with EDM (as SVD) and once with flow matching (as Wan), with the same budget.
#
# | | SVD (2023) | Wan2.1 / Wan2.2 (2025) |
# |---|---|---|
# | denoising network | spatio-temporal UNet | a transformer over 3D patches (DiT) |
# | objective and sampler | EDM: a denoiser, sigma from sigma_max to 0 | flow matching: a velocity, t from 1 to 0 |
# | condition | a CLIP embedding of the image (+ its latent) | a text prompt (UMT5); Wan2.2-TI2V: + the image as the first latent frame |
# | autoencoder | per-frame encoder, temporal decoder | a causal 3D VAE: time compressed too |
#
# **Which model runs here.** On a CPU (or without a downloaded checkpoint) the Wan networks are the **tiny
# profile**: diffusers' own Wan classes at a few channels wide, random weights. They show every tensor and prove
# our pipeline equal to diffusers'; their videos are noise. With a CUDA GPU and a downloaded checkpoint
# (`svd-lab download wan2.1-t2v-1.3b`), `profile = "full"` runs the real model at the end.
# %% [bootstrap]
# %% [markdown]
# ## Parameters
# %% tags=["parameters"]
profile = "auto"          # "auto" (full with a Wan checkpoint on a CUDA GPU, else tiny), "tiny" or "full"
version = "wan2.1-t2v-1.3b"   # or "wan2.2-ti2v-5b" (text, or text + image)
device = "auto"
seed = 0
prompt = "a red rocket lifts off from the launch pad at night"
num_steps = None          # None: the profile's (tiny: 4; full: the version's 50)
compare_videos = 16       # mini DiT videos per row of the EDM vs flow comparison (64 for the full table)
step_counts = [2, 4, 8]   # sampling steps compared
train_steps = 8           # your own flow-matching run of the mini DiT (batch 8)
output_dir = None         # None: outputs/notebooks/06_wan_flow_matching
solutions = False         # True: the exercises' solutions are filled in
language = "en"           # "en" or "zh-CN" (set by the zh-CN edition): hints, doctor and profile lines
# %%
import shutil
from pathlib import Path

import torch

from svd_lab import display, exercises, messages, paths
from svd_lab.record import record, reproducible
from svd_lab.svd.pipeline import resolve_device
from svd_lab.wan import configs
from svd_lab.wan.pipeline import WanPipeline, load_wan_pipeline
from svd_lab.wan.versions import get_wan_version

messages.set_language(language)
reproducible(seed)
out_dir = Path(output_dir) if output_dir else paths.outputs_dir() / "notebooks" / "06_wan_flow_matching"
if out_dir.exists():
    shutil.rmtree(out_dir)
out_dir.mkdir(parents=True)
spec = get_wan_version(version)
device = resolve_device(device)
if profile == "auto":
    from svd_lab.checkpoints import find_checkpoint

    profile = "full" if device.type == "cuda" and find_checkpoint(spec.name) is not None else "tiny"
if profile not in ("tiny", "full"):
    raise ValueError(f"profile {profile!r}: this notebook runs Wan on 'tiny' or 'full'")
torch.set_num_threads(1 if profile == "tiny" else torch.get_num_threads())
print(f"{spec.name}: {spec.description}; profile {profile} on {device}")
# %% [markdown]
# ## 1. The pieces, with their shapes
#
# We build the tiny networks of the chosen version (the full-size ones are the same classes, wider and deeper) and
# follow one prompt through them. First the **text**: UMT5's tokenizer turns the prompt into ids (padded to a fixed
# length), the encoder into one vector per token; positions after the prompt are set to zero, as Wan was trained.
# %%
from svd_lab.wan.pipeline import tiny_components

tiny = tiny_components(spec)
pipe = WanPipeline(tiny)
text = pipe.encode_text([prompt], configs.TINY_MAX_SEQUENCE_LENGTH)
tokens = tiny.tokenizer(prompt).input_ids
print(f"prompt -> {len(tokens)} token ids {tokens[:8]}... -> text embedding {tuple(text.shape)} "
      f"(zero after token {len(tokens)}: {bool(text[0, len(tokens):].abs().sum() == 0)})")
# %% [markdown]
# Then the **causal 3D VAE**. It keeps the first frame on its own and compresses every 4<!-- r:temporal_factor -->
# further frames into one latent frame, and the frame size by its spatial factor: a video of `4 k + 1` frames becomes `k + 1` latent
# frames. This is the "compressed video" of Sora's recipe, and why Wan's frame counts are `4 k + 1`.
# %%
h, w = configs.TINY_SIZE[spec.name]
video = torch.rand(1, 3, configs.TINY_FRAMES, h, w) * 2 - 1
with torch.no_grad():
    latent = tiny.vae.encode(video).latent_dist.mode()
vae_factor = (video.numel() / 3) / (latent.numel() / latent.shape[1])
print(f"video {tuple(video.shape)} (B, C, F, H, W) -> latent {tuple(latent.shape)}: "
      f"{tiny.temporal_factor}x in time, {tiny.spatial_factor}x in each spatial direction, "
      f"{latent.shape[1]} channels")
# %% [markdown]
# And the **transformer**: the latent is cut into patches (`patch_size = (1, 2, 2)`: one latent frame by a small
# square of latent positions), each patch one token; attention runs over all tokens of all frames at once (with 3D rotary positions), cross-attention reads the
# text, and the timestep modulates every block (adaLN, as in notebook 01's DiT). The same arithmetic at Wan's own
# sizes gives the sequence lengths the real models handle:
# %%
from svd_lab.wan.versions import WAN_VERSIONS


def tokens_of(frames: int, height: int, width: int, spatial: int, temporal: int = 4, patch: int = 2) -> int:
    """Transformer tokens of a video: latent frames x latent positions / patch area."""
    return ((frames - 1) // temporal + 1) * (height // spatial // patch) * (width // spatial // patch)


print(f"tiny: {tokens_of(configs.TINY_FRAMES, h, w, tiny.spatial_factor)} tokens")
full_tokens = {}
for name, v in WAN_VERSIONS.items():
    spatial = 16 if v.takes_image else 8
    full_tokens[name] = tokens_of(v.num_frames, v.height, v.width, spatial)
    counts = configs.FULL_PARAMETER_COUNTS[name]
    print(f"{name}: {v.width}x{v.height}, {v.num_frames} frames -> {full_tokens[name]:,} tokens; transformer "
          f"{counts['transformer'] / 1e9:.2f}B, VAE {counts['vae'] / 1e6:.0f}M, text encoder "
          f"{counts['text_encoder'] / 1e9:.2f}B parameters")
# %% [markdown]
# The parameter counts above come from the full-size networks built on the `meta` device (shapes, no memory;
# `svd_lab.wan.configs.full_parameter_counts`, checked by the tests). Note the text encoder: UMT5-XXL is larger
# than either transformer. It runs once per prompt, so memory planning moves it off the GPU first
# (`svd_lab.wan.memory`).
#
# ## 2. The sampler: flow matching, and Wan's UniPC
#
# Flow matching (notebook 01's primer) moves a sample along a straight line from noise (t = 1) to data (t = 0); the
# network predicts the velocity. Two choices shape the schedule of a released model: the **shift**
# `t' = s t / (1 + (s - 1) t)`, which spends more steps at high noise (large frames need it: their pixels are
# redundant, so the same t destroys less of them), and the **solver**. Wan's pipelines use **UniPC**, a
# predictor-corrector that reuses the previous step's prediction: second order for one network call per step.
# Our readable implementations are `svd_lab.sampling.flow` (the schedules, Euler) and `svd_lab.sampling.unipc`.
# %%
import matplotlib.pyplot as plt

from svd_lab.sampling.flow import euler_schedule, unipc_schedule

fig, ax = plt.subplots(figsize=(6, 3.2))
for shift in (1.0, 3.0, 5.0):
    s = unipc_schedule(10, shift).sigmas
    ax.plot(range(len(s)), s, marker="o", label=f"UniPC schedule, shift {shift:g}")
ax.plot(range(11), euler_schedule(10, 3.0).sigmas, "k--", lw=1, label="Euler (diffusers), shift 3")
ax.set_xlabel("step")
ax.set_ylabel("noise level t")
ax.set_title("10-step flow schedules")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
high_noise_steps = {shift: int((unipc_schedule(10, shift).sigmas[:-1] > 0.5).sum()) for shift in (1.0, 3.0, 5.0)}
print("steps above t = 0.5 of 10:", high_noise_steps)
# %% [markdown]
# Now the whole pipeline on the tiny networks, written as `WanPipeline.run` (read `svd_lab/wan/pipeline.py`: text,
# noise, optional image, the flow loop with classifier-free guidance, decode) and checked against diffusers'
# `WanPipeline` with the same networks, prompt, seed and scheduler:
# %%
from diffusers import UniPCMultistepScheduler
from diffusers import WanPipeline as DiffusersWan

ours = pipe.run(prompt, seed=seed, progress=False)
scheduler = UniPCMultistepScheduler(**{k: v for k, v in configs.unipc_config(tiny.shift).items()
                                      if k != "_class_name"})
reference = DiffusersWan(tokenizer=tiny.tokenizer, text_encoder=tiny.text_encoder, transformer=tiny.transformer,
                         vae=tiny.vae, scheduler=scheduler, expand_timesteps=tiny.expand_timesteps)
reference.set_progress_bar_config(disable=True)
theirs = reference(prompt=prompt, negative_prompt=ours.params["negative_prompt"], height=h, width=w,
                   num_frames=configs.TINY_FRAMES, num_inference_steps=ours.params["num_steps"],
                   guidance_scale=ours.params["guidance"], max_sequence_length=configs.TINY_MAX_SEQUENCE_LENGTH,
                   generator=torch.Generator().manual_seed(seed), output_type="latent").frames
equal_to_diffusers = bool(torch.equal(ours.latents, theirs))
print(f"latents {tuple(ours.latents.shape)}, frames {tuple(ours.frames.shape)}; equal to diffusers bit for bit: "
      f"{equal_to_diffusers}")
# %% [markdown]
# ## 3. Your own flow-matching run on the mini DiT
#
# The mini world model of notebooks 01 and 02 is a video DiT trained with EDM on bouncing balls. Its training code
# takes a second objective, flow matching, in four lines (printed from the library): draw t, mix the data and the
# noise on the straight line, regress the velocity `noise - data`. Nothing else changes: the network, the data,
# the autoencoder (the shipped one, reused), the noise levels (`logit t` is drawn like EDM's `ln sigma`, since
# `sigma = t / (1 - t)`). Here it trains for `train_steps` steps from scratch in front of you:
# %%
import inspect

from svd_lab.mini.model import load_model
from svd_lab.mini.train import TrainSettings, flow_loss, train

source = inspect.getsource(flow_loss)
print(source[source.index("    b = latents.shape[0]"):])
shipped = load_model(paths.shipped_checkpoints_dir() / "mini")
torch.set_num_threads(2)
mine, log = train(TrainSettings(steps=train_steps, batch=8, objective="flow", warmup=5), progress=False,
                  autoencoder=shipped.autoencoder, log=lambda message: None)
first_loss, last_loss = log["loss"][0][2], sum(r[2] for r in log["loss"][-5:]) / 5
print(f"{train_steps} steps in {log['dit_seconds']} s: loss {first_loss:.3f} -> {last_loss:.3f} (mean of the last 5)")
# %% [markdown]
# A few dozen steps only start the descent. To compare the two objectives fairly, `tools/train_objectives.sh`
# trained two mini DiTs from scratch with everything equal except the objective: 4,000<!-- r:objective_steps -->
# steps each, seed 0, the same batches and noise levels. Both are shipped in `checkpoints/objectives/`.
#
# ## 4. EDM or flow matching: which needs fewer steps?
#
# Each model makes `compare_videos` videos from the mini world model's fixed evaluation set at each step count,
# with the first-order sampler of its family (EDM Euler on Karras' sigmas; flow Euler on evenly spaced t), the same
# guidance; scored against physics as in notebook 01: **present** (the ball is found in every frame) and **speed in
# bucket** (it moves at the asked speed).
# %%
from svd_lab.mini import metrics
from svd_lab.mini.model import SamplingSettings, read_facts

objectives_dir = paths.shipped_checkpoints_dir() / "objectives"
models = {o: load_model(objectives_dir / o) for o in ("edm", "flow")}
trained_steps = {o: read_facts(objectives_dir / o)["steps"] for o in models}
print("training steps of the shipped pair:", trained_steps)
table = {}
for objective, model in models.items():
    for steps in step_counts:
        scores = metrics.evaluate_model(model, num_videos=compare_videos, settings=SamplingSettings(steps=steps))
        table[(objective, steps)] = scores
print(f"{'objective':<10}{'steps':>6}{'present':>10}{'speed in bucket':>18}{'first frame px':>16}")
for (objective, steps), s in table.items():
    print(f"{objective:<10}{steps:>6}{100 * s.presence:>9.0f}%{100 * s.speed_in_bucket:>17.0f}%"
          f"{s.first_frame_error_px:>16.2f}")
fig, ax = plt.subplots(figsize=(5.5, 3.2))
for objective in models:
    ax.plot(step_counts, [100 * table[(objective, n)].presence for n in step_counts], marker="o",
            label=f"{objective}: ball present")
    ax.plot(step_counts, [100 * table[(objective, n)].speed_in_bucket for n in step_counts], marker="s", ls="--",
            label=f"{objective}: speed in bucket")
ax.set_xscale("log", base=2)
ax.set_xticks(step_counts, [str(n) for n in step_counts])
ax.set_xlabel("sampling steps (Euler)")
ax.set_ylabel("% of videos")
ax.set_title(f"EDM vs flow matching, same training budget, {compare_videos} videos")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
# %% [markdown]
# In the default run (16<!-- r:compare_videos --> videos per row), with 2<!-- r:step_counts[0] --> steps the ball
# is present in 41%<!-- r:objectives[edm_2][0]*100 --> of EDM's videos and
# 74%<!-- r:objectives[flow_2][0]*100 --> of flow matching's, and moves at the asked speed in
# 6%<!-- r:objectives[edm_2][1]*100 --> and 50%<!-- r:objectives[flow_2][1]*100 -->; with
# 8<!-- r:step_counts[2] --> steps both are close (present in 90%<!-- r:objectives[edm_8][0]*100 --> and
# 96%<!-- r:objectives[flow_8][0]*100 -->). Trained with the same budget, the flow-matching model samples well in
# fewer steps. Its price here: the first frame is kept a little less exactly (off by
# 0.23<!-- r:objectives[flow_8][2] --> px against EDM's 0.15<!-- r:objectives[edm_8][2] --> px with those steps).
# `benchmarks/bench_wan.py` prints the same comparison on more videos per row and more step counts, with Heun's
# second-order samplers as well.
#
# Look at the videos too: the same first frame and speed bucket at the smallest step count, EDM above and flow
# matching below.
# %%
reference_set = metrics.eval_set(2)
strips = [models[o].generate(reference_set.frames[:, 0], reference_set.speed_bucket,
                             settings=SamplingSettings(steps=step_counts[0])) for o in models]
frames_per_video = strips[0].shape[1]
display.frame_grid(torch.cat([strips[0][:1], strips[1][:1]]).flatten(0, 1)[:, 0], columns=frames_per_video,
                   size=1.3, title=f"{step_counts[0]} steps, the same first frame and speed bucket",
                   labels=[f"{o} t={t}" for o in ("EDM", "flow") for t in range(frames_per_video)])
# %% [markdown]
# ### Exercise 1 · Predict, then measure: the fewest steps
#
# Before reading the table closely, predict which objective reaches the bar `bar` of "present" (set in the answer
# cell) with fewer steps. Then compute it: `my_fewest = {"edm": n, "flow": m}`, the smallest step count of
# `step_counts` at which each model's `presence` is at least `bar` in `table` (`None` if none does). The check
# recomputes it from `table`. Explain what you see: flow matching's straight paths are easy to follow with big steps
# *when the model's velocity is accurate*; EDM's Karras schedule puts its few steps where the denoiser changes
# fastest.
# %%
bar = 0.9          # the share of videos in which the ball must be present
my_fewest = None   # your answer: {"edm": ..., "flow": ...}
# %% tags=["solution"]
# Solution (click to reveal)
if solutions:
    my_fewest = {o: next((n for n in step_counts if table[(o, n)].presence >= bar), None) for o in models}
# %%
fewest = {o: next((n for n in step_counts if table[(o, n)].presence >= bar), None) for o in models}
exercises.check("fewest_steps", my_fewest, lambda a: dict(a) == fewest)
# %% [markdown]
# ### Exercise 2 · The velocity target
#
# Write `my_velocity_target(x0, noise)`: the velocity a flow-matching network is trained to predict at
# `x_t = (1 - t) x0 + t noise`. The check runs one Euler step of `dx/dt = v` from `x_t` to `t = 0` with your
# target as the velocity and expects to land exactly on `x0`, at every t: the path is straight.
# %%
def my_velocity_target(x0, noise):
    return None    # your answer


# %% tags=["solution"]
# Solution (click to reveal)
if solutions:
    def my_velocity_target(x0, noise):
        return noise - x0


# %%
def lands_on_data(target) -> bool:
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(64, generator=g), torch.randn(64, generator=g)
    results = []
    for t in (0.2, 0.5, 0.9):
        v = target(x0, noise)
        x_t = (1 - t) * x0 + t * noise
        results.append(torch.allclose(x_t + (0 - t) * v, x0, atol=1e-6))
    return all(results)


answered = my_velocity_target(torch.zeros(1), torch.zeros(1)) is not None
exercises.check("velocity_target", my_velocity_target if answered else None, lands_on_data)
# %% [markdown]
# ### Exercise 3 · Tokens: why Wan2.2's VAE compresses more
#
# `tokens_of` above counts the transformer's sequence. Compute `my_ratio`: how many times more tokens a Wan2.1-style
# VAE (`spatial=8`) would give Wan2.2-TI2V's own video (its width, height and frame count from `WAN_VERSIONS`) than
# Wan2.2's own VAE (`spatial=16`) does. Predict it first from the factors alone; attention's cost grows with the
# square of it.
# %%
my_ratio = None    # your answer: a number
# %% tags=["solution"]
# Solution (click to reveal)
if solutions:
    ti2v = WAN_VERSIONS["wan2.2-ti2v-5b"]
    my_ratio = (tokens_of(ti2v.num_frames, ti2v.height, ti2v.width, 8)
                / tokens_of(ti2v.num_frames, ti2v.height, ti2v.width, 16))
# %%
ti2v = WAN_VERSIONS["wan2.2-ti2v-5b"]
expected_ratio = tokens_of(ti2v.num_frames, ti2v.height, ti2v.width, 8) / tokens_of(
    ti2v.num_frames, ti2v.height, ti2v.width, 16)
exercises.check("token_ratio", my_ratio, lambda a: abs(float(a) - expected_ratio) < 1e-9)
# %% [markdown]
# ## 5. On a GPU: the real Wan
#
# With `profile = "full"` (a CUDA GPU and `svd-lab download wan2.1-t2v-1.3b`, or `--source modelscope`) the cell
# below runs the released model with the same pipeline: bf16 weights, the memory mode planned from free VRAM (all
# networks resident, one network at a time, or the transformer streamed block by block, plus VAE tiling), Wan's
# UniPC with its own shift. On the tiny profile it prints the plan it would make for common cards instead, and
# shows the tiny networks' video (noise) where the real one would be.
# The same from a terminal: `svd-lab sample --model wan2.1-t2v-1.3b --prompt "..."`.
# %%
from svd_lab.wan.memory import GIB, plan_for_free_vram

if profile == "full":
    real = load_wan_pipeline(spec.name, "full", device=device)
    generation = real.run(prompt, num_steps=num_steps, seed=seed)
    print({k: generation.params[k] for k in ("num_frames", "num_steps", "solver", "shift", "memory_plan",
                                              "sampling_seconds", "decoding_seconds")})
else:
    generation = ours   # the tiny networks' video of section 2 (noise): what this cell shows with the real model
    counts = configs.FULL_PARAMETER_COUNTS[spec.name]
    transformer_config = configs.FULL_TRANSFORMER[spec.name]
    hidden = transformer_config["num_attention_heads"] * transformer_config["attention_head_dim"]
    need = {"text_encoder": 2 * counts["text_encoder"], "transformer": 2 * counts["transformer"],
            "vae": 4 * counts["vae"], "activations": full_tokens[spec.name] * hidden * 24,
            "decoder": spec.num_frames * spec.height * spec.width * 600}
    for card in (8, 12, 16, 24, 48, 80):
        plan = plan_for_free_vram(card * GIB, need)
        print(f"{card:>3} GB free: {plan.settings():<28} {plan.reason}")
display.show_video(generation.video(), width=320)
# %% [markdown]
# These plans use planning estimates (bf16 weights, activation and decoder figures per token and per pixel), not
# measurements; the GPU rows of `benchmarks/bench_wan.py` measure seconds and peak memory when a GPU is lent, and
# the pipeline retries with a lighter plan after an out-of-memory error.
#
# ## What you learned
#
# - What Wan keeps of SVD (latent diffusion, classifier-free guidance, an image condition in latent space for
#   TI2V) and what it replaces: a transformer over 3D patches, a causal 3D VAE, a text encoder, flow matching.
# - Flow matching as a training objective (four lines) and as a sampler (a straight path, a shifted schedule, UniPC),
#   proven equal to diffusers' implementation on the tiny networks.
# - How to compare two objectives honestly: the same network, data, noise levels and budget, scored against physics
#   at several step counts.
#
# ## References
#
# - Wan Team, *Wan: Open and Advanced Large-Scale Video Generative Models* (2025), arXiv:2503.20314.
# - Lipman et al., *Flow Matching for Generative Modeling* (2022); Liu et al., *Flow Straight and Fast: Learning to
#   Generate and Transfer Data with Rectified Flow* (2022).
# - Esser et al., *Scaling Rectified Flow Transformers for High-Resolution Image Synthesis* (SD3, 2024): logit-normal
#   t and the shifted schedule.
# - Zhao et al., *UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of Diffusion Models* (2023).
# - Peebles and Xie, *Scalable Diffusion Models with Transformers* (DiT, 2023).
# %% tags=["record"]
# Values the course's regression runs compare with their baselines (see tests/baselines/); nothing is shown.
record("profile", profile)
record("text_shape", list(text.shape))
record("latent_shape", list(latent.shape))
record("temporal_factor", tiny.temporal_factor)
record("full_tokens", full_tokens)
record("high_noise_steps", {str(k): v for k, v in high_noise_steps.items()})
record("equal_to_diffusers", equal_to_diffusers)
record("objective_steps", trained_steps["flow"])
record("compare_videos", compare_videos)
record("step_counts", step_counts)
record("objectives", {f"{o}_{n}": [round(s.presence, 4), round(s.speed_in_bucket, 4),
                                   round(s.first_frame_error_px, 3)] for (o, n), s in table.items()},
       tolerance="rel:0.05")
record("fewest_steps", fewest)
