"""Backbones on the save/load convention: frozen configs, save_pretrained -> from_pretrained gives
the same outputs, strict refusal of wrong configs and weights, and the timestep range they declare."""

import dataclasses
import json

import pytest
import torch

from sora_mini.diffusion import FlowMatching, sample
from sora_mini.models import (
    DiT,
    DiTConfig,
    UViT,
    UViTConfig,
    VideoDiT,
    VideoDiTConfig,
    dit,
    video_dit,
)


def randomized(model, seed=0):
    """Weights off their zero init, so the outputs depend on every weight."""
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.data.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()


def dit_case():
    model = DiT(DiTConfig(input_size=8, patch_size=2, hidden_size=32, depth=2, num_heads=2, num_classes=5))
    return model, lambda m: m(torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1)),
                              torch.tensor([3.0, 800.0]), torch.tensor([1, 4]))


def video_case(frame_cond, text_cond):
    model = VideoDiT(VideoDiTConfig(in_channels=3, hidden_size=32, depth=2, num_heads=2, frame_cond=frame_cond,
                                    text_cond=text_cond, text_dim=8))
    g = torch.Generator().manual_seed(1)
    x, cond = torch.randn(2, 3, 4, 4, 4, generator=g), torch.randn(2, 3, 4, 4, 4, generator=g)
    given = torch.tensor([[True, False, False, False], [True, True, False, False]])
    text = torch.randn(2, 5, 8, generator=g)
    return model, lambda m: m(x, torch.tensor([10.0, 700.0]), cond=cond, cond_frames=given, text=text)


def uvit_case():
    model = UViT(UViTConfig(in_channels=3, hidden_size=32, depth=2, num_heads=2, num_classes=4, text_dim=8,
                            max_text_tokens=6, frame_cond="token_concat"))
    g = torch.Generator().manual_seed(1)
    x, cond = torch.randn(2, 3, 2, 4, 4, generator=g), torch.randn(2, 3, 2, 4, 4, generator=g)
    given, text = torch.tensor([[True, False], [False, False]]), torch.randn(2, 5, 8, generator=g)
    return model, lambda m: m(x, torch.tensor([0.0, 1000.0]), torch.tensor([0, 3]), text=text, cond=cond,
                              cond_frames=given)


CASES = {
    "dit": dit_case,
    "video_text_cross_frames_token_concat": lambda: video_case("token_concat", "cross_attn"),
    "video_joint_text_channel_concat": lambda: video_case("channel_concat", "joint"),
    "video_cross_attn_frames": lambda: video_case("cross_attn", "cross_attn"),
    "uvit": uvit_case,
}


@pytest.mark.parametrize("case", CASES)
def test_save_then_load_gives_identical_outputs(case, tmp_path):
    model, run = CASES[case]()
    model = randomized(model)
    model.save_pretrained(tmp_path / case)
    loaded = type(model).from_pretrained(tmp_path / case)
    assert loaded.config == model.config and dataclasses.is_dataclass(loaded.config)
    assert not loaded.training
    with torch.no_grad():
        assert torch.equal(run(model), run(loaded))


@pytest.mark.parametrize("edit, match", [
    (lambda c: c.update(dropout=0.1), "unknown VideoDiTConfig field.*dropout"),
    (lambda c: c.pop("num_heads"), "num_heads missing"),
])
def test_a_config_with_an_extra_or_a_missing_key_is_refused(edit, match, tmp_path):
    model, _ = video_case("none", "none")
    model.save_pretrained(tmp_path)
    payload = json.loads((tmp_path / "config.json").read_text())
    edit(payload["config"])
    (tmp_path / "config.json").write_text(json.dumps(payload))
    with pytest.raises(ValueError, match=match):
        VideoDiT.from_pretrained(tmp_path)


def test_weights_of_another_shape_are_refused(tmp_path):
    model, _ = dit_case()
    model.save_pretrained(tmp_path)
    payload = json.loads((tmp_path / "config.json").read_text())
    payload["config"]["hidden_size"] = 64  # the config now says 64 wide, the weights are 32 wide
    (tmp_path / "config.json").write_text(json.dumps(payload))
    with pytest.raises(ValueError, match=r"other shapes: .*\(the model has"):
        DiT.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="holds a DiT, not a UViT"):
        UViT.from_pretrained(tmp_path)


@pytest.mark.parametrize("cls, config, fields", [
    (DiT, DiTConfig(input_size=8, hidden_size=32, depth=2, num_heads=2, num_classes=5),
     {"input_size": 8, "hidden_size": 32, "depth": 2, "num_heads": 2, "num_classes": 5}),
    (VideoDiT, VideoDiTConfig(in_channels=3, hidden_size=32, depth=2, num_heads=2, frame_cond="adaln"),
     {"in_channels": 3, "hidden_size": 32, "depth": 2, "num_heads": 2, "frame_cond": "adaln"}),
    (UViT, UViTConfig(in_channels=3, hidden_size=32, depth=2, num_heads=2),
     {"in_channels": 3, "hidden_size": 32, "depth": 2, "num_heads": 2}),
])
def test_keyword_form_is_the_config_form(cls, config, fields):
    torch.manual_seed(0)
    a = cls(config)
    torch.manual_seed(0)
    b = cls(**fields)
    assert a.config == b.config
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.config.depth = 3
    with pytest.raises(TypeError, match="unknown .*Config field.*hidden"):
        cls(hidden=32)


def test_registries_build_on_the_configs():
    with torch.device("meta"):
        assert dit("DiT-S/2", input_size=16).config == DiTConfig(input_size=16, patch_size=2, hidden_size=384,
                                                                  depth=12, num_heads=6)
        v = video_dit("VideoDiT-S/4", in_channels=3, depth=2)
    assert v.config.patch_size == (1, 4, 4) and v.config.hidden_size == 384 and v.config.depth == 2
    assert VideoDiTConfig(patch_size=[1, 2, 2]).patch_size == (1, 2, 2)  # lists become the tuple
    with pytest.raises(ValueError, match="allowed: none, adaln"):
        VideoDiTConfig(frame_cond=("none", "adaln"))


@pytest.mark.parametrize("case", ["dit", "video_text_cross_frames_token_concat", "uvit"])
def test_backbones_refuse_timesteps_off_their_scale(case):
    model, _ = CASES[case]()
    assert model.timestep_range == (0.0, 1000.0)
    with pytest.raises(ValueError, match="pass the model itself"):
        if case == "dit":
            model(torch.zeros(2, 4, 8, 8), torch.tensor([5.0, 1e6]), torch.tensor([0, 1]))
        elif case == "uvit":
            model(torch.zeros(2, 3, 2, 4, 4), torch.tensor([-1.0, 5.0]), torch.tensor([0, 1]), text=torch.zeros(2, 2, 8))
        else:
            model(torch.zeros(2, 3, 4, 4, 4), torch.tensor([5.0, 1500.0]), text=torch.zeros(2, 2, 8))


def test_sampling_a_backbone_converts_flow_time_once():
    """Passing the model itself is right; the old wrapped form (t * 1000 before sample) now reaches
    the backbone at t * 10^6 and is refused, where it used to be the only right call."""
    model = randomized(VideoDiT(VideoDiTConfig(in_channels=3, hidden_size=32, depth=1, num_heads=2)))
    seen = []
    model.register_forward_pre_hook(lambda m, args: seen.append(args[1].max().item()))
    flow = FlowMatching()
    x = sample(model, flow, (1, 3, 2, 4, 4), steps=2, generator=torch.Generator().manual_seed(0), progress=False)
    assert torch.isfinite(x).all() and seen[0] == 1000.0

    def twice(x_t, t, **cond):  # what objective.backbone_fn(model) used to return
        return model(x_t, t * 1000, **cond)

    twice.timestep_range = model.timestep_range  # a wrapper passing itself off as the backbone
    with pytest.raises(ValueError, match="pass the model itself"):
        sample(twice, flow, (1, 3, 2, 4, 4), steps=2, progress=False)
