"""Parity of sora_mini.diffusion with diffusers' schedulers: same schedule, noising and step, to 1e-6."""

import math

import pytest
import torch

diffusers = pytest.importorskip("diffusers")
from diffusers import DDIMScheduler, DDPMScheduler, FlowMatchEulerDiscreteScheduler

from sora_mini.diffusion import (
    FlowMatching,
    FlowOptions,
    GaussianDiffusion,
    GaussianOptions,
    ddim_step,
    ddpm_step,
    ddpm_timesteps,
    euler_step,
    sample,
    shift_mu,
)
from sora_mini.diffusion.ddpm import DIFFUSERS_PREDICTION

ATOL = 1e-6
SCHEDULES = {"linear": "linear", "cosine": "squaredcos_cap_v2", "scaled_linear": "scaled_linear"}


def close(a, b, atol=ATOL, rtol=0.0):
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    err = (a - b).abs().max().item()
    assert torch.allclose(a, b, atol=atol, rtol=rtol), f"max |diff| = {err:.3g}"


def data(shape=(3, 4, 5, 6), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g), torch.randn(shape, generator=g)


# ----------------------------------------------------------------------------------------------
# DDPM: schedule, add_noise, get_velocity
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ours", list(SCHEDULES))
def test_alphas_cumprod_match(ours):
    ref = DDPMScheduler(beta_schedule=SCHEDULES[ours], beta_start=0.00085 if ours == "scaled_linear"
                        else 1e-4, beta_end=0.012 if ours == "scaled_linear" else 0.02)
    diff = GaussianDiffusion(beta_schedule=ours, beta_start=ref.config.beta_start, beta_end=ref.config.beta_end)
    close(diff.schedule.betas, ref.betas)
    close(diff.schedule.alphas_cumprod, ref.alphas_cumprod)


@pytest.mark.parametrize("ours", ["linear", "cosine"])
def test_add_noise_and_velocity_match(ours):
    ref = DDPMScheduler(beta_schedule=SCHEDULES[ours])
    diff = GaussianDiffusion(beta_schedule=ours)
    x0, noise, _ = data()
    t = torch.tensor([0, 499, 999])
    close(diff.q_sample(x0, t.float(), noise), ref.add_noise(x0, noise, t))
    close(diff.velocity(x0, noise, t.float()), ref.get_velocity(x0, noise, t))


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("steps", [1, 7, 10, 50])
def test_timestep_spacing_matches(spacing, steps):
    ref = DDPMScheduler(timestep_spacing=spacing)
    ref.set_timesteps(steps)
    assert ddpm_timesteps(1000, steps, spacing) == ref.timesteps.tolist()


# ----------------------------------------------------------------------------------------------
# DDPM and DDIM steps
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_ddpm_step_matches(prediction, clip, schedule):
    ref = DDPMScheduler(beta_schedule=SCHEDULES[schedule], prediction_type=DIFFUSERS_PREDICTION[prediction],
                        clip_sample=clip, timestep_spacing="trailing")
    ref.set_timesteps(20)
    diff = GaussianDiffusion(beta_schedule=schedule, prediction=prediction)
    _, x_t, out = data()
    ts = ref.timesteps.tolist()
    for i in [0, 5, len(ts) - 1]:  # the noisiest step, a middle one, and the last (no noise added)
        t, t_prev = ts[i], (ts[i + 1] if i + 1 < len(ts) else -1)
        seed = 1234 + i
        noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(seed))
        r = ref.step(out, t, x_t, generator=torch.Generator().manual_seed(seed))
        mine, x0_hat = ddpm_step(diff, out, t, t_prev, x_t, noise=noise, clip_x0=1.0 if clip else None)
        close(x0_hat, r.pred_original_sample, rtol=1e-6)
        close(mine, r.prev_sample, rtol=1e-6)


@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
@pytest.mark.parametrize("eta", [0.0, 0.3, 1.0])
def test_ddim_step_matches(prediction, eta):
    ref = DDIMScheduler(prediction_type=DIFFUSERS_PREDICTION[prediction], clip_sample=False,
                        timestep_spacing="trailing")
    ref.set_timesteps(10)
    diff = GaussianDiffusion(prediction=prediction)
    _, x_t, out = data(seed=1)
    variance_noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(7))
    ts = ref.timesteps.tolist()
    for i in range(len(ts)):
        t, t_prev = ts[i], (ts[i + 1] if i + 1 < len(ts) else -1)
        r = ref.step(out, t, x_t, eta=eta, variance_noise=variance_noise)
        mine, x0_hat = ddim_step(diff, out, t, t_prev, x_t, eta=eta, noise=variance_noise)
        close(x0_hat, r.pred_original_sample, rtol=1e-6)
        close(mine, r.prev_sample, rtol=1e-6)


def test_ddim_clipped_step_matches():
    ref = DDIMScheduler(clip_sample=True, timestep_spacing="trailing")
    ref.set_timesteps(10)
    diff = GaussianDiffusion()
    _, x_t, out = data(seed=2)
    noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(3))
    r = ref.step(out, 599, x_t, eta=0.5, use_clipped_model_output=True, variance_noise=noise)
    mine, _ = ddim_step(diff, out, 599, 499, x_t, eta=0.5, noise=noise, clip_x0=1.0)
    close(mine, r.prev_sample, rtol=1e-6)


def linear_model(x, t, **_):
    """A deterministic stand-in for a network: depends on both x and t, like a real one."""
    tt = t.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)
    return 0.7 * x + 0.3 * torch.sin(tt / 100.0 + x)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_ddim_sampling_loop_matches(prediction):
    """Our whole loop equals diffusers' set_timesteps + step loop (leading spacing, 8 steps)."""
    diff = GaussianDiffusion(prediction=prediction)
    ref = DDIMScheduler(prediction_type=DIFFUSERS_PREDICTION[prediction], clip_sample=False)
    ref.set_timesteps(8)
    x_T = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(5))
    x = x_T.clone()
    for t in ref.timesteps:
        x = ref.step(linear_model(x, t.float().expand(2)), t, x).prev_sample
    mine = sample(linear_model, diff, x_T.shape, sampler="ddim", steps=8, options=GaussianOptions(spacing="leading"),
                  noise=x_T, progress=False)
    close(mine, x, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------------------------
# Flow matching
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shift, mu", [(1.0, None), (3.0, None), (1.0, 0.63)])
def test_flow_sigmas_match(shift, mu):
    ref = FlowMatchEulerDiscreteScheduler(shift=shift, use_dynamic_shifting=mu is not None)
    ref.set_timesteps(4, mu=mu)
    flow = FlowMatching(shift=shift)
    times = flow.sampling_times(4, mu=mu, grid="diffusers")
    close(times, ref.sigmas)
    close(times[:-1] * flow.timestep_scale, ref.timesteps, atol=1e-3)  # float32 near 1000


def test_shift_mu_matches_flux_formula():
    try:
        from diffusers.pipelines.flux.pipeline_flux import calculate_shift
    except ImportError:  # pragma: no cover - the pipeline needs transformers
        pytest.skip("diffusers' Flux pipeline cannot be imported here")
    for n in (64, 256, 1024, 4096, 8000):
        assert math.isclose(shift_mu(n), calculate_shift(n), abs_tol=1e-9)


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_flow_scale_noise_and_euler_step_match(shift):
    ref = FlowMatchEulerDiscreteScheduler(shift=shift)
    ref.set_timesteps(6)
    flow = FlowMatching(shift=shift)
    x0, noise, v = data(seed=4)
    times = flow.sampling_times(6, grid="diffusers")
    for i, t in enumerate(ref.timesteps):
        ref_noised = ref.scale_noise(x0, t.reshape(1), noise)
        close(flow.q_sample(x0, times[i].expand(x0.shape[0]), noise), ref_noised)
    ref.set_timesteps(6)
    x = x0.clone()
    for i, t in enumerate(ref.timesteps):
        r = ref.step(v, t, x).prev_sample
        close(euler_step(v, times[i], times[i + 1], x), r)
        x = r


def test_flow_euler_loop_matches():
    flow = FlowMatching(shift=3.0)
    ref = FlowMatchEulerDiscreteScheduler(shift=3.0)
    ref.set_timesteps(5)
    x_T = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(6))
    x = x_T.clone()
    # the package's model_fn sees t in [0, 1]; diffusers' transformer sees sigma * 1000
    for t in ref.timesteps:
        x = ref.step(linear_model(x, t.expand(2) / 10.0), t, x).prev_sample
    mine = sample(lambda x, t: linear_model(x, t * flow.timestep_scale / 10.0), flow, x_T.shape,
                  sampler="euler", steps=5, options=FlowOptions(grid="diffusers"), noise=x_T, progress=False)
    close(mine, x, atol=1e-5, rtol=1e-5)
