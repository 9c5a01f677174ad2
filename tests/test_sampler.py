"""The EDM sampler: schedule, preconditionings, Euler steps, guidance, callback -- against math and diffusers."""

from __future__ import annotations

import math

import pytest
import torch

from svd_lab.sampling import edm


# ------------------------------------------------------------------ schedule
def test_karras_sigmas_shape_ends_and_monotone():
    sigmas = edm.karras_sigmas(25)
    assert sigmas.dtype == torch.float32 and sigmas.shape == (26,)
    assert sigmas[-1].item() == 0.0
    assert sigmas[0].item() == pytest.approx(700.0, rel=1e-6)
    assert sigmas[-2].item() == pytest.approx(0.002, rel=1e-5)
    assert bool((sigmas[1:] < sigmas[:-1]).all())


def test_karras_sigmas_formula_and_single_step():
    n, smin, smax, rho = 5, 0.1, 80.0, 7.0
    sigmas = edm.karras_sigmas(n, smin, smax, rho)
    for i in range(n):
        expected = (smax ** (1 / rho) + i / (n - 1) * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho
        assert sigmas[i].item() == pytest.approx(expected, rel=1e-6)
    assert edm.karras_sigmas(1).tolist() == [700.0, 0.0]
    f32 = edm.karras_sigmas(n, smin, smax, rho, compute_dtype=torch.float32)
    # float32 ** 7 amplifies the ramp's rounding: a few ulps apart, never more
    torch.testing.assert_close(f32, sigmas, rtol=4e-6, atol=0)


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_karras_sigmas_rejects_bad_steps(bad):
    with pytest.raises(ValueError, match="num_steps"):
        edm.karras_sigmas(bad)


def test_karras_sigmas_equal_diffusers_scheduler_bitwise():
    from diffusers import EulerDiscreteScheduler

    scheduler = EulerDiscreteScheduler(
        prediction_type="v_prediction", use_karras_sigmas=True, sigma_min=0.002, sigma_max=700.0,
        timestep_type="continuous", timestep_spacing="leading", steps_offset=1, beta_schedule="scaled_linear",
        beta_start=0.00085, beta_end=0.012, interpolation_type="linear",
    )
    for steps in (3, 25, 30):
        scheduler.set_timesteps(steps)
        assert torch.equal(scheduler.sigmas, edm.karras_sigmas(steps))
        noise_levels = edm.v_scaling_preconditioning.noise_level(edm.karras_sigmas(steps)[:-1])
        assert torch.equal(scheduler.timesteps, noise_levels)


def test_linear_guidance():
    g = edm.linear_guidance(14, 1.0, 2.5)
    assert g.shape == (14,) and g.dtype == torch.float32
    assert g[0].item() == 1.0 and g[-1].item() == 2.5
    torch.testing.assert_close(g[1:] - g[:-1], torch.full((13,), 1.5 / 13))
    assert edm.linear_guidance(1, 1.5, 3.0).tolist() == [1.5]


# ------------------------------------------------------------------ preconditionings
@pytest.mark.parametrize("s", [0.002, 0.5, 1.0, 7.3, 700.0])
def test_v_scaling_coefficients(s):
    c_skip, c_out, c_in, c_noise = edm.v_scaling_preconditioning(torch.tensor(s, dtype=torch.float64))
    assert c_skip.item() == pytest.approx(1 / (s * s + 1), rel=1e-12)
    assert c_out.item() == pytest.approx(-s / math.sqrt(s * s + 1), rel=1e-12)
    assert c_in.item() == pytest.approx(1 / math.sqrt(s * s + 1), rel=1e-12)
    assert c_noise.item() == pytest.approx(math.log(s) / 4, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("s", [0.002, 0.5, 3.0, 80.0])
def test_edm_coefficients(s):
    sd = 0.5
    c_skip, c_out, c_in, c_noise = edm.edm_preconditioning(sd)(torch.tensor(s, dtype=torch.float64))
    assert c_skip.item() == pytest.approx(sd**2 / (s**2 + sd**2), rel=1e-12)
    assert c_out.item() == pytest.approx(s * sd / math.sqrt(s**2 + sd**2), rel=1e-12)
    assert c_in.item() == pytest.approx(1 / math.sqrt(s**2 + sd**2), rel=1e-12)
    assert c_noise.item() == pytest.approx(math.log(s) / 4, rel=1e-12, abs=1e-15)
    with pytest.raises(ValueError):
        edm.edm_preconditioning(0)


@pytest.mark.parametrize("pre", [edm.v_scaling_preconditioning, edm.edm_preconditioning(0.5)])
def test_written_out_forms_match_the_coefficients(pre):
    x, raw = torch.randn(2, 3, 4, 5, 5, dtype=torch.float64), torch.randn(2, 3, 4, 5, 5, dtype=torch.float64)
    sigma = torch.tensor(3.7, dtype=torch.float64)
    c_skip, c_out, c_in, _ = pre(sigma)
    torch.testing.assert_close(pre.scale_input(x, sigma), c_in * x)
    torch.testing.assert_close(pre.combine(x, raw, sigma), c_skip * x + c_out * raw)


# ------------------------------------------------------------------ sampler behaviour
def _oracle_network(pre, target):
    """A raw network whose denoiser returns exactly ``target`` (the data is a point mass)."""

    def network(x_in, c_noise, cond):
        sigma = torch.exp(4 * c_noise).to(torch.float64)
        c_skip, c_out, c_in, _ = pre(sigma)
        x = x_in.to(torch.float64) / c_in
        return ((target - c_skip * x) / c_out).to(x_in.dtype)

    return network


@pytest.mark.parametrize("pre", [edm.v_scaling_preconditioning, edm.edm_preconditioning(0.5)])
def test_point_mass_is_recovered(pre):
    torch.manual_seed(0)
    target = torch.randn(1, 2, 3, 4, 4, dtype=torch.float64)
    denoiser = edm.Denoiser(_oracle_network(pre, target), pre)
    out = edm.sample(denoiser, torch.randn(1, 2, 3, 4, 4, dtype=torch.float64), edm.karras_sigmas(6), {},
                     progress=False)
    torch.testing.assert_close(out, target, rtol=0, atol=1e-6)


def test_gaussian_data_gets_the_right_spread():
    """Data ~ N(0, s_d^2): the ideal denoiser is x s_d^2 / (s_d^2 + sigma^2); samples must have std s_d."""
    sd = 0.5
    pre = edm.edm_preconditioning(sd)

    def network(x_in, c_noise, cond):  # F such that D(x) = x * sd^2/(sd^2+sigma^2)
        sigma = torch.exp(4 * c_noise)
        c_skip, c_out, c_in, _ = pre(sigma)
        x = x_in / c_in
        return (x * sd**2 / (sd**2 + sigma**2) - c_skip * x) / c_out

    gen = torch.Generator().manual_seed(1)
    noise = torch.randn(4000, 1, 1, 2, 2, generator=gen, dtype=torch.float64)
    denoiser = edm.Denoiser(network, pre)

    def euler_gain(sigmas):  # the ODE dx/dsigma = x sigma / (sd^2 + sigma^2) is linear: Euler multiplies x
        gain = sigmas[0].double()
        for s0, s1 in zip(sigmas[:-1].double(), sigmas[1:].double()):
            gain = gain * (1 + s0 * (s1 - s0) / (sd**2 + s0**2))
        return gain

    sigmas = edm.karras_sigmas(40, 0.002, 80.0)
    out = edm.sample(denoiser, noise, sigmas, {}, progress=False)
    # rtol 1e-6: the network recovers sigma from the float32 c_noise = ln(sigma)/4 (float32 rounding)
    torch.testing.assert_close(out, noise * euler_gain(sigmas), rtol=1e-6, atol=0)
    # Exact solution x(0) = x(sigma_max) * sd / sqrt(sd^2 + sigma_max^2): Euler converges to std sd (O(1/N)).
    assert float(euler_gain(sigmas)) == pytest.approx(sd, rel=0.1)
    assert float(euler_gain(edm.karras_sigmas(1000, 0.002, 80.0))) == pytest.approx(sd, rel=0.005)
    assert out.std().item() == pytest.approx(float(euler_gain(sigmas)), rel=0.03)
    assert abs(out.mean().item()) < 0.02


def _gaussian_denoiser(sd: float) -> edm.Denoiser:
    """The ideal denoiser of data ~ N(0, sd^2), D(x; sigma) = x sd^2 / (sd^2 + sigma^2), as a raw network."""
    pre = edm.edm_preconditioning(sd)

    def network(x_in, c_noise, cond):
        sigma = torch.exp(4 * c_noise).to(torch.float64)
        c_skip, c_out, c_in, _ = pre(sigma)
        x = x_in / c_in
        return (x * sd**2 / (sd**2 + sigma**2) - c_skip * x) / c_out

    return edm.Denoiser(network, pre)


def test_heun_follows_its_formula_and_converges_at_second_order():
    """On Gaussian data the ODE dx/dsigma = x sigma / (sd^2 + sigma^2) is linear, so each sampler multiplies x by a
    gain computed here in closed form (the reference); the exact solution is sqrt(sd^2 + sigma^2) / sqrt(sd^2 +
    sigma_max^2). Heun's error falls ~4x when the steps double (Euler's ~2x), and it beats Euler at equal network
    evaluations."""
    sd, smax, smin = 0.5, 80.0, 0.002
    denoiser = _gaussian_denoiser(sd)
    noise = torch.randn(64, 1, 1, 2, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def slope(x, s):
        return x * s / (sd**2 + s**2)

    def heun_gain(sigmas):
        gain = sigmas[0].double()
        for s0, s1 in zip(sigmas[:-1].double(), sigmas[1:].double()):
            d = slope(gain, s0)
            euler = gain + d * (s1 - s0)
            gain = gain + (d + slope(euler, s1)) / 2 * (s1 - s0) if s1 > 0 else euler
        return gain

    def euler_gain(sigmas):
        gain = sigmas[0].double()
        for s0, s1 in zip(sigmas[:-1].double(), sigmas[1:].double()):
            gain = gain + slope(gain, s0) * (s1 - s0)
        return gain

    sigmas = edm.karras_sigmas(12, smin, smax)
    out = edm.sample_heun(denoiser, noise, sigmas, {}, progress=False)
    torch.testing.assert_close(out, noise * heun_gain(sigmas), rtol=1e-6, atol=0)
    exact = sd / (sd**2 + smax**2) ** 0.5 * smax        # x(0) / n, with x(sigma_max) = n * sigma_max

    def error(gain_of, steps):
        return abs(float(gain_of(edm.karras_sigmas(steps, smin, smax))) - exact)

    # measured |gain - exact| (Euler / Heun): 5 steps 0.266 / 0.758, 10: 0.135 / 0.110, 20: 0.069 / 0.022,
    # 40: 0.035 / 0.0049, 80: 0.018 / 0.0012
    assert error(heun_gain, 40) < error(heun_gain, 20) / 3.0          # second order: ~4x per halving
    assert error(euler_gain, 20) / error(euler_gain, 40) < 2.6         # first order: ~2x
    assert error(heun_gain, 20) < error(euler_gain, 40)                # 39 vs 40 network evaluations
    assert error(heun_gain, 40) < error(euler_gain, 80) / 3            # 79 vs 80
    assert error(heun_gain, 5) > error(euler_gain, 5)                  # too few steps: the correction misleads


def test_a_known_denoiser_runs_through_both_samplers():
    """KnownDenoiser(D) is sampled exactly as the same D written as a raw network with its preconditioning."""
    sd = 0.5
    known = edm.KnownDenoiser(lambda x, sigma: x * sd**2 / (sd**2 + sigma.to(x.dtype) ** 2))
    noise = torch.randn(8, 1, 1, 2, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    sigmas = edm.karras_sigmas(10, 0.002, 80.0)
    for sampler in (edm.sample, edm.sample_heun):
        torch.testing.assert_close(sampler(known, noise, sigmas, {}, progress=False),
                                   sampler(_gaussian_denoiser(sd), noise, sigmas, {}, progress=False),
                                   rtol=1e-6, atol=1e-9)


def test_heun_guides_and_calls_back_as_euler_does():
    calls, steps = [], []

    def network(x_in, c_noise, cond):
        calls.append(x_in.shape[0])
        return torch.zeros_like(x_in)

    den = edm.Denoiser(network, edm.edm_preconditioning(0.5))
    cond = {"c": torch.ones(1, 3)}
    edm.sample_heun(den, torch.randn(1, 2, 1, 2, 2), edm.karras_sigmas(3), cond,
                    uncond_builder=lambda c: {"c": 0 * c["c"]}, guidance=torch.tensor([1.0, 2.0]),
                    callback=steps.append, progress=False)
    assert calls == [2] * 5            # [uncond, cond] batched; 2 + 2 + 1 evaluations (the last step is Euler)
    assert [s.index for s in steps] == [0, 1, 2] and steps[-1].sigma_next == 0.0
    with pytest.raises(ValueError, match="strictly decreasing"):
        edm.sample_heun(den, torch.randn(1, 1, 1, 2, 2), torch.tensor([1.0, 2.0, 0.0]), {}, progress=False)


def test_guidance_mixes_raw_outputs_per_frame_and_batches_uncond_first():
    calls = []
    pre = edm.v_scaling_preconditioning

    def network(x_in, c_noise, cond):
        calls.append((x_in.shape[0], cond["label"].flatten().tolist(), cond["keep"]))
        return torch.zeros_like(x_in) + cond["label"].view(-1, 1, 1, 1, 1)

    seen = []
    noise = torch.randn(1, 3, 2, 2, 2)
    edm.sample(
        edm.Denoiser(network, pre), noise, edm.karras_sigmas(2), {"label": torch.tensor([1.0]), "keep": "same"},
        uncond_builder=lambda c: {"label": torch.zeros_like(c["label"])},
        guidance=torch.tensor([1.0, 2.0, 3.0]),
        callback=seen.append, progress=False,
    )
    assert calls == [(2, [0.0, 1.0], "same")] * 2
    assert [s.index for s in seen] == [0, 1] and seen[0].num_steps == 2
    # raw F = 0 + s_t * (1 - 0) = s_t per frame: recover it from the first step's denoised output.
    first = seen[0]
    sigma = torch.tensor(first.sigma)
    x0 = noise * pre.initial_noise_scale(sigma)
    raw = (first.denoised - x0 / (sigma**2 + 1)) / (-sigma / (sigma**2 + 1) ** 0.5)
    torch.testing.assert_close(raw.mean(dim=(0, 2, 3, 4)), torch.tensor([1.0, 2.0, 3.0]))


def test_unit_guidance_runs_the_conditional_branch_only():
    batches = []

    def network(x_in, c_noise, cond):
        batches.append(x_in.shape[0])
        return torch.zeros_like(x_in)

    edm.sample(edm.Denoiser(network, edm.v_scaling_preconditioning), torch.randn(1, 2, 1, 2, 2),
               edm.karras_sigmas(3), {"c": torch.ones(1)}, uncond_builder=lambda c: c,
               guidance=torch.ones(2), progress=False)
    assert batches == [1, 1, 1]


def test_sampler_input_errors():
    den = edm.Denoiser(lambda x, c, cond: x, edm.v_scaling_preconditioning)
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\)"):
        edm.sample(den, torch.randn(2, 3, 4, 4), edm.karras_sigmas(2), {}, progress=False)
    with pytest.raises(ValueError, match="decreasing"):
        edm.sample(den, torch.randn(1, 1, 1, 2, 2), torch.tensor([1.0, 2.0, 0.0]), {}, progress=False)
    with pytest.raises(ValueError, match="uncond_builder"):
        edm.sample(den, torch.randn(1, 2, 1, 2, 2), edm.karras_sigmas(2), {}, guidance=torch.tensor([1.0, 2.0]),
                   progress=False)
    with pytest.raises(ValueError, match="one scale per frame"):
        edm.sample(den, torch.randn(1, 2, 1, 2, 2), edm.karras_sigmas(2), {}, uncond_builder=dict,
                   guidance=torch.tensor([1.0, 2.0, 3.0]), progress=False)


def test_euler_steps_equal_diffusers_scheduler_bitwise():
    """Same raw outputs in, same latents out: our loop vs EulerDiscreteScheduler (v-prediction, Karras)."""
    from diffusers import EulerDiscreteScheduler

    scheduler = EulerDiscreteScheduler(prediction_type="v_prediction", use_karras_sigmas=True, sigma_min=0.002,
                                       sigma_max=700.0, timestep_type="continuous", timestep_spacing="leading")
    steps = 6
    weight = torch.randn(4, 4, generator=torch.Generator().manual_seed(3))

    def network(x_in, c_noise, cond):  # deterministic, nonlinear, mixes channels and uses c_noise
        return torch.tanh(torch.einsum("btchw,cd->btdhw", x_in, weight) + c_noise) * cond["gain"].view(-1, 1, 1, 1, 1)

    gen = torch.Generator().manual_seed(7)
    noise = torch.randn(1, 3, 4, 6, 6, generator=gen)
    guidance = edm.linear_guidance(3, 1.0, 2.5)
    gain = torch.tensor([0.7])

    ours = edm.sample(edm.Denoiser(network, edm.v_scaling_preconditioning), noise, edm.karras_sigmas(steps),
                      {"gain": gain}, uncond_builder=lambda c: {"gain": torch.full_like(c["gain"], 0.2)},
                      guidance=guidance, progress=False)

    scheduler.set_timesteps(steps)
    latents = noise * scheduler.init_noise_sigma
    both_gain = torch.tensor([0.2, 0.7])
    for t in scheduler.timesteps:
        model_in = scheduler.scale_model_input(torch.cat([latents] * 2), t)
        out = network(model_in, t, {"gain": both_gain})
        out_u, out_c = out.chunk(2)
        out = out_u + guidance.view(1, 3, 1, 1, 1) * (out_c - out_u)
        latents = scheduler.step(out, t, latents).prev_sample
    assert torch.equal(ours, latents)
