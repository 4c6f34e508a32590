"""Foundations: the one pixel-conversion rule, where relative paths go, the save/load convention."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
import torch
from torch import nn

from sora_mini import convert
from sora_mini.paths import run_dir, workbook_root
from sora_mini.pretrained import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    PretrainedMixin,
    config_from_dict,
    config_hash,
    is_pretrained_dir,
)


# ----------------------------------------------------------------------------------------------
# convert
# ----------------------------------------------------------------------------------------------
def test_uint8_float_round_trip_is_exact():
    video = np.random.default_rng(0).integers(0, 256, (3, 5, 6, 3), dtype=np.uint8)  # [T, H, W, 3]
    x = convert.video_to_model(video)
    assert x.shape == (1, 3, 3, 5, 6) and x.min() >= -1 and x.max() <= 1
    assert np.array_equal(convert.model_to_video(x)[0], video)
    assert np.array_equal(convert.model_to_video(x[0]), video)
    images = video  # as [N, H, W, 3]
    assert np.array_equal(convert.model_to_images(convert.images_to_model(images)), images)


def test_to_uint8_defaults_to_the_model_range_and_takes_others_by_name():
    x = torch.tensor([-1.0, 0.0, 1.0]).view(3, 1, 1, 1).expand(3, 2, 2, 2)  # [3, T, H, W]
    assert convert.to_uint8(x)[0, 0, 0].tolist() == [0, 128, 255]
    assert convert.to_uint8(x.clamp(0, 1), value_range=(0, 1))[0, 0, 0].tolist() == [0, 0, 255]
    assert convert.to_uint8(np.full((4, 4, 3), 7, np.uint8)).shape == (1, 4, 4, 3)  # an image, uint8 kept


def test_conversions_refuse_wrong_input_with_the_fix():
    with pytest.raises(ValueError, match="uint8"):
        convert.video_to_model(np.zeros((2, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match=r"\[3, T, H, W\]"):
        convert.model_to_video(torch.zeros(2, 4, 4, 3))
    with pytest.raises(ValueError, match="high > low"):
        convert.float_to_uint8(torch.zeros(2), value_range=(1, 1))


# ----------------------------------------------------------------------------------------------
# paths
# ----------------------------------------------------------------------------------------------
def test_relative_run_dir_is_taken_from_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    got = run_dir("my_runs", "tiny")
    assert got == (tmp_path / "my_runs" / "tiny").resolve() and got.is_dir()
    assert run_dir(tmp_path / "abs", create=False) == (tmp_path / "abs").resolve()
    assert run_dir("r", base=tmp_path / "b", create=False) == (tmp_path / "b" / "r").resolve()


def test_a_notebook_kernel_in_notebooks_takes_runs_from_the_workbook_root(tmp_path):
    nb = tmp_path / "notebooks"
    nb.mkdir()
    assert workbook_root(nb) == nb  # not a workbook yet: no numbered notebooks
    (nb / "00_intro.ipynb").write_text("{}")
    assert workbook_root(nb) == tmp_path
    assert workbook_root(tmp_path) == tmp_path


# ----------------------------------------------------------------------------------------------
# the save/load convention
# ----------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TinyConfig:
    width: int = 3
    sizes: tuple[int, ...] = (1, 2)


class Tiny(PretrainedMixin, nn.Module):
    config_class = TinyConfig

    def __init__(self, config: TinyConfig = TinyConfig()):
        super().__init__()
        self.config = config
        self.proj = nn.Linear(config.width, 2)

    def forward(self, x):
        return self.proj(x)


def _saved(tmp_path, config=TinyConfig(width=4, sizes=(3, 5))):
    torch.manual_seed(0)
    model = Tiny(config)
    model.save_pretrained(tmp_path / "m")
    return model, tmp_path / "m"


def test_round_trip_gives_identical_outputs_and_config(tmp_path):
    model, folder = _saved(tmp_path)
    assert is_pretrained_dir(folder)
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]  # no temp files left
    back = Tiny.from_pretrained(folder)
    assert back.config == model.config and isinstance(back.config.sizes, tuple)
    x = torch.randn(5, 4)
    assert torch.equal(back(x), model(x)) and not back.training
    meta = json.loads((folder / CONFIG_NAME).read_text())
    assert meta["class"] == "Tiny" and meta["format_version"] == 1


@pytest.mark.parametrize("edit, named", [
    (lambda c: c.update(depth=2), "depth"),          # a key the class does not know
    (lambda c: c.pop("sizes"), "sizes"),              # a key the class needs
])
def test_config_with_an_extra_or_missing_key_is_refused_naming_it(tmp_path, edit, named):
    _, folder = _saved(tmp_path)
    meta = json.loads((folder / CONFIG_NAME).read_text())
    edit(meta["config"])
    (folder / CONFIG_NAME).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=named):
        Tiny.from_pretrained(folder)


def test_another_class_version_shape_or_a_damaged_file_is_refused(tmp_path):
    _, folder = _saved(tmp_path)
    meta = json.loads((folder / CONFIG_NAME).read_text())
    (folder / CONFIG_NAME).write_text(json.dumps({**meta, "class": "VideoDiT"}))
    with pytest.raises(ValueError, match="holds a VideoDiT"):
        Tiny.from_pretrained(folder)
    (folder / CONFIG_NAME).write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(ValueError, match="format version 99"):
        Tiny.from_pretrained(folder)
    (folder / CONFIG_NAME).write_text(json.dumps({**meta, "config": {**meta["config"], "width": 6}}))
    with pytest.raises(ValueError, match=r"proj.weight \(2, 4\) \(the model has \(2, 6\)\)"):
        Tiny.from_pretrained(folder)
    (folder / CONFIG_NAME).write_text(json.dumps(meta))
    data = (folder / WEIGHTS_NAME).read_bytes()
    (folder / WEIGHTS_NAME).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or damaged"):
        Tiny.from_pretrained(folder)
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        Tiny.from_pretrained(tmp_path / "nothing")


def test_a_failed_save_never_replaces_a_good_model(tmp_path, monkeypatch):
    model, folder = _saved(tmp_path)
    before = (folder / WEIGHTS_NAME).read_bytes()

    def broken(tensors, path):
        with open(path, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr("sora_mini.pretrained.save_file", broken)
    with pytest.raises(OSError):
        model.save_pretrained(folder)
    assert (folder / WEIGHTS_NAME).read_bytes() == before
    assert sorted(os.listdir(folder)) == [CONFIG_NAME, WEIGHTS_NAME]


def test_config_hash_covers_nested_sections():
    @dataclasses.dataclass(frozen=True)
    class Outer:
        inner: TinyConfig = TinyConfig()

    assert config_hash(Outer()) != config_hash(Outer(TinyConfig(width=5)))


def test_config_hash_changes_with_any_field():
    assert config_hash(TinyConfig()) == config_hash(TinyConfig())
    assert config_hash(TinyConfig()) != config_hash(TinyConfig(sizes=(1, 3)))
    assert config_from_dict(TinyConfig, {"width": 3, "sizes": [1, 2]}) == TinyConfig()


def test_hash_if_set_fields_keep_old_names_when_nested_and_load_when_absent():
    from sora_mini.pretrained import HASH_IF_SET

    @dataclasses.dataclass(frozen=True)
    class Old:
        width: int = 3

    @dataclasses.dataclass(frozen=True)
    class New:  # Old with a field added later
        width: int = 3
        extra: int | None = dataclasses.field(default=None, metadata=HASH_IF_SET)

    @dataclasses.dataclass(frozen=True)
    class Outer:
        inner: object = None

    assert config_hash(Outer(New())) == config_hash(Outer(Old()))  # unset in a nested config: same name
    assert config_hash(Outer(New(extra=2))) != config_hash(Outer(Old()))
    assert config_from_dict(New, {"width": 4}) == New(width=4, extra=None)  # written before the field
    with pytest.raises(ValueError, match="width"):
        config_from_dict(New, {"extra": 1})  # an ordinary field is still required
