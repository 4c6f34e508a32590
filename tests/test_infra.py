"""The lead's shared pieces: video files, checkpoints, the notebook runner and the CLI."""

import json

import nbformat
import numpy as np
import pytest
import torch

from sora_mini.checkpoint import checkpoint_exists, load_checkpoint, save_checkpoint
from sora_mini.config import PRESETS, SCALES, get_config
from sora_mini.notebook import check_shape
from sora_mini.videoio import read_video, write_video
from sora_mini.viz import frame_grid, show_video, to_uint8


def _flat_video(t=4, h=12, w=20):
    v = np.zeros((t, h, w, 3), np.uint8)
    v[..., 0] = 200
    v[:, 2:6, 3:9] = (20, 220, 40)
    return v


@pytest.mark.parametrize("suffix", [".npz", ".gif"])
def test_video_round_trip_exact(tmp_path, suffix):
    v = _flat_video()
    back = read_video(write_video(tmp_path / f"a{suffix}", v))
    assert back.shape == v.shape
    np.testing.assert_array_equal(back, v)  # few colours: GIF's palette is exact


def test_mp4_round_trip_close_and_odd_sizes(tmp_path):
    v = _flat_video(h=13, w=21)
    back = read_video(write_video(tmp_path / "a.mp4", v))
    assert back.shape[0] == v.shape[0] and back.shape[1] >= 13 and back.shape[2] >= 21
    assert np.abs(back[:, :13, :21].astype(int) - v).mean() < 12


def test_bad_video_files(tmp_path):
    (tmp_path / "empty.gif").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        read_video(tmp_path / "empty.gif")
    (tmp_path / "junk.gif").write_bytes(b"not a gif")
    with pytest.raises(ValueError, match="cannot read"):
        read_video(tmp_path / "junk.gif")
    with pytest.raises(ValueError, match="unknown format"):
        read_video(tmp_path / "clip.avi")
    with pytest.raises(FileNotFoundError):
        read_video(tmp_path / "missing.gif")


def test_to_uint8_layouts():
    x = torch.zeros(3, 2, 4, 5)  # [C,T,H,W] in [-1,1]
    x[0] = 1.0
    u = to_uint8(x, value_range=(-1, 1))
    assert u.shape == (2, 4, 5, 3)
    assert u[0, 0, 0].tolist() == [255, 128, 128]
    assert frame_grid([u, u]).shape == (2 * 4 + 1, 2 * 5 + 1, 3)
    assert "data:image/gif;base64" in show_video(u)._repr_html_()


def test_checkpoint_round_trip_and_atomic(tmp_path):
    sd = {"w": torch.randn(3, 4), "b": torch.arange(5)}
    save_checkpoint(tmp_path / "m", sd, {"dims": (3, 4)}, {"step": 7})
    assert checkpoint_exists(tmp_path / "m")
    state, cfg, extra = load_checkpoint(tmp_path / "m")
    assert torch.equal(state["w"], sd["w"]) and torch.equal(state["b"], sd["b"])
    assert cfg == {"dims": [3, 4]} and extra == {"step": 7}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    with pytest.raises(FileNotFoundError, match="train it first"):
        load_checkpoint(tmp_path / "nothing")


def test_config_presets():
    assert set(PRESETS) == set(SCALES)
    with pytest.raises(ValueError, match="tiny"):
        get_config("huge")
    for cfg in PRESETS.values():
        json.dumps(cfg.to_dict())


def test_check_shape():
    check_shape(torch.zeros(2, 3), (2, None))
    with pytest.raises(AssertionError, match=r"\(2, 3\)"):
        check_shape(torch.zeros(2, 3), (2, 4))


def test_runner_names_failing_cell(tmp_path):
    from sora_mini.runner import NotebookFailed, run_notebooks

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('SCALE = "tiny"\nSEED = 0\nRUN_DIR = "runs"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise ValueError('boom')")]
    path = tmp_path / "99_fails.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(NotebookFailed) as err:
        run_notebooks("tiny", run_dir_name=str(tmp_path / "runs"), paths=[path])
    msg = str(err.value)
    assert "99_fails.ipynb" in msg and "boom" in msg and "cell" in msg
    partial = tmp_path / "runs" / "tiny" / "notebooks" / "99_fails.ipynb"
    assert partial.exists()  # the partial notebook is kept
    timings = json.loads((partial.parent / "timings.json").read_text())
    assert timings["notebooks"][0]["status"] == "failed"


def test_cli_world_then_evaluate(tmp_path, capsys):
    from sora_mini.cli import main

    out = tmp_path / "clip.gif"
    main(["world", "--seed", "3", "--height", "36", "--width", "64", "--frames", "16", "--out", str(out)])
    world = json.loads(capsys.readouterr().out)
    assert world["shape"] == [16, 36, 64, 3] and out.exists()
    assert set(world) >= {"short_caption", "detailed_caption", "spec"}
    main(["evaluate", str(out), "--caption", world["detailed_caption"]])
    result = json.loads(capsys.readouterr().out)
    assert result["adherence"]["overall"] == 1.0
    assert len(result["detected"]) == len(world["spec"]["objects"])
    assert {"physics", "consistency", "framing"} <= set(result)


def test_cli_bad_input_exits_2(tmp_path, capsys):
    from sora_mini.cli import main

    with pytest.raises(SystemExit) as e:
        main(["world", "--spec", '{"objects": [{"shape": "hexagon", "color": "red"}]}'])
    assert e.value.code == 2 and "hexagon" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["world", "--height", "8"])
    assert e.value.code == 2 and "16" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(tmp_path / "none.gif"), "--caption", "a red circle"])
    assert e.value.code == 2


def test_a_listing_that_does_not_render_is_found():
    from sora_mini.viz import LISTING_METADATA, missing_listings

    shown = {"output_type": "display_data", "metadata": LISTING_METADATA, "data": {"text/plain": "def f"}}
    other = {"output_type": "display_data", "metadata": {}, "data": {"text/plain": "<Code>"}}
    cells = [
        {"cell_type": "code", "source": "show_source(a)\nshow_source(b)", "outputs": [shown, shown]},
        {"cell_type": "code", "source": "x = show_source(a)\nx", "outputs": [other]},  # old style
        {"cell_type": "code", "source": "from sora_mini.viz import show_source", "outputs": []},
        {"cell_type": "markdown", "source": "show_source(a)"},
        {"cell_type": "code", "source": "show_source(a)\nshow_source(b)", "outputs": [shown]},
    ]
    assert missing_listings(cells) == [1, 4]


def test_show_source_prints_outside_ipython_and_checks_lines(capsys):
    from sora_mini.viz import show_source

    assert show_source(check_shape) is None
    assert "def check_shape" in capsys.readouterr().out
    show_source(check_shape, lines=(1, 1))
    assert capsys.readouterr().out.strip().startswith("def check_shape")
    with pytest.raises(ValueError, match="outside"):
        show_source(check_shape, lines=(1, 500))
