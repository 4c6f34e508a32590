"""Unit tests for sora_mini.diffusion: samplers recover a known point, guidance, masks, bad input."""

import dataclasses
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sora_mini.diffusion import (
    SAMPLERS,
    FlowMatching,
    FlowOptions,
    FrameCondition,
    GaussianDiffusion,
    GaussianOptions,
    SDEdit,
    cfg_combine,
    check_model_timesteps,
    count_evals,
    ddpm_timesteps,
    euler_step,
    flow_ancestral_step,
    guided,
    make_loss_fn,
    make_objective,
    resolution_shift,
    sample,
    timestep_shift,
)

POINT = torch.tensor([0.7, -1.3])  # the whole data distribution: one point


def true_eps_model(diff: GaussianDiffusion):
    """The exact eps / v / x0 of a data distribution that is a single point."""
    def fn(x_t, t):
        a, s = diff._ab(t, x_t)
        x0 = POINT.to(x_t.dtype).expand_as(x_t)
        eps = (x_t - a * x0) / s
        return {"eps": eps, "v": a * eps - s * x0, "x0": x0}[diff.prediction]
    return fn


def true_velocity(x_t, t):
    """The exact flow velocity towards a single point: v = noise - x0 = (x_t - x0) / t."""
    tt = t.reshape(-1, 1)
    return (x_t - POINT) / tt


@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
@pytest.mark.parametrize("sampler, eta", [("ddpm", 0.0), ("ddim", 0.0), ("ddim", 1.0)])
@pytest.mark.parametrize("steps", [1, 4, 25])
def test_gaussian_samplers_recover_a_point(prediction, sampler, eta, steps):
    diff = GaussianDiffusion(prediction=prediction, beta_schedule="cosine")
    # float64: at t=999 the cosine schedule has sqrt(alpha_bar) ~ 1e-4, and eps -> x0 divides by it
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = sample(true_eps_model(diff), diff, x_T.shape, sampler=sampler, steps=steps,
               options=GaussianOptions(eta=eta), noise=x_T, generator=torch.Generator().manual_seed(1), progress=False)
    assert torch.allclose(x, POINT.double().expand_as(x), atol=1e-6), (x - POINT).abs().max()


@pytest.mark.parametrize("sampler", ["euler", "heun", "ancestral"])
@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_flow_samplers_recover_a_point(sampler, shift):
    flow = FlowMatching(shift=shift)
    x = sample(true_velocity, flow, (64, 2), sampler=sampler, steps=3,
               generator=torch.Generator().manual_seed(0), progress=False)
    assert torch.allclose(x, POINT.expand_as(x), atol=1e-5)


def gaussian_velocity(c: float):
    """The exact flow velocity for data ~ N(0, c^2 I): E[noise - x0 | x_t] = x_t (t - (1-t) c^2) / Var(x_t)."""
    def fn(x_t, t):
        t = t.reshape(-1, 1)
        return x_t * (t - (1 - t) * c**2) / ((1 - t) ** 2 * c**2 + t**2)
    return fn


def test_ancestral_at_eta_zero_is_the_euler_step():
    x, v = torch.randn(8, 3, generator=torch.Generator().manual_seed(0)), torch.randn(8, 3)
    for t, s in ((1.0, 0.7), (0.55, 0.2), (0.3, 0.0)):
        assert torch.allclose(flow_ancestral_step(v, t, s, x, eta=0.0), euler_step(v, t, s, x), atol=1e-6)
    assert torch.equal(flow_ancestral_step(v, 0.3, 0.0, x, eta=1.0), x - 0.3 * v)  # no noise into the data


@pytest.mark.parametrize("eta", [0.5, 1.0])
def test_ancestral_samples_the_data_distribution_and_is_seeded(eta):
    """With the exact velocity of N(0, 0.5^2) data and many steps, the samples' spread is 0.5 whatever
    noise each step mixes in (with few steps every sampler here shrinks it: at 20 steps Euler gives 0.47,
    eta = 1 0.43); the same generator gives the same samples, another one others."""
    flow, c = FlowMatching(), 0.5
    run = lambda seed: sample(gaussian_velocity(c), flow, (20000, 2), sampler="ancestral", steps=400,
                              options=FlowOptions(eta=eta), generator=torch.Generator().manual_seed(seed),
                              progress=False)
    x = run(0)
    assert abs(x.std().item() - c) < 0.01 and abs(x.mean().item()) < 0.01
    assert torch.equal(x, run(0)) and not torch.allclose(x, run(1))
    # the same start, different step noise: the ancestral sampler is stochastic, Euler is not
    x_T = torch.randn(4, 2, generator=torch.Generator().manual_seed(5))
    a, b = (sample(gaussian_velocity(c), flow, x_T.shape, sampler="ancestral", steps=8, noise=x_T,
                   options=FlowOptions(eta=eta), generator=torch.Generator().manual_seed(k), progress=False)
            for k in (0, 1))
    assert not torch.allclose(a, b)


def test_heun_is_exact_on_a_linear_ode_where_euler_is_not():
    """dx/dt = x (not a flow of data): from t=1 to 0, x(0) = x(1) e^-1. Heun's error is O(h^2)."""
    flow = FlowMatching()
    x1 = torch.ones(1, 1)
    errs = {}
    for name in ("euler", "heun"):
        x0 = sample(lambda x, t: x, flow, (1, 1), sampler=name, steps=10, noise=x1, progress=False)
        errs[name] = abs(x0.item() - math.exp(-1))
    assert errs["heun"] < errs["euler"] / 5


def test_evaluations_counted():
    calls = []
    flow = FlowMatching()
    sample(lambda x, t: calls.append(1) or x * 0, flow, (2, 2), sampler="heun", steps=6, progress=False)
    assert len(calls) == count_evals("heun", 6) == 11


# ----------------------------------------------------------------------------------------------
# Objectives
# ----------------------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(t=st.integers(0, 999), prediction=st.sampled_from(["eps", "v", "x0"]),
       schedule=st.sampled_from(["linear", "cosine"]))
def test_prediction_conversions_round_trip(t, prediction, schedule):
    diff = GaussianDiffusion(beta_schedule=schedule, prediction=prediction)
    g = torch.Generator().manual_seed(t)
    x0, noise = torch.randn(3, 5, generator=g, dtype=torch.float64), torch.randn(3, 5, generator=g, dtype=torch.float64)
    tt = torch.full((3,), float(t))
    x_t = diff.q_sample(x0, tt, noise)
    x0_hat, eps_hat = diff.predict_x0_eps(x_t, tt, diff.target(x0, noise, tt))
    assert torch.allclose(x0_hat, x0, atol=1e-6) and torch.allclose(eps_hat, noise, atol=1e-6)


def test_flow_interpolation_and_target():
    flow = FlowMatching()
    x0, noise = torch.randn(4, 3), torch.randn(4, 3)
    t = torch.tensor([0.0, 0.25, 0.5, 1.0])
    x_t = flow.q_sample(x0, t, noise)
    assert torch.equal(x_t[0], x0[0]) and torch.equal(x_t[3], noise[3])
    v = flow.target(x0, noise, t)
    assert torch.allclose(flow.predict_x0(x_t, t, v), x0, atol=1e-6)
    assert torch.allclose(flow.predict_noise(x_t, t, v), noise, atol=1e-6)


@pytest.mark.parametrize("obj", [GaussianDiffusion(prediction="v"), GaussianDiffusion(), FlowMatching()])
def test_training_loss_is_zero_for_the_true_target_and_positive_otherwise(obj):
    x0 = torch.randn(8, 3, 4, 4)
    noise = torch.randn_like(x0)
    t = obj.sample_timesteps(8, generator=torch.Generator().manual_seed(0))
    perfect = obj.training_loss(lambda x_t, tt: obj.target(x0, noise, tt), x0, t=t, noise=noise)
    zero = obj.training_loss(lambda x_t, tt: torch.zeros_like(x_t), x0, t=t, noise=noise)
    assert perfect.item() == 0.0 and zero.item() > 0.1


def test_loss_mask_keeps_condition_frames_clean_and_out_of_the_loss():
    flow = FlowMatching()
    x0 = torch.randn(2, 3, 5, 4, 4)  # [B, C, T, H, W]
    noise = torch.randn_like(x0)
    mask = torch.tensor([[False, True, True, True, True], [False, False, True, True, True]])
    seen = {}

    def model(x_t, t):
        seen["x_t"], seen["t"] = x_t, t
        target = noise - x0
        target[:, :, 0] += 100.0  # wrong only on frame 0, a condition frame in both examples
        target[1, :, 1] += 100.0  # and on frame 1 of example 1, also a condition frame there
        return target

    loss = flow.training_loss(model, x0, mask=mask, noise=noise, frame_timesteps=True, reduction="none")
    assert torch.equal(loss, torch.zeros(2))
    assert torch.equal(seen["x_t"][:, :, 0], x0[:, :, 0]) and torch.equal(seen["x_t"][1, :, 1], x0[1, :, 1])
    assert seen["t"].shape == (2, 5) and (seen["t"][~mask] == 0).all()
    unmasked = flow.training_loss(model, x0, noise=noise)
    assert unmasked.item() > 100


def test_sampler_keeps_known_frames():
    flow = FlowMatching()
    known = torch.randn(2, 3, 4, 2, 2)
    mask = torch.tensor([[False, True, True, True]] * 2)
    ts = []
    out = sample(lambda x, t: ts.append(t) or torch.zeros_like(x), flow, known.shape, steps=3,
                 frames=FrameCondition(known, mask, frame_timesteps=True), progress=False)
    assert torch.equal(out[:, :, 0], known[:, :, 0])
    assert all(t.shape == (2, 4) and (t[:, 0] == 0).all() and (t[:, 1] > 0).all() for t in ts)


def test_sdedit_strength_keeps_more_of_the_guide_when_small():
    """Data ~ N(0, I): the exact velocity is E[noise - x0 | x_t] = x_t (2t - 1) / ((1-t)^2 + t^2)."""
    def normal_velocity(x_t, t):
        t = t.reshape(-1, 1)
        return x_t * (2 * t - 1) / ((1 - t) ** 2 + t**2)

    flow = FlowMatching()
    guide = torch.full((256, 2), 3.0)  # far out in the tail of the data
    dists = []
    for strength in (0.2, 0.6, 1.0):
        out = sample(normal_velocity, flow, guide.shape, steps=20, sdedit=SDEdit(guide, strength),
                     generator=torch.Generator().manual_seed(0), progress=False)
        dists.append((out - guide).norm(dim=1).mean().item())
    assert dists[0] < dists[1] < dists[2]  # low strength stays near the guide, 1.0 forgets it
    assert dists[0] < 0.5 and dists[2] > 3.0


def test_timestep_shift_and_resolution_shift():
    t = torch.linspace(0, 1, 11)
    assert torch.allclose(timestep_shift(t, 1.0), t)
    shifted = timestep_shift(t, 3.0)
    assert (shifted >= t).all() and shifted[0] == 0 and shifted[-1] == 1
    assert math.isclose(resolution_shift(256), 1.0) and math.isclose(resolution_shift(4096), 3.0)
    assert math.isclose(resolution_shift(256, num_frames=4), 2.0)
    assert resolution_shift(1024) < resolution_shift(2048)


def test_logit_normal_timesteps_concentrate_in_the_middle():
    flow = FlowMatching()
    t = flow.sample_timesteps(20000, generator=torch.Generator().manual_seed(0))
    u = FlowMatching(timestep_sampling="uniform").sample_timesteps(20000, generator=torch.Generator().manual_seed(0))
    middle = lambda x: ((x > 0.25) & (x < 0.75)).float().mean().item()
    assert 0 < t.min() and t.max() < 1 and abs(t.median().item() - 0.5) < 0.02
    assert middle(t) > middle(u) + 0.1
    shifted = FlowMatching(shift=3.0).sample_timesteps(20000, generator=torch.Generator().manual_seed(0))
    assert shifted.median() > 0.7


# ----------------------------------------------------------------------------------------------
# Guidance
# ----------------------------------------------------------------------------------------------
def cond_model(x, t, y):
    return x * y.reshape(-1, 1).float() + t.reshape(-1, 1)


def test_cfg_scale_one_is_the_conditional_prediction_and_zero_the_unconditional():
    x, t = torch.randn(4, 2), torch.rand(4)
    cond, uncond = {"y": torch.tensor([1, 2, 3, 4])}, {"y": torch.zeros(4, dtype=torch.long)}
    assert torch.equal(guided(cond_model, 1.0, cond, uncond)(x, t), cond_model(x, t, **cond))
    assert torch.equal(guided(cond_model, 0.0, cond, uncond)(x, t), cond_model(x, t, **uncond))
    c, u = cond_model(x, t, **cond), cond_model(x, t, **uncond)
    g = guided(cond_model, 3.0, cond, uncond)(x, t)
    assert torch.allclose(g, u + 3.0 * (c - u)) and torch.allclose(g, cfg_combine(c, u, 3.0))
    # unequal condition shapes: two calls instead of one batch, the same answer
    two = guided(lambda x, t, y: cond_model(x, t, y.reshape(-1)), 3.0, cond, {"y": torch.zeros(4, 1)})(x, t)
    assert torch.allclose(two, g)


def test_guidance_interval_guides_inside_and_runs_the_conditional_model_alone_outside():
    cond, uncond = {"y": torch.tensor([1, 2])}, {"y": torch.zeros(2, dtype=torch.long)}
    calls = []

    def counted(x, t, y):
        calls.append(x.shape[0])
        return cond_model(x, t, y)

    fn = guided(counted, 3.0, cond, uncond, interval=(0.25, 0.75))  # times exact in float32
    x = torch.randn(2, 2)
    for level, inside in ((0.875, False), (0.75, True), (0.5, True), (0.25, False), (0.125, False)):
        t = torch.full((2,), level)
        c, u = cond_model(x, t, **cond), cond_model(x, t, **uncond)
        calls.clear()
        got = fn(x, t)
        assert torch.allclose(got, u + 3.0 * (c - u) if inside else c)
        assert calls == ([4] if inside else [2])  # outside: half the batch, no unconditional pass
    per_frame = torch.tensor([[0.0, 0.5], [0.0, 0.5]])  # clean condition frames at t = 0: the noisy ones count
    framed = guided(lambda x, t, y: counted(x, t[:, -1], y), 3.0, cond, uncond, interval=(0.25, 0.75))
    calls.clear()
    assert framed(x, per_frame).shape == x.shape and calls == [4]
    for bad in ((0.9, 0.3), (0.5, 0.5), "0.3", (1,)):
        with pytest.raises(ValueError, match="interval"):
            guided(cond_model, 3.0, cond, uncond, interval=bad)


def test_sample_with_an_interval_covering_every_step_is_plain_guidance():
    cond, uncond = {"y": torch.tensor([1, 2])}, {"y": torch.zeros(2, dtype=torch.long)}
    kw = {"steps": 6, "guidance_scale": 2.0, "cond": cond, "uncond": uncond, "noise": torch.randn(2, 2),
          "progress": False}
    every = sample(cond_model, FlowMatching(), (2, 2), **kw)
    assert torch.equal(sample(cond_model, FlowMatching(), (2, 2), guidance_interval=(0.0, 1.0), **kw), every)
    assert not torch.allclose(sample(cond_model, FlowMatching(), (2, 2), guidance_interval=(0.5, 1.0), **kw), every)


# ----------------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("t", [1000, -1, 2.5])
def test_timestep_outside_the_schedule(t):
    diff = GaussianDiffusion()
    with pytest.raises(ValueError, match="0..999"):
        diff.q_sample(torch.zeros(1, 2), torch.tensor([float(t)]), torch.zeros(1, 2))


def test_flow_time_outside_zero_one():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        FlowMatching().training_loss(lambda x, t: x, torch.zeros(2, 2), t=torch.tensor([0.5, 500.0]))


def test_negative_guidance_scale():
    with pytest.raises(ValueError, match=">= 0"):
        sample(true_velocity, FlowMatching(), (1, 2), guidance_scale=-1.0, uncond={}, progress=False)
    with pytest.raises(ValueError, match="needs the unconditional"):
        guided(cond_model, 2.0, {"y": torch.ones(1)})


def test_unknown_sampler_lists_the_allowed_ones():
    with pytest.raises(ValueError) as e:
        sample(true_velocity, FlowMatching(), (1, 2), sampler="dpm++", progress=False)
    assert all(name in str(e.value) for name in SAMPLERS)
    with pytest.raises(ValueError, match="euler, heun"):
        sample(true_velocity, FlowMatching(), (1, 2), sampler="ddim", progress=False)


@pytest.mark.parametrize("make", [
    lambda: GaussianDiffusion(beta_schedule="quadratic"),
    lambda: GaussianDiffusion(prediction="score"),
    lambda: FlowMatching(timestep_sampling="beta"),
    lambda: FlowMatching(shift=0.0),
    lambda: make_objective("edm"),
])
def test_bad_configuration(make):
    with pytest.raises(ValueError, match="allowed|> 0"):
        make()


# ----------------------------------------------------------------------------------------------
# The trainer hook and notebook 03's helpers
# ----------------------------------------------------------------------------------------------
class RecordingBackbone(torch.nn.Module):
    """Declares DiT's timestep range like every backbone, checks it, and records the t it sees."""

    timestep_range = (0.0, 1000.0)

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x, t, y=None):
        self.seen.append(check_model_timesteps(t, self.timestep_range, "RecordingBackbone"))
        return torch.zeros_like(x)


def test_make_loss_fn_puts_flow_time_on_the_backbone_scale():
    backbone = RecordingBackbone()
    batch = {"x": torch.randn(64, 2), "y": torch.zeros(64)}
    loss, metrics = make_loss_fn(FlowMatching(), cond_keys=("y",))(backbone, batch)
    assert loss.ndim == 0 and isinstance(metrics, dict)
    assert 1.0 < backbone.seen[-1].max() <= 1000.0  # flow t in [0, 1] reaches the backbone times 1000
    make_loss_fn(GaussianDiffusion(), cond_keys=("y",))(backbone, batch)
    t = backbone.seen[-1]
    assert t.max() > 1.0 and torch.equal(t, t.round())  # DDPM: integers as they are


def test_sample_converts_time_for_a_backbone_as_training_does():
    """The old sample() gave a backbone flow t in [0, 1] unless wrapped: now the objective converts."""
    flow, backbone = FlowMatching(), RecordingBackbone()
    sample(backbone, flow, (2, 2), steps=4, progress=False)
    seen = torch.stack(backbone.seen)  # [steps, B]
    assert torch.allclose(seen[:, 0], flow.sampling_times(4)[:-1] * 1000)
    backbone.seen.clear()
    sample(backbone, GaussianDiffusion(), (2, 2), steps=4, progress=False)
    assert torch.stack(backbone.seen)[:, 0].tolist() == ddpm_timesteps(1000, 4)  # DDPM: unchanged
    plain = []  # a plain function is in the objective's own units
    sample(lambda x, t: plain.append(t) or x * 0, flow, (2, 2), steps=4, progress=False)
    assert max(float(t.max()) for t in plain) == 1.0


def test_time_converted_twice_is_an_error_that_says_what_to_do():
    backbone = RecordingBackbone()
    twice = FlowMatching().with_model_time(backbone)  # t * 1000 ...
    twice.timestep_range = backbone.timestep_range  # ... by a wrapper that claims the backbone's range
    with pytest.raises(ValueError, match="pass the model itself"):
        sample(twice, FlowMatching(), (2, 2), steps=2, progress=False)
    with pytest.raises(ValueError, match="pass the model itself"):
        backbone(torch.zeros(2, 2), torch.tensor([0.5, 1500.0]))
    with pytest.raises(ValueError, match="ranges \\(0, M\\)"):
        FlowMatching().with_model_time(type("M", (), {"timestep_range": (-1.0, 1.0)})())


# ----------------------------------------------------------------------------------------------
# Sampler options
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, match", [
    (lambda: GaussianOptions(spacing="even"), "allowed: trailing"),
    (lambda: GaussianOptions(eta=-0.1), "eta must be >= 0"),
    (lambda: GaussianOptions(eta=float("nan")), "finite number"),
    (lambda: GaussianOptions(clip_x0=0.0), "clip_x0 must be > 0"),
    (lambda: FlowOptions(shift=0.0), "shift must be > 0"),
    (lambda: FlowOptions(shift=2.0, mu=0.5), "not both"),
    (lambda: FlowOptions(grid="karras"), "allowed: uniform"),
    (lambda: FlowOptions(eta=1.5), r"eta must be in \[0, 1\]"),
    (lambda: FrameCondition(torch.zeros(2, 3, 4, 2, 2), torch.ones(2, 4)), "must be bool"),
    (lambda: FrameCondition(torch.zeros(2, 3, 4, 2, 2), torch.ones(2, 5, dtype=torch.bool)), "does not fit"),
    (lambda: FrameCondition(torch.zeros(2, 3, 4, 2, 2), torch.ones(3, 4, dtype=torch.bool)), "B = 2"),
    (lambda: SDEdit(torch.zeros(2, 2), 0.0), r"strength must be in \(0, 1\]"),
    (lambda: SDEdit(torch.zeros(2, 2), 1.5), r"strength must be in \(0, 1\]"),
])
def test_bad_sampler_options_are_refused_when_built(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_options_of_the_wrong_sampler_or_shape_are_refused():
    with pytest.raises(TypeError, match="takes options=FlowOptions"):
        sample(true_velocity, FlowMatching(), (1, 2), options=GaussianOptions(), progress=False)
    with pytest.raises(ValueError, match="DDIM's noise level"):
        sample(true_eps_model(GaussianDiffusion()), GaussianDiffusion(), (1, 2), sampler="ddpm", steps=2,
               options=GaussianOptions(eta=0.5), progress=False)
    with pytest.raises(ValueError, match="must match"):
        sample(true_velocity, FlowMatching(), (2, 2), sdedit=SDEdit(torch.zeros(3, 2), 0.5), progress=False)


def test_every_sampler_steps_through_the_registry():
    """The loop has no per-name branch: a registered step function is what runs."""
    calls = []
    info = SAMPLERS["euler"]
    SAMPLERS["counting"] = dataclasses.replace(info, name="counting",
                                               step=lambda run, x, t, t_next: calls.append(t) or x)
    try:
        out = sample(true_velocity, FlowMatching(), (1, 2), sampler="counting", steps=3, progress=False)
    finally:
        del SAMPLERS["counting"]
    assert len(calls) == 3 and calls[0] == 1.0 and out.shape == (1, 2)
