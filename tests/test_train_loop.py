"""The shared training loop: it learns, logs, clips, keeps an EMA (with warmup), runs on its device,
trains for a budget of minutes, reports throughput, stops on a non-finite loss without touching its
last good checkpoint, refuses a checkpoint of another model, and resumes exactly, even after a kill.

Run as a script, ``python tests/test_train_loop.py CKPT PAUSE_S`` trains the run the killed-run
test interrupts."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from sora_mini.checkpoint import checkpoint_exists, load_checkpoint
from sora_mini.train import device as device_module
from sora_mini.train.device import cpu_has_native_bf16, resolve_precision
from sora_mini.train.loop import EMA, Trainer, TrainerConfig, autocast_for, lr_factor, move_to
from sora_mini.train.progress import progress_postfix

torch.set_num_threads(1)

TIMINGS = ("elapsed_s", "tokens_per_s", "model_flops_per_s", "calibration_s_per_step")

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


def slow_mse(model, batch):
    """``mse`` taking at least 20 ms a step: a minutes budget of this loss has a known ceiling."""
    time.sleep(0.02)
    return mse(model, batch)


def stop_at(n):
    """A callback that stops the run after step ``n``, as if the process were killed there."""
    def callback(trainer, step, metrics):
        trainer.stop = step == n
    return callback


def untimed(rows):
    return [{k: v for k, v in r.items() if k not in TIMINGS} for r in rows]


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
    cfg = TrainerConfig(steps=150, lr=0.05, progress=False, precision="bf16-always")  # bf16 even if emulated
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

    first = Trainer(make(), mse, data, cfg, ckpt_path=tmp_path / "run", callbacks=[stop_at(17)])
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
    # the log: the stop at 17 wrote a row of its own (so the row at 20 averages 18-20); the others
    # are the uninterrupted run's (the killed-run test checks a log whose window spans the kill)
    assert [r["step"] for r in trainer.history] == [10, 17, 20, 30, 40]
    kept = [r for r in untimed(trainer.history) if r["step"] in (10, 30, 40)]
    assert kept == [r for r in untimed(whole.history) if r["step"] in (10, 30, 40)]
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


def test_autocast_follows_the_device(monkeypatch):
    assert torch.is_autocast_enabled("cpu") is False
    with autocast_for("cpu", "bf16-always"):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")
    for native in (True, False):  # "bf16": bf16 autocast only on a CPU that computes it natively
        monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda native=native: native)
        assert resolve_precision("cpu", "bf16") == ("bf16" if native else "fp32")
        with autocast_for("cpu", "bf16"):
            assert torch.is_autocast_enabled("cpu") is native
        assert Trainer(make(), mse, data, TrainerConfig(progress=False, precision="bf16")).precision == \
            ("bf16" if native else "fp32")
    assert resolve_precision("cpu", "bf16-always") == "bf16" and resolve_precision("cpu", "fp32") == "fp32"
    with autocast_for("cpu", "fp32"):
        assert not torch.is_autocast_enabled("cpu")
    with autocast_for("mps", "bf16"):  # no bf16 autocast there: fp32, and no error
        assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(ValueError, match="precision"):
        autocast_for("cpu", "fp8")


def test_native_bf16_is_read_from_the_cpu_flags(monkeypatch, tmp_path):
    """Without torch's own checks, the kernel's CPU flags decide (AVX512-BF16 or AMX)."""
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.delattr(torch.cpu, name, raising=False)
    real_path = device_module.Path
    for flags, native in (("fpu avx2 fma", False), ("fpu avx512f avx512_bf16", True), ("avx2 amx_bf16", True)):
        (tmp_path / "cpuinfo").write_text(f"flags\t\t: {flags}\n")
        monkeypatch.setattr(device_module, "Path", lambda p, t=tmp_path: t / "cpuinfo")
        cpu_has_native_bf16.cache_clear()
        assert cpu_has_native_bf16() is native
    monkeypatch.setattr(device_module, "Path", real_path)
    cpu_has_native_bf16.cache_clear()


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


# ----------------------------------------------------------------------------------------------
# A budget in minutes
# ----------------------------------------------------------------------------------------------
def minutes_config(**kw):
    """At least 20 ms a step (``slow_mse``): at most 60 steps fit in 0.02 minutes. The calibration
    steps lie inside the warmup, where the schedule does not depend on the total."""
    return TrainerConfig(**{"minutes": 0.02, "calibration_steps": 5, "warmup_steps": 5, "lr": 0.02,
                            "min_lr_ratio": 0.1, "log_every": 1, "progress": False, "precision": "fp32",
                            **kw})


def test_a_minutes_budget_predicts_the_steps_and_spreads_the_schedule_over_them(tmp_path):
    cfg = minutes_config()
    trainer = Trainer(make(), slow_mse, data, cfg, log_path=tmp_path / "log.jsonl")
    hist = trainer.fit()
    predicted = trainer.total_steps
    assert 20 < predicted <= 60 and trainer.step == predicted
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r.get("predicted_steps") for r in rows[4:6]] == [predicted, None]  # logged at step 5
    fixed = dataclasses.replace(cfg, minutes=None, steps=predicted)
    assert [r["lr"] for r in hist] == pytest.approx([0.02 * lr_factor(s, fixed) for s in range(predicted)])
    assert hist[-1]["lr"] < 0.02 * (0.1 + 0.02)  # the cosine ends at the min lr
    same = make()
    Trainer(same, mse, data, fixed).fit()  # the run is the one of `predicted` steps
    assert torch.equal(same.weight, trainer.model.weight)


def test_a_tiny_minutes_budget_stops_after_the_calibration():
    trainer = Trainer(make(), slow_mse, data, minutes_config(minutes=1e-5))
    hist = trainer.fit()
    assert trainer.step == trainer.total_steps == 5 and hist[-1]["predicted_steps"] == 5


def test_a_minutes_run_resumes_with_the_steps_it_predicted(tmp_path):
    cfg = minutes_config()
    first = Trainer(make(), slow_mse, data, cfg, ckpt_path=tmp_path / "run", callbacks=[stop_at(8)])
    first.fit()
    predicted = first.total_steps
    # the resumed run's loss is fast: a new calibration would predict hundreds of steps
    resumed = Trainer(make(seed=1), mse, data, cfg, ckpt_path=tmp_path / "run")
    resumed.fit()
    assert resumed.step == resumed.total_steps == predicted
    same = make()
    Trainer(same, mse, data, dataclasses.replace(cfg, minutes=None, steps=predicted)).fit()
    assert torch.equal(same.weight, resumed.model.weight)


def test_minutes_must_be_positive():
    with pytest.raises(ValueError, match="minutes must be > 0"):
        TrainerConfig(minutes=0)


# ----------------------------------------------------------------------------------------------
# Throughput
# ----------------------------------------------------------------------------------------------
def test_throughput_is_the_tokens_of_a_window_over_its_seconds():
    def counted(m, batch):
        time.sleep(0.01)
        loss, metrics = mse(m, batch)
        return loss, {**metrics, "tokens": len(batch[0])}  # 16 real tokens a batch

    cfg = TrainerConfig(steps=10, log_every=5, progress=False, precision="fp32")
    first, second = Trainer(make(), counted, data, cfg, flops_per_token=24.0).fit()
    assert first["tokens"] == second["tokens"] == 80  # summed over the window's 5 steps
    window_s = second["elapsed_s"] - first["elapsed_s"]
    assert second["tokens_per_s"] == pytest.approx(80 / window_s, rel=0.05)
    assert second["model_flops_per_s"] == pytest.approx(24.0 * second["tokens_per_s"])
    assert "tokens_per_s" not in Trainer(make(), mse, data, cfg).fit()[0]  # no token count, no rate


def test_the_progress_bar_shows_the_loss_and_tokens_per_second():
    assert progress_postfix({"loss": 0.123456, "tokens_per_s": 12345.0}) == {"loss": "0.1235", "tok/s": "12.3k"}
    assert progress_postfix({"loss": 2.0}) == {"loss": "2"}


# ----------------------------------------------------------------------------------------------
# A non-finite loss or gradient keeps the last good checkpoint
# ----------------------------------------------------------------------------------------------
def test_a_nan_loss_stops_before_the_last_good_checkpoint_is_overwritten(tmp_path):
    calls = []

    def nan_at_step_5(m, batch):
        calls.append(batch)
        loss, metrics = mse(m, batch)
        return (loss * float("nan") if len(calls) == 6 else loss), metrics

    cfg = TrainerConfig(steps=10, lr=0.02, ckpt_every=2, progress=False, precision="fp32")
    with pytest.raises(FloatingPointError) as err:
        Trainer(make(), nan_at_step_5, data, cfg, ckpt_path=tmp_path / "run").fit()
    msg = str(err.value)
    assert "loss is nan at step 5" in msg and f"{tmp_path / 'run'} (step 4) is kept" in msg
    assert "learning rate" in msg and "precision='fp32'" in msg
    good = make()
    Trainer(good, mse, data, cfg, callbacks=[stop_at(4)]).fit()
    state, _, extra = load_checkpoint(tmp_path / "run")
    assert extra["step"] == 4 and torch.equal(state["model/weight"], good.weight)


def test_a_non_finite_gradient_norm_stops_before_the_weights_change(tmp_path):
    def nan_gradient(m, batch):  # a finite loss, 0, whose gradient is 0 * inf
        return torch.sqrt(m(batch[0]).sum() * 0.0), {}

    model = make()
    before = model.weight.detach().clone()
    cfg = TrainerConfig(steps=3, grad_clip=None, progress=False, precision="fp32")
    with pytest.raises(FloatingPointError, match="gradient norm is nan at step 0") as err:
        Trainer(model, nan_gradient, data, cfg, ckpt_path=tmp_path / "run").fit()
    assert "no checkpoint was written yet" in str(err.value)
    assert torch.equal(model.weight, before) and not checkpoint_exists(tmp_path / "run")


# ----------------------------------------------------------------------------------------------
# Resume safety
# ----------------------------------------------------------------------------------------------
def test_a_checkpoint_of_another_model_config_is_refused_with_the_fields_named(tmp_path):
    cfg = TrainerConfig(steps=2, progress=False)
    written = {"hidden_size": 64, "dims": (3, 4), "kind": "linear"}
    Trainer(make(), mse, data, cfg, ckpt_path=tmp_path / "run", model_config=written).fit()
    again = Trainer(make(), mse, data, dataclasses.replace(cfg, steps=3), ckpt_path=tmp_path / "run",
                    model_config=dict(written))  # the same config (tuples as lists on disk) resumes
    again.fit()
    assert again.step == 3
    other = {**written, "hidden_size": 128, "patch": 2}
    with pytest.raises(ValueError) as err:
        Trainer(make(), mse, data, cfg, ckpt_path=tmp_path / "run", model_config=other).fit()
    msg = str(err.value)
    assert "written for hidden_size=64, patch=(unset); this run has hidden_size=128, patch=2" in msg
    assert "Delete run.safetensors and run.json" in msg


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_damaged_checkpoint_is_a_clear_error(tmp_path, damage):
    cfg = TrainerConfig(steps=2, progress=False)
    Trainer(make(), mse, data, cfg, ckpt_path=tmp_path / "run").fit()
    weights = tmp_path / "run.safetensors"
    raw = weights.read_bytes()
    weights.write_bytes(raw[:len(raw) // 2] if damage == "truncate" else b"not a checkpoint" * 8)
    with pytest.raises(ValueError, match="unreadable, truncated or corrupted") as err:
        Trainer(make(), mse, data, dataclasses.replace(cfg, steps=4), ckpt_path=tmp_path / "run").fit()
    assert str(weights) in str(err.value) and "delete" in str(err.value)


def test_weights_and_metadata_come_from_the_same_save_after_a_kill_between_them(tmp_path):
    cfg = TrainerConfig(steps=10, lr=0.02, ckpt_every=2, progress=False, precision="fp32")
    Trainer(make(), mse, data, cfg, ckpt_path=tmp_path / "run", callbacks=[stop_at(2)]).fit()
    shutil.copy(tmp_path / "run.json", tmp_path / "old.json")
    four = make()
    Trainer(four, mse, data, cfg, ckpt_path=tmp_path / "run", callbacks=[stop_at(4)]).fit()
    shutil.copy(tmp_path / "old.json", tmp_path / "run.json")  # killed after the weights' rename
    trainer = Trainer(make(seed=1), mse, data, cfg)
    trainer.load(tmp_path / "run")
    assert trainer.step == 4 and torch.equal(trainer.model.weight, four.weight)


# ----------------------------------------------------------------------------------------------
# A killed run resumes exactly
# ----------------------------------------------------------------------------------------------
KILL_CFG = TrainerConfig(steps=30, lr=0.02, warmup_steps=3, ckpt_every=2, log_every=5, progress=False,
                         ema_decay=0.9, precision="fp32")


def killable_run(ckpt_path, pause_s: float = 0.0) -> Trainer:
    """The run the killed-run test interrupts: 30 steps, a checkpoint every 2, ``pause_s`` after each."""
    trainer = Trainer(make(), mse, data, KILL_CFG, ckpt_path=ckpt_path,
                      callbacks=[lambda *_: time.sleep(pause_s)])
    trainer.fit()
    return trainer


def test_a_killed_run_resumes_to_the_weights_and_log_of_an_uninterrupted_one(tmp_path):
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, __file__, str(tmp_path / "run"), "0.05"], env=env)
    try:
        deadline = time.monotonic() + 60
        while not checkpoint_exists(tmp_path / "run"):
            assert proc.poll() is None, "the training process ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint after 60 s"
            time.sleep(0.01)
        time.sleep(0.12)  # a few steps on, maybe mid-save
    finally:
        proc.kill()  # SIGKILL: no clean-up of any kind
        proc.wait()
    _, _, extra = load_checkpoint(tmp_path / "run")
    assert 2 <= extra["step"] < KILL_CFG.steps  # killed mid-run
    resumed = killable_run(tmp_path / "run")
    straight = killable_run(tmp_path / "straight")
    assert resumed.step == straight.step == KILL_CFG.steps
    assert torch.equal(resumed.model.weight, straight.model.weight)
    assert torch.equal(resumed.model.bias, straight.model.bias)
    assert all(torch.equal(v, straight.ema.shadow[k]) for k, v in resumed.ema.shadow.items())
    assert untimed(resumed.history) == untimed(straight.history)


if __name__ == "__main__":
    killable_run(sys.argv[1], float(sys.argv[2]))
