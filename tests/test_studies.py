"""The studies (sora_mini.studies) run end to end at tiny scale."""

from __future__ import annotations

import json

import pytest
import torch

from sora_mini.artifacts import training_info, training_log
from sora_mini.convert import model_to_images
from sora_mini.diffusion import FlowMatching, GaussianDiffusion
from sora_mini.studies import compression_flicker
from sora_mini.studies import frame_conditioning as ablation
from sora_mini.studies import toy_diffusion as toy


def test_compression_flicker_trains_measures_then_loads(tmp_path):
    torch.set_num_threads(1)
    study = compression_flicker
    first = study.run("tiny", "3d_kl", 3, {"temporal_upsample": "depth_to_time"}, 3, tmp_path)
    assert first["steps"] == 3 and first["overrides"] == {"temporal_upsample": "depth_to_time"}
    noise = first["latent_noise"]
    assert [n["sigma"] for n in noise] == list(study.SIGMAS)
    assert noise[0]["flicker"] == pytest.approx(first["flicker"])  # sigma 0 is the reconstruction
    assert 0 <= first["flicker_static_share"] <= 1
    (run_dir,) = (tmp_path / "tiny").iterdir()
    assert (run_dir / "figures.json").exists() and run_dir.name.startswith("autoencoder_3d_kl-")
    stored = json.loads((run_dir / "config.json").read_text())["config"]
    assert stored["temporal_upsample"] == "depth_to_time"  # the override is in the model's config
    again = study.run("tiny", "3d_kl", 3, {"temporal_upsample": "depth_to_time"}, 3, tmp_path)
    assert again["train_seconds"] == first["train_seconds"]  # loaded, not trained again
    assert again["psnr"] == first["psnr"]


def test_paired_gap_names_a_winner_only_outside_the_spread():
    study = compression_flicker
    rng = torch.Generator().manual_seed(0)
    base = torch.rand(40, generator=rng).tolist()
    clear = study.paired_gap([v - 1.0 for v in base], base)  # a is lower on every video
    assert clear["lower"] == "a" and clear["gap"] == pytest.approx(-1.0) and clear["high"] < 0
    noisy = [v + d for v, d in zip(base, torch.randn(40, generator=rng).tolist())]
    tie = study.paired_gap(noisy, noisy[::-1])  # the same values in another order: no true gap
    assert tie["lower"] == "within the spread" and tie["low"] < 0 < tie["high"]
    assert study.paired_gap(base, [v - 1.0 for v in base])["lower"] == "b"
    lo, hi = study.bootstrap_interval(base)
    assert lo < sum(base) / len(base) < hi
    assert study.bootstrap_interval(base, weights=[2.0] * len(base)) == (lo, hi)  # equal weights: the plain mean
    heavy = study.bootstrap_interval(base, weights=[10.0 if v > 0.5 else 1.0 for v in base])
    assert heavy[0] > lo and heavy[1] > hi  # weight on the large values moves the interval up


def test_colour_adherence_reads_real_world_images():
    x, y = toy.world_images(16, 16)
    images = model_to_images(x)
    right = toy.colour_adherence(images, y)
    wrong = toy.colour_adherence(images, (y + 1) % len(toy.COLOURS))
    assert right["adherence"] == right["colour_match"] == 1.0
    assert wrong["adherence"] == wrong["colour_match"] == 0.0


# ----------------------------------------------------------------------------------------------
# The toy denoisers on the save/load convention
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls, fields, x", [
    (toy.ToyMLP, {"num_classes": 4, "hidden": 32}, torch.randn(5, 2)),
    (toy.TinyUNet, {"channels": 8}, torch.randn(5, 3, 8, 8)),
])
def test_toy_denoisers_round_trip(tmp_path, cls, fields, x):
    torch.manual_seed(0)
    model = cls(**fields).eval()
    assert all(getattr(model.config, k) == v for k, v in fields.items())  # the config holds every argument
    for p in model.parameters():  # leave the zero init so the output depends on every weight
        p.data.normal_(0, 0.1)
    model.save_pretrained(tmp_path / "m")
    loaded = cls.from_pretrained(tmp_path / "m")
    assert loaded.config == model.config
    t, y = torch.tensor([10.0, 200.0, 500.0, 700.0, 999.0]), torch.tensor([0, 1, 2, 3, 0])
    with torch.no_grad():
        assert torch.equal(loaded(x, t, y=y), model(x, t, y=y))


def test_toy_denoisers_keep_the_seeded_init_and_refuse_bad_configs(tmp_path):
    torch.manual_seed(3)
    a = toy.ToyMLP(num_classes=2)
    torch.manual_seed(3)
    b = toy.ToyMLP(toy.ToyMLPConfig(num_classes=2))
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    with pytest.raises(TypeError, match="not both"):
        toy.ToyMLP(toy.ToyMLPConfig(), hidden=3)
    with pytest.raises(TypeError, match="widht"):
        toy.TinyUNet(widht=8)
    with pytest.raises(ValueError, match="multiple of 8"):
        toy.TinyUNetConfig(channels=12)
    toy.TinyUNet(channels=8).save_pretrained(tmp_path / "u")
    config = tmp_path / "u" / "config.json"
    payload = json.loads(config.read_text())
    payload["config"]["channels"] = 16
    config.write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="other shapes: "):
        toy.TinyUNet.from_pretrained(tmp_path / "u")
    del payload["config"]["emb"]
    config.write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="emb"):
        toy.TinyUNet.from_pretrained(tmp_path / "u")


def test_get_image_denoiser_trains_once_per_config(tmp_path):
    torch.set_num_threads(1)
    small = {"image_train_steps": 3, "image_train_size": 16, "image_channels": 8, "image_batch_size": 4}
    flow = FlowMatching()
    model = toy.get_image_denoiser("tiny", objective=flow, run_root=tmp_path, progress=False, **small)
    folder = toy.image_denoiser_dir("tiny", objective=flow, run_root=tmp_path, **small)
    assert isinstance(model, toy.TinyUNet) and not model.training and model.config.channels == 8
    assert training_info(folder)["steps"] == 3 and [r["step"] for r in training_log(folder)] == [3]
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    again = toy.get_image_denoiser("tiny", objective=flow, run_root=tmp_path, progress=False, **small)
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert all(torch.equal(p, q) for p, q in zip(model.state_dict().values(), again.state_dict().values()))
    # another objective setting, seed or step count: another folder
    others = [toy.image_denoiser_dir("tiny", objective=FlowMatching(shift=3.0), run_root=tmp_path, **small),
              toy.image_denoiser_dir("tiny", objective=flow, run_root=tmp_path, seed=1, **small),
              toy.image_denoiser_dir("tiny", objective=GaussianDiffusion(), run_root=tmp_path, **small),
              toy.image_denoiser_dir("tiny", objective=flow, run_root=tmp_path, **{**small, "image_train_steps": 4})]
    assert len({folder, *others}) == 5


def test_the_ablation_is_cached_by_its_whole_config(tmp_path):
    torch.set_num_threads(1)
    tiny = {"modes": ("token_concat",), "seeds": (0,), "steps": 2, "train_videos": 4, "eval_videos": 1,
            "sample_steps": 1, "batch_size": 2, "hidden_size": 16}
    first = ablation.load_or_run_ablation("tiny", run_root=tmp_path, progress=False, **tiny)
    folder = ablation.ablation_dir("tiny", run_root=tmp_path, **tiny)
    assert (folder / "results.json").exists() and folder.name.startswith("ablation_conditioning_v")
    assert first["config"]["steps"] == 2 and list(first["arms"]) == ["token_concat"]
    again = ablation.load_or_run_ablation("tiny", run_root=tmp_path, progress=False, **tiny)
    assert again == json.loads(json.dumps(first))
    assert ablation.ablation_dir("tiny", run_root=tmp_path, **{**tiny, "steps": 3}) != folder
