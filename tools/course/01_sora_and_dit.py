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
# This notebook starts with diffusion itself on one-dimensional data (noising, denoising, the ODE that generates,
# guidance), then shows each of Sora's ideas in code, at a size a laptop can run: patchify a real clip, look at DiT's
# adaLN-Zero block and its compute scaling, then sample videos from the course's **mini world model** and measure
# whether they obey the physics of their training data -- and train one yourself, live.
# %% [bootstrap]
# %% [markdown]
# ## Parameters
# %% tags=["parameters"]
profile = "auto"      # this notebook always uses the mini world model ("mini")
device = "cpu"        # the mini model runs on the CPU
seed = 23             # data and sampler noise
num_steps = 20        # sampler steps (the shipped model is evaluated with 20)
num_videos = 8        # videos sampled for the physics check: one per speed bucket 0..7
live_steps = 240      # steps of the live training in section 7 (about a minute on a 2-core CPU; 1000: 3-10)
mini_dir = None       # None: the shipped weights in checkpoints/mini
output_dir = None     # None: outputs/notebooks/01_sora_and_dit
solutions = False     # True: the exercises' solutions are filled in
language = "en"       # "en" or "zh-CN" (set by the zh-CN edition): hints, doctor and profile lines
# %%

import IPython.display
import matplotlib.pyplot as plt
import torch

from svd_lab import display, exercises, messages
from svd_lab.mini import data, flops, metrics
from svd_lab.mini.dit import DiTBlock, patchify, unpatchify
from svd_lab.mini.model import SamplingSettings, setup_notebook
from svd_lab.record import record
from svd_lab.sampling import edm

messages.set_language(language)

model, out_dir, weights = setup_notebook("01_sora_and_dit", profile=profile, device=device, seed=seed,
                                         mini_dir=mini_dir, output_dir=output_dir)
resolved_profile = "mini"
config = model.dit.config
print(f"mini world model from {weights}: autoencoder {sum(p.numel() for p in model.autoencoder.parameters()):,} "
      f"and DiT {sum(p.numel() for p in model.dit.parameters()):,} parameters")
# %% [markdown]
# ## 0. Diffusion in one dimension: noising, denoising, the ODE, guidance
#
# Everything in this course samples the same way, so first the idea on numbers you can see. Take data that is
# either near -1 or near +1 (a mixture of two narrow Gaussians, `x0`). **Noising** adds Gaussian noise of
# standard deviation sigma: `x = x0 + sigma * n`. At sigma 80<!-- r:toy_sigmas[0] --> nothing of the data is left; at
# sigma 0.002<!-- r:toy_sigmas[-2] -->, where sampling ends, all of it.
#
# A **denoiser** `D(x; sigma)` guesses the clean `x0` from a noisy `x`: the best guess is the average of all clean
# points that could have produced `x`. For this toy data it has a formula; a diffusion model is a network
# trained to approximate it for images or videos. Karras et al. (EDM) show that generating is then solving an
# ordinary differential equation, the **probability-flow ODE**: start from pure noise at sigma_max and follow
#
# $$\frac{dx}{d\sigma} = \frac{x - D(x;\sigma)}{\sigma}$$
#
# down to sigma = 0, in a few Euler steps on a schedule that spends most steps at small sigma (Karras' rho = 7).
# %%
means, spread = torch.tensor([-1.0, 1.0]), 0.1   # the two clusters of the data


def toy_denoiser(x: torch.Tensor, sigma: float, weights=(0.5, 0.5)) -> torch.Tensor:
    """E[x0 | x] for data = a mixture of N(-1, 0.1^2) and N(+1, 0.1^2), seen through noise of std sigma."""
    var = spread**2 + sigma**2
    w = torch.tensor(weights)
    log_p = torch.log(w) - (x[:, None] - means) ** 2 / (2 * var)            # (N, 2): how likely each cluster
    resp = torch.softmax(log_p, dim=1)
    cluster_mean = means + spread**2 / var * (x[:, None] - means)          # posterior mean within a cluster
    return (resp * cluster_mean).sum(1)


toy_gen = torch.Generator().manual_seed(seed)
data_points = means[torch.randint(2, (4000,), generator=toy_gen)] + spread * torch.randn(4000, generator=toy_gen)
toy_steps = 12
toy_sigmas = edm.karras_sigmas(toy_steps, 0.002, 80.0, 7.0)       # 12 Euler steps, 80 -> 0.002 -> 0


def toy_sample(weights=(0.5, 0.5), guidance: float = 1.0, n: int = 4000, keep_path: bool = False):
    """Euler steps of the probability-flow ODE from pure noise; guidance mixes a conditional and an
    unconditional denoiser: D = D_u + s (D_c - D_u)."""
    g = torch.Generator().manual_seed(seed + 1)
    x = 80.0 * torch.randn(n, generator=g)
    path = [x.clone()]
    for sigma, sigma_next in zip(toy_sigmas[:-1].tolist(), toy_sigmas[1:].tolist()):
        d_cond = toy_denoiser(x, sigma, weights)
        d = d_cond if guidance == 1.0 else toy_denoiser(x, sigma) + guidance * (d_cond - toy_denoiser(x, sigma))
        x = x + (sigma_next - sigma) * (x - d) / sigma
        path.append(x.clone())
    return (x, torch.stack(path)) if keep_path else x


samples, toy_path = toy_sample(keep_path=True)
fig, axes = plt.subplots(1, 3, figsize=(12, 3))
noising_sigmas = (0.05, 0.5, 2.0)
for sigma in noising_sigmas:
    axes[0].hist((data_points + sigma * torch.randn(4000, generator=toy_gen)).numpy(), bins=120,
                 histtype="step", density=True, label=f"sigma {sigma}")
axes[0].set_title("noising: data + sigma * noise")
axes[0].set_xlim(-6, 6)
axes[0].legend(fontsize=7)
for i in range(0, 4000, 200):
    axes[1].plot(toy_sigmas.tolist(), toy_path[:, i].numpy(), lw=0.6)
axes[1].set_xscale("symlog", linthresh=0.01)
axes[1].invert_xaxis()
axes[1].set_ylim(-4, 4)
axes[1].set_xlabel("sigma (80 -> 0)")
axes[1].set_title("sampling: ODE paths from noise to data")
axes[2].hist(data_points.numpy(), bins=80, density=True, alpha=0.5, label="data")
axes[2].hist(samples.numpy(), bins=80, density=True, histtype="step", lw=1.5, label="12 Euler steps")
axes[2].set_title("samples vs data")
axes[2].legend(fontsize=7)
fig.tight_layout()
plt.show()
toy_share_right = float((samples > 0).float().mean())
print(f"samples near +1: {toy_share_right:.1%} (data: 50%); sample std within a cluster "
      f"{samples[samples > 0].std():.3f} (data: {spread})")
# %% [markdown]
# **The denoiser, drawn.** `D(x; sigma)` for this data at a few noise levels: at small sigma it barely changes an `x`
# near a cluster and sends the points between the clusters to the nearer one (the jump at 0); at large sigma it can
# only answer close to the data's mean, 0, whatever `x` is. Sampling walks from the flat curves to the steep ones.
# %%
xs = torch.linspace(-4, 4, 401)
fig, ax = plt.subplots(figsize=(5, 3.2))
denoiser_sigmas = (0.05, 0.3, 1.0, 3.0, 10.0)
for sigma in denoiser_sigmas:
    ax.plot(xs.numpy(), toy_denoiser(xs, sigma).numpy(), label=f"sigma {sigma}")
ax.plot(xs.numpy(), xs.numpy(), "k:", lw=0.8, label="D = x (no change)")
ax.set_xlabel("noisy x")
ax.set_ylabel("D(x; sigma)")
ax.set_ylim(-1.5, 1.5)
ax.set_title("the ideal denoiser of the two-cluster data")
ax.legend(fontsize=7)
fig.tight_layout()
plt.show()
# %% [markdown]
# **Euler and Heun.** Euler's step uses the slope at its start only, so it cuts corners; that is one reason its
# samples above are wider than the data. Heun's method (EDM's Algorithm 1, `svd_lab.sampling.edm.sample_heun`)
# takes the Euler step, measures the slope where it landed, and redoes the step with the average of the two slopes:
# two network evaluations per step, but an error that falls with the square of the step size. Below, both samplers
# start from the same noise; the error is the mean distance of each sample from where a 500<!-- r:reference_steps -->-step Heun run takes
# the same starting point, at equal numbers of denoiser evaluations.
# %%
toy_model = edm.KnownDenoiser(lambda x, sigma: toy_denoiser(x.flatten(), float(sigma)).view_as(x))
start = torch.randn(4000, 1, 1, 1, 1, generator=torch.Generator().manual_seed(seed + 1)).double()
reference_steps = 500
reference = edm.sample_heun(toy_model, start, edm.karras_sigmas(reference_steps, 0.002, 80.0, 7.0), {},
                            progress=False)
sampler_error = {"Euler": {}, "Heun": {}}
for evaluations in (5, 11, 23, 47, 95):
    euler = edm.sample(toy_model, start, edm.karras_sigmas(evaluations, 0.002, 80.0, 7.0), {}, progress=False)
    heun = edm.sample_heun(toy_model, start, edm.karras_sigmas((evaluations + 1) // 2, 0.002, 80.0, 7.0), {},
                           progress=False)     # n steps cost 2n - 1 evaluations (the last step is Euler's)
    sampler_error["Euler"][evaluations] = float((euler - reference).abs().mean())
    sampler_error["Heun"][evaluations] = float((heun - reference).abs().mean())
    print(f"{evaluations:>3} evaluations: Euler {sampler_error['Euler'][evaluations]:.4f}, "
          f"Heun {sampler_error['Heun'][evaluations]:.4f}")
fig, ax = plt.subplots(figsize=(5, 3.2))
for name, errors in sampler_error.items():
    ax.loglog(list(errors), list(errors.values()), "o-", label=name)
ax.set_xlabel("denoiser evaluations")
ax.set_ylabel("mean |x - x_reference|")
ax.set_title("error against a 500-step reference")
ax.legend()
fig.tight_layout()
plt.show()
heun_wins_from = min((e for e in sampler_error["Heun"] if all(sampler_error["Heun"][f] < sampler_error["Euler"][f]
                                                              for f in sampler_error["Heun"] if f >= e)), default=None)
print(f"Heun is more accurate from {heun_wins_from} evaluations on; with fewer, its correction, measured at a tiny "
      "sigma after a huge step, misleads it" if heun_wins_from else "Heun never won here")
# %% [markdown]
# **Flow matching, the modern alternative.** Today's video DiTs (Wan, HunyuanVideo; SD3 for images) are trained with
# *flow matching* (rectified flow) instead: data and noise are joined by a straight line `x_t = (1 - t) x_0 + t n`,
# `t` from 0 (data) to 1 (noise), the network learns the velocity `v = n - x_0`, and sampling integrates
# `dx/dt = v` from `t = 1` down to 0 with Euler steps in `t` (`svd_lab.sampling.flow`). It is the same family of
# ODEs in other coordinates: `x_t / (1 - t)` is the data seen through noise `sigma = t / (1 - t)`, so the ideal
# velocity of this data comes from the same ideal denoiser, `v(x, t) = (x - D(x / (1 - t); t / (1 - t))) / t`. Below:
# flow-matching paths over `t`, and flow-matching Euler against the 500<!-- r:reference_steps -->-step reference above, from the same noise,
# beside EDM's Euler at the same numbers of evaluations (`shift` is Wan's and SD3's timestep shift, which spends more
# steps at high noise).
# %%
from svd_lab.sampling import flow


def toy_velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The ideal flow-matching velocity of the two-cluster data (from the ideal denoiser, see above)."""
    t = float(t)
    if t >= 1.0:
        return x - means.mean()               # at t = 1 the state is pure noise: E[x_0] = 0 here
    clean = toy_denoiser((x / (1 - t)).flatten(), t / (1 - t)).view_as(x).to(x.dtype)
    return (x - clean) / t


flow_path = [start[::200].flatten()]
flow.sample_flow(toy_velocity, start[::200], flow.flow_times(toy_steps), progress=False,
                 callback=lambda i, x, t: flow_path.append(x.flatten()))
flow_shifts = (1.0, 3.0)
flow_error = {shift: {} for shift in flow_shifts}
for evaluations in (5, 11, 23, 47, 95):
    for shift, errors in flow_error.items():
        flowed = flow.sample_flow(toy_velocity, start, flow.flow_times(evaluations, shift), progress=False)
        errors[evaluations] = float((flowed - reference).abs().mean())
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
axes[0].plot(flow.flow_times(toy_steps).tolist(), torch.stack(flow_path).numpy(), lw=0.6)
axes[0].invert_xaxis()
axes[0].set_xlabel("t (1 = noise -> 0 = data)")
axes[0].set_title("flow matching: 12 Euler steps in t")
axes[1].loglog(list(sampler_error["Euler"]), list(sampler_error["Euler"].values()), "o-", label="EDM Euler")
for shift, errors in flow_error.items():
    axes[1].loglog(list(errors), list(errors.values()), "s--", label=f"flow Euler, shift {shift:g}")
axes[1].set_xlabel("velocity / denoiser evaluations")
axes[1].set_ylabel("mean |x - x_reference|")
axes[1].set_title("error against the same 500-step reference")
axes[1].legend(fontsize=7)
fig.tight_layout()
plt.show()
for evaluations, edm_error in sampler_error["Euler"].items():
    print(f"{evaluations:>3} evaluations: EDM Euler {edm_error:.4f}, flow Euler "
          + ", ".join(f"shift {shift:g} {errors[evaluations]:.4f}" for shift, errors in flow_error.items()))
ratios = [flow_error[1.0][e] / sampler_error["Euler"][e] for e in flow_error[1.0]]
print(f"flow Euler (shift 1) / EDM Euler error at equal evaluations: {min(ratios):.2f} to {max(ratios):.2f} "
      "(below 1: the straighter path needs fewer steps on this data)")
# %% [markdown]
# **Guidance.** A *conditional* denoiser knows something extra (here: "you are asked for the +1 cluster", made a
# 90<!-- r:toy_condition_weights[1]*100 -->/10<!-- r:toy_condition_weights[0]*100 --> prior); an *unconditional* one does not. Classifier-free guidance extrapolates from the unconditional
# prediction through the conditional one with a scale s: `D = D_u + s (D_c - D_u)`. s = 1 is the conditional model;
# s > 1 follows the condition harder than the model learned it (sharper, less diverse); s = 0 ignores it.
# %%
guidance_share = {}
condition_weights = (0.1, 0.9)    # the conditional denoiser's prior: 10% -1, 90% +1
for s in (0.0, 1.0, 2.0, 4.0):
    guided = toy_sample(weights=condition_weights, guidance=s)
    guidance_share[s] = float((guided > 0).float().mean())
    print(f"guidance {s:>3}: {guidance_share[s]:6.1%} of samples in the requested +1 cluster")
# %% [markdown]
# ### Exercise 1 · Noise it yourself
#
# Make `my_noisy`: the toy `data_points` seen through noise of standard deviation sigma = 2<!-- r:exercise_sigma --> (one fresh Gaussian
# draw per point). Its spread should then be sqrt(var(data) + sigma^2).
# %%
exercise_sigma = 2.0
my_noisy = None   # your answer: a tensor shaped like data_points
# %% tags=["solution"]
# Solution (click to reveal)
if solutions:
    my_noisy = data_points + exercise_sigma * torch.randn(data_points.shape, generator=toy_gen)
# %%
def _is_noised_data(a: torch.Tensor) -> bool:
    """x = x0 + 2 n: what was added to each data point is noise of std 2, mean 0, independent of the point (a
    fresh sample of the right spread, or the data scaled up, does not pass)."""
    if a.shape != data_points.shape:
        return False
    added = a - data_points
    correlation = float(torch.corrcoef(torch.stack([added, data_points]))[0, 1])
    return abs(float(added.std()) - exercise_sigma) < 0.1 and abs(float(added.mean())) < 0.15 and abs(correlation) < 0.1


exercises.check("noise_it", my_noisy, _is_noised_data)
# %% [markdown]
# SVD and the mini world model below are exactly this, with a network for `D`, videos for `x`, and an image and
# a speed as the condition.
# %% [markdown]
# ## 1. The mini world: a ball that moves and bounces
#
# The mini model's training videos are generated, so every video comes with its ground truth: a ball of radius
# 3<!-- r:mini_world[radius] --> px moving at constant velocity on a 32x32<!-- r:mini_world[size] --> black square and
# bouncing off the walls. Its speed falls in one of 8<!-- r:mini_world[buckets] --> **speed buckets**
# (0.5<!-- r:mini_world[min_speed] --> to 2.5<!-- r:mini_world[max_speed] --> px per frame), the analogue of SVD's `motion_bucket_id`.
# %%
clip = data.generate(1, seed=seed, frames=config.frames, speed_bucket=torch.tensor([5]))
low, high = data.bucket_range(int(clip.speed_bucket))
print(f"speed bucket {int(clip.speed_bucket)} ({low:.2f}-{high:.2f} px/frame), "
      f"velocity {[round(v, 2) for v in clip.velocities[0, 0].tolist()]} px/frame (row, column)")
display.frame_grid(clip.frames[0, :, 0], title="a training video (8 frames)", fps=8)
# %% [markdown]
# ## 2. Video compression and spacetime patches
#
# The mini model's "video compression network" is a frame autoencoder: each 32x32<!-- r:mini_world[size] --> frame becomes a
# 4x8x8<!-- r:mini_latent_frame --> latent
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
# ### Exercise 2 · Tokens with two frames per patch
#
# Sora's patches span time too. How many tokens does the latent video above give with `patch_t = 2` (two frames per
# token) and the same spatial patch? Work it out from the grid, then check with `patchify`.
# %%
my_token_count = None   # your answer: an integer
# %% tags=["solution"]
# Solution (click to reveal)
if solutions:
    my_token_count = (latents.shape[1] // 2) * (latents.shape[3] // config.patch) * (latents.shape[4] // config.patch)
# %%
exercises.check("tokens_patch_t2", my_token_count,
                lambda a: int(a) == patchify(latents, 2, config.patch).shape[1])
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
# ### Exercise 3 · Break adaLN-Zero
#
# Build a `DiTBlock(hidden=64, heads=4)` whose modulation layer does *not* start at zero (e.g. draw its last
# layer's weights from a normal distribution with std 0.02), so that the gates are non-zero at initialisation.
# The check verifies that your block is no longer the identity on `x, c` -- which is exactly what adaLN-Zero avoids.
# %%
my_block = None   # your answer: a DiTBlock
# %% tags=["solution"]
# Solution (click to reveal)
if solutions:
    my_block = DiTBlock(hidden=64, heads=4)
    torch.nn.init.normal_(my_block.adaLN_modulation[-1].weight, std=0.02)
# %%
exercises.check("adaln_not_zero", my_block,
                lambda b: isinstance(b, DiTBlock) and not torch.allclose(b(x, c), x))
# %% [markdown]
# ## 4. Scaling: compute per forward pass
#
# DiT measures model size by **forward compute** rather than parameters: a smaller patch multiplies the number of
# tokens (DiT-XL/2 has 4x<!-- r:dit_token_ratio --> the tokens of DiT-XL/4 at nearly the same
# parameter count), and the paper finds that FID
# improves steadily with Gflops, whichever way they are added (depth/width or tokens). The table counts the
# multiply-adds of each model from its definition (PyTorch's FlopCounterMode on shapes only) and compares them
# with the paper's Table 4 (the paper's "Gflops" are multiply-adds).
# %%
dit_resolution = 256
dit_patches = (8, 4, 2)
table = flops.dit_table(dit_resolution)
dit_tokens = {p: (dit_resolution // 8 // p) ** 2 for p in dit_patches}   # the SD VAE's 8x, then patches
print(flops.format_dit_table(table))
# %%
fig, ax = plt.subplots(figsize=(6.5, 3.8))
for size, colour in zip(("S", "B", "L", "XL"), ("C0", "C1", "C2", "C3")):
    names = [f"{size}/{p}" for p in dit_patches]
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
# - **(a) first px**: distance between the generated first frame's ball and the input's (pixels);
# - **(b) present**: share of frames that show one ball of the right size (half to twice the input's area);
# - **(c) track ok**: share of videos whose ball is found in at least 6<!-- r:physics_rules[min_present_frames] --> of the 8<!-- r:dit_config[frames] --> frames
#   and follows a physical trajectory (constant velocity, bouncing off the walls) within
#   1.5<!-- r:physics_rules[track_tolerance_px] --> px RMS;
# - **median resid px**: the median of those RMS distances between the detected ball and its fitted trajectory;
# - **(d) speed r** and **(e) in bucket**: does the fitted speed follow the requested bucket? (Pearson correlation
#   between bucket and speed; share of videos whose speed lands in the requested bucket, +-1.)
# - the **bar** row is what the shipped model had to reach (`svd-lab mini eval` scores 64<!-- r:physics_rules[eval_videos] --> videos against it).
#
# The real videos score (almost) perfectly; a "static copy" (the first frame repeated) shows why the speed scores
# are needed: a ball that never moves is perfectly present and perfectly "physical".
# %%
rows = {
    "real videos": metrics.score_videos(reference.frames, reference.frames[:, 0], reference.speed_bucket),
    "static copy": metrics.score_videos(metrics.static_copy(reference), reference.frames[:, 0],
                                        reference.speed_bucket),
    "mini model": metrics.score_videos(videos, reference.frames[:, 0], reference.speed_bucket),
}
print(metrics.format_table(rows))
print(f"\n(on {num_videos} videos; the shipped model's full evaluation uses {metrics.EVAL_VIDEOS}: svd-lab mini eval)")
# %% [markdown]
# ### What could go wrong: look at every sample, not only the table
#
# A table can hide one bad video. Below, for every sample: the detected ball (dots; hollow where no ball of the
# right size was found), the trajectory fitted to it (line) and the path of the test video the first frame came
# from (dashed). The dashed path is only *one* possible future: a single frame does not say which way the ball
# is going (only how fast, through the bucket), so a sample may rightly take another direction. What must hold
# is that the dots lie on *some* physical line. Then the speed each video was asked for against the speed it shows.
# %%
fits = metrics.fit_videos(videos, reference.frames[:, 0])
fitted_tracks = fits.fitted_track()
fig, axes = plt.subplots(2, (num_videos + 1) // 2, figsize=(2.2 * ((num_videos + 1) // 2), 4.6))
for i, ax in enumerate(axes.flat[:num_videos]):
    true_track = reference.positions[i, :, 0]
    ax.plot(true_track[:, 1], true_track[:, 0], "--", color="0.6", lw=1)
    ax.plot(fitted_tracks[i, :, 1], fitted_tracks[i, :, 0], "-", color="C0", lw=1)
    found = fits.present[i]
    ax.plot(fits.centroids[i, found, 1], fits.centroids[i, found, 0], "o", color="C1", ms=3)
    missing = ~found & torch.isfinite(fits.centroids[i, :, 0])
    ax.plot(fits.centroids[i, missing, 1], fits.centroids[i, missing, 0], "o", mfc="none", color="C3", ms=4)
    verdict = "ok" if fits.track_pass[i] else "FAILS"
    ax.set_title(f"#{i} bucket {int(reference.speed_bucket[i])}: {verdict}\n"
                 f"{int(found.sum())}/{found.numel()} frames, resid {fits.residual[i]:.2f}", fontsize=7)
    ax.set_xlim(0, data.SIZE)
    ax.set_ylim(data.SIZE, 0)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
for ax in axes.flat[num_videos:]:
    ax.axis("off")
fig.suptitle("detected ball (dots), fitted trajectory (line), the test video's own path (dashed)", fontsize=9)
fig.tight_layout()
plt.show()
# %%
bucket_centres = data.MIN_SPEED + (reference.speed_bucket.float() + 0.5) * data.BUCKET_WIDTH
fig, ax = plt.subplots(figsize=(4.2, 3.4))
ax.plot([data.MIN_SPEED, data.MAX_SPEED], [data.MIN_SPEED, data.MAX_SPEED], color="0.7", lw=1, label="asked = shown")
ax.scatter(bucket_centres, fits.speed, c=["C0" if ok else "C3" for ok in fits.track_pass.tolist()], zorder=3)
ax.set_xlabel("requested speed (bucket centre, px/frame)")
ax.set_ylabel("fitted speed (px/frame)")
ax.set_title("requested vs measured speed (red: track fails)", fontsize=9)
ax.legend(fontsize=7)
plt.show()
failed = [i for i in range(num_videos) if not fits.track_pass[i]]
for i in failed:
    print(f"sample #{i}: the ball is found in {int(fits.present[i].sum())} of {fits.present.shape[1]} frames; "
          f"the fit is off by {fits.residual[i]:.2f} px RMS (limit {metrics.TRACK_TOLERANCE_PX})")
print(f"{len(failed)} of {num_videos} samples fail the physics check" + ("" if failed else ": all follow a physical track"))
# %% [markdown]
# Typical failures of a small video model, and what they teach: the ball **fades or vanishes** for a frame or two
# near a wall (the model is unsure whether it bounced, and averages "bounced" and "not bounced" into two faint
# balls, which the detector rejects), or it **moves at the wrong speed** (it read the speed bucket poorly). The
# fix is the usual one -- more training, more capacity -- and a metric that catches it, as here.
# %% [markdown]
# ## 7. Train one yourself: the EDM objective, live
#
# The shipped model trained for 16,000<!-- r:shipped_training[steps] --> steps
# (45<!-- r:shipped_training[minutes] --> minutes here, `tools/train_mini.sh`). Here you train the same DiT
# from scratch for `live_steps` steps on fresh bouncing-ball videos, reusing the shipped autoencoder. Each step:
#
# 1. draw a batch of clean latent videos `z0` (here: their change from the first frame, `k (z - z_first)`; notebook
#    02, section 4, says why);
# 2. draw one noise level per video, **log-normally**: `ln sigma ~ N(P_mean, P_std^2)` (the shipped recipe:
#    0.0<!-- r:train_recipe[p_mean] -->, 1.2<!-- r:train_recipe[p_std] -->), and noise it: `x = z0 + sigma n`;
# 3. the network sees `c_in x` and `c_noise = ln(sigma) / 4`, and the denoiser is `D = c_skip x + c_out F`;
# 4. EDM's loss is `lambda(sigma) |D - z0|^2` with `lambda = (sigma^2 + sd^2) / (sigma sd)^2`. Since
#    `lambda c_out^2 = 1`, that is plain regression of `F` onto the **effective target** `(z0 - c_skip x) / c_out`,
#    which has unit variance at every noise level: no noise level dominates the loss.
# %%
from svd_lab.mini.train import TrainSettings, train
from svd_lab.sampling.edm import edm_preconditioning

recipe = TrainSettings()
draw = torch.Generator().manual_seed(seed)
train_sigmas = torch.exp(recipe.p_mean + recipe.p_std * torch.randn(20000, generator=draw))
c_skip, c_out, c_in, c_noise = edm_preconditioning(0.5)(train_sigmas)
loss_weight = (train_sigmas**2 + 0.25) / (train_sigmas * 0.5) ** 2
print(f"training noise levels: median {train_sigmas.median():.2f}, 5%-95% {train_sigmas.quantile(0.05):.3f}-"
      f"{train_sigmas.quantile(0.95):.2f}; lambda * c_out^2 = {float((loss_weight * c_out**2).mean()):.4f} (always 1)")
fig, ax = plt.subplots(figsize=(6, 2.8))
ax.hist(train_sigmas.log10().numpy(), bins=80, density=True)
ax.set_xlabel("log10 sigma")
ax.set_title(f"noise levels drawn in training: ln sigma ~ N({recipe.p_mean}, {recipe.p_std}^2)")
plt.show()
# %%
live_settings = TrainSettings(steps=live_steps, warmup=min(200, live_steps // 4), seed=seed)
live_model, live_record = train(live_settings, progress=False, log=lambda message: None,
                                autoencoder=model.autoencoder)
live_losses = [loss for _, _, loss in live_record["loss"]]
fig, ax = plt.subplots(figsize=(6, 2.8))
ax.plot(live_losses, alpha=0.4, lw=0.7)
window = max(1, len(live_losses) // 20)
ax.plot([sum(live_losses[max(0, i - window):i + 1]) / len(live_losses[max(0, i - window):i + 1])
         for i in range(len(live_losses))], lw=1.5)
ax.set_xlabel("step")
ax.set_ylabel("loss")
ax.set_title(f"live training: {live_steps} steps in {live_record['dit_seconds']:.0f} s")
plt.show()
early = sum(live_losses[:20]) / 20
late = sum(live_losses[-20:]) / 20
print(f"loss: first 20 steps {early:.3f}, last 20 steps {late:.3f}")
# %%
from svd_lab.mini.dit import DiTConfig, VideoDiT
from svd_lab.mini.model import MiniWorldModel

torch.manual_seed(seed)
untrained = MiniWorldModel(model.autoencoder, VideoDiT(DiTConfig(**recipe.dit)), model.residual_scale).eval()
compared = {"untrained (step 0)": untrained, f"live ({live_steps} steps)": live_model.eval(),
            "shipped (16,000 steps)": model}
compared_videos = {name: m.generate(reference.frames[:, 0], reference.speed_bucket, seed=seed, settings=settings)
                   for name, m in compared.items()}
IPython.display.display(display.compare([v[-1, :, 0] for v in compared_videos.values()], list(compared_videos),
                                        fps=8, width=96,
                                        title=f"the same first frame and speed bucket {int(reference.speed_bucket[-1])}"))
live_rows = {name: metrics.score_videos(v, reference.frames[:, 0], reference.speed_bucket)
             for name, v in compared_videos.items()}
print(metrics.format_table(live_rows))
# %% [markdown]
# Read the three rows. The **untrained** DiT scores like the static copy. Its last layer starts at zero
# (adaLN-Zero), so its output F is 0 and the denoiser reduces to `D = c_skip(sigma) x`: it predicts nothing, it
# only shrinks its own noisy input, and the sampler ends on a scaled-down remnant of the starting noise around the
# conditioning -- not on a prediction of "no change". The ball stays where the first frame put it (speed r near 0,
# nothing in bucket). After a minute of training the ball starts to move, roughly at the requested speed, but
# often fades or blurs; 16,000<!-- r:shipped_training[steps] --> steps make it sharp and physical. Try
# `live_steps = 1000` (the loss plot's title says how long this run took: scale it).
#
# ## What you learned
#
# - Diffusion generates by integrating `dx/dsigma = (x - D(x; sigma)) / sigma` from noise to data; a network
#   learns the denoiser `D`; guidance extrapolates from an unconditional towards a conditional prediction.
# - Sora's recipe: compress video to latents, cut them into spacetime patches, run a diffusion transformer on the
#   tokens. DiT conditions every block through adaLN-Zero, and its compute grows as the patches shrink.
# - A small video model can be *measured* when its world is known, and a table of scores needs its failures looked at.
# - EDM's training objective: log-normal noise levels, preconditioning, and a unit-variance regression target.
#
# ## References
#
# - OpenAI 2024, [*Video generation models as world simulators*](https://openai.com/index/video-generation-models-as-world-simulators/) (the Sora report).
# - Peebles & Xie 2023, *Scalable Diffusion Models with Transformers* (DiT), [arXiv:2212.09748](https://arxiv.org/abs/2212.09748);
#   code: [facebookresearch/DiT](https://github.com/facebookresearch/DiT).
# - Karras et al. 2022, *Elucidating the Design Space of Diffusion-Based Generative Models* (EDM),
#   [arXiv:2206.00364](https://arxiv.org/abs/2206.00364).
# - Song et al. 2021, *Score-Based Generative Modeling through Stochastic Differential Equations* (the
#   probability-flow ODE), [arXiv:2011.13456](https://arxiv.org/abs/2011.13456).
# - Ho & Salimans 2022, *Classifier-Free Diffusion Guidance*, [arXiv:2207.12598](https://arxiv.org/abs/2207.12598).
# - Dosovitskiy et al. 2021, *An Image is Worth 16x16 Words* (ViT), [arXiv:2010.11929](https://arxiv.org/abs/2010.11929).
# %% tags=["record"]
# Values the course's regression runs compare with their baselines (see tests/baselines/); nothing is shown.
import json
import math

from svd_lab import paths

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
record("toy_share_right", toy_share_right)
record("toy_guidance_share", {str(k): v for k, v in guidance_share.items()})
record("toy_sampler_error", {name: {str(k): v for k, v in errors.items()} for name, errors in sampler_error.items()},
       tolerance="rel:0.01")
record("toy_flow_error", {str(shift): {str(k): v for k, v in errors.items()} for shift, errors in flow_error.items()},
       tolerance="rel:0.01")
record("live_steps", live_record["dit_steps"])
record("failed_samples", failed)
record("live_loss_decreased", late < early)
record("toy_sigmas", toy_sigmas)
record("toy_steps", toy_steps)
record("noising_sigmas", list(noising_sigmas))
record("denoiser_sigmas", list(denoiser_sigmas))
record("reference_steps", reference_steps)
record("flow_shifts", list(flow_shifts))
record("toy_condition_weights", list(condition_weights))
record("exercise_sigma", exercise_sigma)
record("mini_world", {"radius": data.RADIUS, "size": [data.SIZE, data.SIZE], "buckets": data.NUM_SPEED_BUCKETS,
                      "min_speed": data.MIN_SPEED, "max_speed": data.MAX_SPEED})
record("mini_latent_frame", list(latents.shape[2:]))
record("dit_resolution", [dit_resolution, dit_resolution])
record("dit_patches", list(dit_patches))
record("dit_token_ratio", dit_tokens[2] / dit_tokens[4])
record("physics_rules", {"min_present_frames": metrics.MIN_PRESENT_FRAMES, "track_tolerance_px": metrics.TRACK_TOLERANCE_PX,
                         "eval_videos": metrics.EVAL_VIDEOS})
record("train_recipe", {"p_mean": recipe.p_mean, "p_std": recipe.p_std})
_shipped = json.loads((paths.shipped_checkpoints_dir() / "mini" / "training.json").read_text())
record("shipped_training", {"steps": _shipped["dit_steps"], "minutes": _shipped["total_seconds"] / 60})
