# %% [markdown]
# # 01 · Sora's ideas, the Diffusion Transformer, and a mini world model
#
# In February 2024 OpenAI described **Sora**, a model that generates up to a minute of video from text. The report
# ("Video generation models as world simulators") gives no architecture details, but it names the ideas:
#
# - **A video compression network** reduces raw video to a lower-dimensional latent, compressed in time *and*
#   space; a decoder maps generated latents back to pixels.
# - **Spacetime latent patches**: the latent video is cut into patches that become the tokens of a transformer,
#   just as words are tokens of a language model. Images are videos of one frame.
# - **A diffusion transformer** predicts the clean patches from noisy ones (with text conditioning), and sample
#   quality improves markedly as training compute grows.
# - **Native sizes and durations**: training on videos at their own resolution, aspect ratio and length (rather
#   than cropped squares) gives better framing and lets one model sample widescreen, vertical or square videos.
# - **Re-captioning**: a captioning model writes detailed descriptions of the training videos, which improves how
#   well the videos follow the text.
#
# The transformer part comes from **DiT** (Peebles & Xie, 2023, "Scalable Diffusion Models with Transformers").
# This notebook shows each idea in code, at a size a laptop can run: patchify a real clip, look at DiT's
# adaLN-Zero block and its compute scaling, then sample videos from the course's **mini world model** and measure
# whether they obey the physics of their training data.
# %% [bootstrap]
# %% [markdown]
# ## Parameters
# %% tags=["parameters"]
profile = "auto"      # this notebook always uses the mini world model ("mini")
device = "cpu"        # the mini model runs on the CPU
seed = 23             # data and sampler noise
num_steps = 20        # sampler steps (the shipped model is evaluated with 20)
num_videos = 8        # videos sampled for the physics check: one per speed bucket 0..7
mini_dir = None       # None: the shipped weights in checkpoints/mini
output_dir = None     # None: outputs/notebooks/01_sora_and_dit
# %%
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from svd_lab import display, paths
from svd_lab.mini import data, flops, metrics
from svd_lab.mini.dit import DiTBlock, patchify, unpatchify
from svd_lab.mini.model import SamplingSettings, load_model
from svd_lab.record import record, reproducible

if profile not in ("auto", "mini"):
    raise ValueError(f"profile {profile!r}: this notebook runs the mini world model only (use 'auto' or 'mini')")
resolved_profile = "mini"
if device != "cpu":
    raise ValueError("the mini world model runs on the CPU: set device = 'cpu'")
reproducible(seed)
out_dir = Path(output_dir) if output_dir else paths.outputs_dir() / "notebooks" / "01_sora_and_dit"
out_dir.mkdir(parents=True, exist_ok=True)
weights = Path(mini_dir) if mini_dir else paths.checkpoints_dir() / "mini"
model = load_model(weights)
config = model.dit.config
print(f"mini world model from {weights}: autoencoder {sum(p.numel() for p in model.autoencoder.parameters()):,} "
      f"and DiT {sum(p.numel() for p in model.dit.parameters()):,} parameters")
# %% [markdown]
# ## 1. The mini world: a ball that moves and bounces
#
# The mini model's training videos are generated, so every video comes with its ground truth: a ball of radius
# 3 px moving at constant velocity on a 32x32 black square and bouncing off the walls. Its speed falls in one of 8
# **speed buckets** (0.5 to 2.5 px per frame), the analogue of SVD's `motion_bucket_id`.
# %%
clip = data.generate(1, seed=seed, frames=config.frames, speed_bucket=torch.tensor([5]))
low, high = data.bucket_range(int(clip.speed_bucket))
print(f"speed bucket {int(clip.speed_bucket)} ({low:.2f}-{high:.2f} px/frame), "
      f"velocity {[round(v, 2) for v in clip.velocities[0, 0].tolist()]} px/frame (row, column)")
display.frame_grid(clip.frames[0, :, 0], title="a training video (8 frames)", fps=8)
# %% [markdown]
# ## 2. Video compression and spacetime patches
#
# The mini model's "video compression network" is a frame autoencoder: each 32x32 frame becomes a 4x8x8 latent
# (compressed in space only; Sora's also compresses time). The transformer then cuts the latent video into
# spacetime patches of a few frames x a few x a few latent pixels and flattens each into one token. Drawn on the
# pixels (the title gives the mini model's patch size):
# %%
pixel_patch = config.patch * model.autoencoder.downsample        # latent pixels -> image pixels
fig, axes = plt.subplots(1, config.frames, figsize=(1.6 * config.frames, 2.5))
for t, ax in enumerate(axes):
    ax.imshow(clip.frames[0, t, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    for k in range(0, data.SIZE + 1, pixel_patch):
        ax.axhline(k - 0.5, color="tab:orange", lw=0.8)
        ax.axvline(k - 0.5, color="tab:orange", lw=0.8)
    ax.set_title(f"frame {t}\ntoken slab {t // config.patch_t}", fontsize=8)
    ax.axis("off")
frames_per_token = f"{config.patch_t} frame" + ("s" if config.patch_t != 1 else "")
fig.suptitle(f"spacetime patches: {frames_per_token} x {pixel_patch}x{pixel_patch} pixels per token")
fig.tight_layout(rect=(0, 0, 1, 0.9))
plt.show()
# %%
with torch.no_grad():
    latents = model.autoencoder.encode(data.to_model_space(clip.frames))       # (1, T, C, 8, 8)
tokens = patchify(latents, config.patch_t, config.patch)                        # (1, N, pt * p * p * C)
round_trip = unpatchify(tokens, config.grid, config.patch_t, config.patch)
print(f"latent video {tuple(latents.shape)} -> {tokens.shape[1]} tokens of {tokens.shape[2]} values: a grid of "
      f"{config.grid[0]} x {config.grid[1]} x {config.grid[2]} patches of {frames_per_token} x "
      f"{config.patch} x {config.patch} latent pixels x {config.in_channels} channels")
print(f"unpatchify gives the latent video back exactly: {torch.equal(round_trip, latents)}")
# %% [markdown]
# ## 3. DiT and the adaLN-Zero block
#
# DiT is a plain vision transformer over these tokens, plus two things: fixed sine-cosine position embeddings (in
# 3-D here: time, row, column) and a way to inject the conditioning (noise level, class or speed bucket). Of the
# four ways the paper compared, **adaLN-Zero** worked best (FID 19.5 vs 25.2 for adaLN, 26.1 for cross-attention,
# 35.2 for in-context tokens; DiT-XL/2 after 400K steps). An MLP of the conditioning vector $c$ regresses, per
# block, a shift $\beta$, scale $\gamma$ and gate $\alpha$ for each branch:
#
# $$x \leftarrow x + \alpha_1\,\mathrm{Attention}\big(\mathrm{LN}(x)(1+\gamma_1)+\beta_1\big),\qquad
#   x \leftarrow x + \alpha_2\,\mathrm{MLP}\big(\mathrm{LN}(x)(1+\gamma_2)+\beta_2\big)$$
#
# The regression layer starts at **zero**, so every gate $\alpha$ is 0 and every block starts as the identity:
# the network begins shallow and each block learns how much to add. Checked on a freshly built block:
# %%
block = DiTBlock(hidden=64, heads=4)
x = torch.randn(2, 10, 64)
c = torch.randn(2, 64)
identity_at_init = torch.equal(block(x, c), x)
print("fresh adaLN-Zero block is the identity:", identity_at_init)
trained_gates = model.dit.blocks[0].adaLN_modulation[-1].weight.abs().mean().item()
print(f"in the trained mini model, block 0's modulation weights are no longer zero (mean |w| = {trained_gates:.4f})")
# %% [markdown]
# ## 4. Scaling: compute per forward pass
#
# DiT measures model size by **forward compute** rather than parameters: a smaller patch multiplies the number of
# tokens (patch 2 gives 4x the tokens of patch 4 at nearly the same parameter count), and the paper finds that FID
# improves steadily with Gflops, whichever way they are added (depth/width or tokens). The table counts the
# multiply-adds of each model from its definition (PyTorch's FlopCounterMode on shapes only) and compares them
# with the paper's Table 4 (the paper's "Gflops" are multiply-adds).
# %%
table = flops.dit_table(256)
print(flops.format_dit_table(table))
# %%
fig, ax = plt.subplots(figsize=(6.5, 3.8))
for size, colour in zip(("S", "B", "L", "XL"), ("C0", "C1", "C2", "C3")):
    names = [f"{size}/{p}" for p in (8, 4, 2)]
    ax.plot([table[n][0].parameters / 1e6 for n in names], [table[n][0].gmacs for n in names], "o-", color=colour,
            label=f"DiT-{size}")
    for n in names:
        ax.annotate(n.split("/")[1], (table[n][0].parameters / 1e6, table[n][0].gmacs), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xticks([30, 100, 300, 700], labels=["30", "100", "300", "700"])
ax.minorticks_off()
ax.set_xlabel("parameters (millions, log)")
ax.set_ylabel("forward G multiply-adds at 256x256 (log)")
ax.set_title("DiT: patch size (labels 8/4/2) multiplies compute, not parameters")
ax.legend()
plt.show()
mini_cost = flops.count_forward(model.dit, torch.zeros(1, config.frames, config.in_channels, config.height,
                                                       config.width), torch.zeros(()),
                                {"labels": torch.zeros(1, dtype=torch.long),
                                 "first_frame": torch.zeros(1, 1, config.cond_channels, config.height, config.width)})
print(f"the mini model's DiT, one forward pass on one video: {mini_cost}")
# %% [markdown]
# The paper's best model, DiT-XL/2, reaches FID 9.62 on ImageNet 256x256 without guidance and 2.27 with
# classifier-free guidance (scale 1.5) after 7M training steps.
#
# ## 5. Sampling the mini world model
#
# Image-to-video, as SVD does it: the first frame is encoded and given to every token as a condition, the speed
# bucket plays the role of `motion_bucket_id`, and the same EDM sampler (notebook 02) with a per-frame guidance
# ramp turns noise into latents, which the autoencoder decodes. One video per speed bucket, all starting from the
# first frames of fresh test videos:
# %%
reference = metrics.eval_set(num_videos, seed=metrics.EVAL_SEED)
settings = SamplingSettings(steps=num_steps)
videos = model.generate(reference.frames[:, 0], reference.speed_bucket, seed=seed, settings=settings)
labels = [f"bucket {int(b)}" for b in reference.speed_bucket]
display.compare([v[:, 0] for v in videos], labels, fps=8, width=96,
                title=f"mini world model: {num_videos} samples, {num_steps} steps")
# %%
display.frame_grid(videos[-1, :, 0], title=f"sample for speed bucket {int(reference.speed_bucket[-1])}", fps=8)
# %% [markdown]
# ## 6. Does it obey the physics?
#
# Because the training world is known, samples can be *measured*: find the ball in every frame, fit the best
# constant-velocity trajectory with bounces, and compare with what was asked for.
#
# - **first-frame error**: distance between the generated first frame's ball and the input's (pixels);
# - **presence**: share of frames that show one ball of the right size;
# - **track ok**: share of videos whose ball follows a physical trajectory within 1.5 px;
# - **speed correlation** and **speed in bucket**: does the fitted speed follow the requested bucket?
#
# The real videos score (almost) perfectly; a "static copy" (the first frame repeated) shows why the speed scores
# are needed.
# %%
rows = {
    "real videos": metrics.score_videos(reference.frames, reference.frames[:, 0], reference.speed_bucket),
    "static copy": metrics.score_videos(metrics.static_copy(reference), reference.frames[:, 0],
                                        reference.speed_bucket),
    "mini model": metrics.score_videos(videos, reference.frames[:, 0], reference.speed_bucket),
}
print(metrics.format_table(rows))
print(f"\n(on {num_videos} videos; the shipped model's full evaluation uses {metrics.EVAL_VIDEOS}: svd-lab mini eval)")
# %% tags=["record"]
# Values the course's regression runs compare with their baselines (see tests/baselines/); nothing is shown.
import math

record("profile", resolved_profile)
record("dit_config", config.to_dict(), tolerance="exact")
record("token_count", tokens.shape[1])
record("token_values", tokens.shape[2])
record("patchify_round_trip", torch.equal(round_trip, latents))
record("adaln_zero_identity", identity_at_init)
record("dit_gmacs", {name: cost.gmacs for name, (cost, _) in table.items()})
record("dit_parameters", {name: cost.parameters for name, (cost, _) in table.items()})
record("mini_dit_macs", mini_cost.macs)
record("samples_shape", list(videos.shape))
record("samples_frame_means", videos.mean(dim=(0, 2, 3, 4)))
record("physics_mini_model", {k: (v if not isinstance(v, float) or math.isfinite(v) else None)
                              for k, v in rows["mini model"].to_dict().items()})
record("physics_real_videos", rows["real videos"].to_dict())
