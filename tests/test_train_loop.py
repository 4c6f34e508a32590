"""The shared training loop: it learns, logs, clips, keeps an EMA (with warmup), runs on its device,
checkpoints and resumes exactly."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from torch import nn

from sora_mini.checkpoint import checkpoint_exists, load_checkpoint
from sora_mini.train.loop import EMA, Trainer, TrainerConfig, autocast_for, lr_factor, move_to

torch.set_num_threads(1)

W_TRUE = torch.tensor([[2.0, -1.0, 0.5]])


def data(step: int):
    g = torch.Generator().manual_seed(step)
    x = torch.randn(16, 3, generator=g)
    return x, x @ W_TRUE.t() + 0.3


def mse(model, batch):
    x, y = batch
    loss = (model(x).float() - y).pow(2).mean()
    return loss, {"mse": loss.item()}


def make(seed=0):
    torch.manual_seed(seed)
    return nn.Linear(3, 1)


def test_trainer_fits_a_linear_regression_and_logs_jsonl(tmp_path):
    model = make()
    cfg = TrainerConfig(steps=150, lr=0.05, log_every=10, progress=False, precision="fp32")
    hist = Trainer(model, mse, data, cfg, log_path=tmp_path / "log.jsonl").fit()
    assert hist[-1]["loss"] < 1e-3 < hist[0]["loss"]
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(10, 151, 10))
    assert {"loss", "mse", "lr", "grad_norm", "elapsed_s"} <= set(rows[0])
    torch.testing.assert_close(model.weight.detach(), W_TRUE, atol=0.02, rtol=0)


def test_bf16_autocast_runs_and_learns():
    model = make()
    cfg = TrainerConfig(steps=150, lr=0.05, progress=False, precision="bf16")
    hist = Trainer(model, mse, data, cfg).fit()
    assert hist[-1]["loss"] < 0.01


def test_iterable_data_is_cycled():
    batches = [data(i) for i in range(3)]
    cfg = TrainerConfig(steps=7, lr=0.01, progress=False, log_every=1)
    trainer = Trainer(make(), mse, batches, cfg)
    trainer.fit()
    assert trainer.step == 7


def test_resume_gives_the_same_weights_and_ema_as_an_uninterrupted_run(tmp_path):
    cfg = TrainerConfig(steps=40, lr=0.02, warmup_steps=5, progress=False, ema_decay=0.9,
                        precision="fp32")
    straight = make()
    whole = Trainer(straight, mse, data, cfg)
    whole.fit()

    def interrupt(trainer, step, metrics):  # as if the process were killed after step 17
        trainer.stop = step == 17

    first = Trainer(make(), mse, data, cfg, ckpt_path=tmp_path / "run", callbacks=[interrupt])
    first.fit()
    assert first.step == 17 and checkpoint_exists(tmp_path / "run")
    fresh = make(seed=123)  # different initial weights: everything must come from the checkpoint
    trainer = Trainer(fresh, mse, data, cfg, ckpt_path=tmp_path / "run")
    trainer.fit()
    assert trainer.step == 40
    assert torch.equal(fresh.weight, straight.weight) and torch.equal(fresh.bias, straight.bias)  # bitwise
    assert trainer.ema.num_updates == whole.ema.num_updates == 40
    for name, value in whole.ema.state_dict().items():
        assert torch.equal(trainer.ema.state_dict()[name], value), name
    assert not torch.equal(whole.ema.shadow["weight"], straight.weight)  # the EMA is not the weights
    _, _, extra = load_checkpoint(tmp_path / "run")
    assert extra["step"] == 40


def test_grad_clip_bounds_the_update():
    model = make()
    before = model.weight.detach().clone()

    def huge(m, batch):
        return m(batch[0]).sum() * 1e6, {}

    cfg = TrainerConfig(steps=1, lr=1.0, grad_clip=1e-3, progress=False, betas=(0.0, 0.0),
                        lr_schedule="constant")
    hist = Trainer(model, huge, data, cfg).fit()
    assert hist[0]["grad_norm"] > 1e3  # reported before clipping
    # Adam with betas 0 moves every weight by about lr regardless; use SGD to see the clip
    model = make()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    Trainer(model, huge, data, cfg, optimizer=opt).fit()
    assert (model.weight.detach() - before).norm() <= 1e-3 + 1e-6


def _zero_then_one(decay, warmup, updates):
    """An EMA started on weights 0, then updated ``updates`` times with the weights at 1: the share
    of the initial weights it still holds is ``1 - shadow``."""
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, decay=decay, warmup=warmup)
    with torch.no_grad():
        model.weight.fill_(1.0)
    for _ in range(updates):
        ema.update(model)
    return ema, 1.0 - ema.shadow["weight"].item()


def test_ema_tracks_the_weights():
    ema, _ = _zero_then_one(0.5, warmup=False, updates=2)
    assert ema.shadow["weight"].item() == pytest.approx(0.75)
    target = nn.Linear(1, 1, bias=False)
    ema.copy_to(target)
    assert target.weight.item() == pytest.approx(0.75)


def test_ema_warmup_forgets_the_initial_weights():
    """Without warmup a decay-0.999 EMA still holds 0.999**816 (44 %) of the zero init after 816 steps
    (its samples were noise); with the warmup d_n = min(decay, (1 + n) / (10 + n)) almost nothing."""
    _, plain = _zero_then_one(0.999, warmup=False, updates=816)
    assert plain == pytest.approx(0.999 ** 816, rel=1e-3) and plain > 0.4
    ema, warm = _zero_then_one(0.999, warmup=True, updates=816)
    assert warm < 1e-3
    assert ema.current_decay() == pytest.approx(817 / 826)  # still warming up: (1 + n) / (10 + n)
    late = EMA(nn.Linear(1, 1), decay=0.9)
    late.num_updates = 1000
    assert late.current_decay() == 0.9  # the warmup never exceeds the decay


def test_eval_model_holds_the_ema_weights_and_leaves_the_model():
    cfg = TrainerConfig(steps=5, lr=0.05, progress=False, precision="fp32", ema_decay=0.99)
    model = make()
    trainer = Trainer(model, mse, data, cfg)
    trainer.fit()
    shadow = trainer.eval_model()
    assert shadow is not model and not shadow.training
    assert torch.equal(shadow.weight, trainer.ema.shadow["weight"])
    assert not torch.equal(shadow.weight, model.weight)
    plain = Trainer(make(), mse, data, TrainerConfig(steps=1, progress=False))
    assert plain.eval_model() is plain.model  # no EMA: the trained model itself


def test_batches_are_moved_to_the_trainer_device_recursively():
    Pair = __import__("collections").namedtuple("Pair", "a b")
    batch = {"x": torch.zeros(2), "rest": [torch.ones(1), (torch.ones(1), 3)], "pair": Pair(torch.ones(1), "s")}
    moved = move_to(batch, "meta")
    assert moved["x"].device.type == "meta" and moved["rest"][0].device.type == "meta"
    assert moved["rest"][1][0].device.type == "meta" and moved["rest"][1][1] == 3
    assert isinstance(moved["pair"], Pair) and moved["pair"].a.device.type == "meta" and moved["pair"].b == "s"
    seen = []

    def spy(m, b):
        seen.append({t.device.type for t in b})
        return mse(m, b)

    Trainer(make(), spy, data, TrainerConfig(steps=2, progress=False), device="cpu").fit()
    assert seen == [{"cpu"}, {"cpu"}]


def test_autocast_follows_the_device():
    assert torch.is_autocast_enabled("cpu") is False
    with autocast_for("cpu", "bf16"):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")
    with autocast_for("cpu", "fp32"):
        assert not torch.is_autocast_enabled("cpu")
    with autocast_for("mps", "bf16"):  # no bf16 autocast there: fp32, and no error
        assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(ValueError, match="precision"):
        autocast_for("cpu", "fp8")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none here)")
def test_trainer_trains_and_resumes_on_cuda(tmp_path):
    cfg = TrainerConfig(steps=20, lr=0.05, progress=False, ema_decay=0.9)
    model = make()
    trainer = Trainer(model, mse, data, cfg, device="cuda", ckpt_path=tmp_path / "run")
    hist = trainer.fit()
    assert model.weight.device.type == "cuda" and trainer.ema.shadow["weight"].device.type == "cuda"
    assert hist[-1]["loss"] < hist[0]["loss"]
    again = Trainer(make(seed=5), mse, data, cfg, device="cuda", ckpt_path=tmp_path / "run")
    again.fit()
    assert torch.equal(again.model.weight, model.weight)
    assert torch.equal(again.ema.shadow["weight"], trainer.ema.shadow["weight"])


def test_lr_schedule_warms_up_then_decays():
    cfg = TrainerConfig(steps=100, warmup_steps=10, min_lr_ratio=0.1)
    f = [lr_factor(s, cfg) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(f[10:]))
    assert f[-1] == pytest.approx(0.1, abs=0.01)


def test_nan_loss_stops_with_a_clear_error():
    def bad(m, batch):
        return m(batch[0]).sum() * float("nan"), {}

    with pytest.raises(FloatingPointError, match="learning rate"):
        Trainer(make(), bad, data, TrainerConfig(steps=2, progress=False)).fit()


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="precision"):
        TrainerConfig(precision="fp8")
