"""The interactive sampler, headless: built on the tiny pipeline, values set, Generate clicked, the
animation and the evaluator's reading read back; bad input shows a message, never a traceback."""

import datetime as dt

import numpy as np
import pytest

from sora_mini.pipeline import SoraMiniPipeline
from sora_mini.videoio import gif_bytes, read_video
from sora_mini.widgets import (
    ASPECTS,
    IMAGE,
    Sampler,
    SampleRequest,
    decode_upload,
    expected_evals,
    frame_options,
    parse_box,
    run_request,
    world_clip,
)

WIDE = next(k for k in ASPECTS if k.startswith("16:9"))


@pytest.fixture(scope="module")
def pipe(tiny_pipeline_dir):
    return SoraMiniPipeline.from_pretrained(tiny_pipeline_dir)


@pytest.fixture
def sampler(pipe, tmp_path):
    s = Sampler(pipe, out_dir=tmp_path)
    s.steps.value, s.frames.value = 2, 9
    return s


def upload_value(data: bytes, name: str) -> tuple:
    """What a FileUpload holds after the browser sent one file."""
    return ({"name": name, "type": "", "size": len(data), "content": memoryview(data),
             "last_modified": dt.datetime.now(dt.timezone.utc)},)


def gif_shape(data: bytes) -> tuple:
    """[T, H, W, 3] of GIF bytes (read as the widget reads an upload)."""
    return decode_upload(upload_value(data, "shown.gif")).shape


def test_nothing_runs_before_the_click(pipe, tmp_path, monkeypatch):
    calls = []
    generate = pipe.generate
    monkeypatch.setattr(pipe, "generate", lambda *a, **k: calls.append(a) or generate(*a, **k))
    s = Sampler(pipe, out_dir=tmp_path)
    s.steps.value = 2
    for mode in ("i2v", "edit", "inpaint", "t2v"):  # every control change redraws the controls only
        s.mode.value = mode
    s.aspect.value, s.prompt.value = WIDE, "a blue square falls"
    assert calls == [] and s.result is None and s.animation.value == b""
    assert s.animation.layout.display == "none" and s.save_button.disabled
    s.generate_button.click()
    assert len(calls) == 1 and s.result is not None
    assert "application/vnd.jupyter.widget-view+json" in s._repr_mimebundle_()


def test_generate_shows_the_animation_and_the_reading(sampler, pipe):
    ticks = []
    sampler.progress.observe(lambda change: ticks.append(change["new"]), names="value")
    sampler.prompt.value, sampler.aspect.value, sampler.seed.value = "a red circle moves right", WIDE, 3
    sampler.generate_button.click()
    video = sampler.result.video
    assert video.shape == (9, 32, 56, 3)
    assert sampler.animation.value[:4] == b"GIF8" and sampler.animation.layout.display == ""
    assert gif_shape(sampler.animation.value) == (9, 32 * 4, 56 * 4, 3)  # upscaled 4x to about 256 px
    assert (sampler.animation.layout.width, sampler.animation.layout.height) == ("224px", "128px")  # not stretched
    assert "the evaluator reads" in sampler.reading.value and "adherence (overall)" in sampler.reading.value
    assert "a red circle moves right" in sampler.reading.value
    assert "sora-mini-done" in sampler.message.value and not sampler.save_button.disabled
    assert 1 in ticks and sampler.progress.value == sampler.progress.max == 2  # a tick per Euler step
    again = run_request(pipe, sampler.request())  # the button is run_request on what the controls say
    assert np.array_equal(again.video, video)


def test_image_size_is_one_frame(sampler):
    sampler.aspect.value = IMAGE
    assert sampler.frames.disabled
    sampler.generate_button.click()
    assert sampler.result.video.shape == (1, 32, 32, 3) and gif_shape(sampler.animation.value)[0] == 1


@pytest.mark.parametrize("mode", ["i2v", "extend", "connect", "edit", "loop", "inpaint", "long"])
def test_every_mode_on_a_world_sample(sampler, mode):
    sampler.mode.value = mode
    sampler.strength.value = 0.5  # edit: SDEdit runs the last half of the steps
    evals = []
    sampler._on_step = evals.append  # what the progress bar is told after each transformer evaluation
    sampler.generate_button.click()
    r = sampler.result
    assert "sora-mini-done" in sampler.message.value, sampler.message.value
    assert r.info["mode"] == mode and sampler.animation.value[:4] == b"GIF8"
    assert evals[-1] == expected_evals(r.request, "euler")
    clip = world_clip(0, 32, 32, 9)[0]
    frames = {"long": 9 + 2 * (9 - 5)}.get(mode, 9)  # long: 3 segments, each after the first adds 4 frames
    assert r.video.shape == (frames, 32, 32, 3)
    if mode == "i2v":
        assert r.info["given_frames"] == [0]
    if mode == "inpaint":  # the default box is the centre quarter; outside it the clip is unchanged
        outside = np.ones((32, 32), bool)
        outside[8:24, 8:24] = False
        assert np.array_equal(r.video[:, outside], clip[:, outside])


def test_an_uploaded_clip_is_cropped_to_fit(sampler):
    data = gif_bytes(world_clip(5, 40, 44, 9)[0])
    sampler.mode.value, sampler.source.value, sampler.strength.value = "edit", "upload", 0.0
    sampler.upload.value = upload_value(data, "my clip.gif")
    sampler.generate_button.click()
    given = decode_upload(sampler.upload.value)
    assert sampler.result.video.shape == (9, 40, 40, 3)
    assert np.array_equal(sampler.result.video, given[:, :, 2:42])  # center crop to multiples of 8


def test_save_gif_and_mp4(sampler, tmp_path):
    sampler.generate_button.click()
    for fmt in ("gif", "mp4"):
        sampler.save_format.value = fmt
        sampler.save_button.click()
        path = tmp_path / f"t2v-a-red-circle-moves-right-seed0.{fmt}"
        assert f"saved {path}" in sampler.message.value
        assert read_video(path).shape == sampler.result.video.shape


def _set(s, **values):
    for name, value in values.items():
        getattr(s, name).value = value


BAD = {
    "empty prompt": ({"prompt": "   "}, "write a prompt"),
    "edit without a clip": ({"mode": "edit", "source": "upload"}, "needs a clip"),
    "connect without a second clip": ({"mode": "connect", "source": "upload",
                                       "upload": upload_value(gif_bytes(np.zeros((9, 32, 32, 3), np.uint8)), "a.gif")},
                                      "needs a second clip"),
    "a box outside the frame": ({"mode": "inpaint", "box": "0 0 99 99"}, "outside the 32x32 frame"),
    "a box that is not 4 numbers": ({"mode": "inpaint", "box": "1 2 3"}, "4 integers"),
    "a file that is no video": ({"mode": "edit", "source": "upload", "upload": upload_value(b"hello", "notes.txt")},
                                "unknown format"),
    "a loop of one frame": ({"mode": "loop", "aspect": IMAGE}, "more than one frame"),
    "a word outside the world": ({"prompt": "a dog runs"}, "dog"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_shows_a_message_not_a_traceback(sampler, case):
    values, said = BAD[case]
    _set(sampler, **values)
    sampler.generate_button.click()
    message = sampler.message.value
    assert "sora-mini-error" in message and said in message, message
    assert "Traceback" not in message and sampler.result is None and sampler.animation.value == b""
    assert sampler.progress.bar_style == "danger" and not sampler.generate_button.disabled


def test_an_unexpected_error_is_a_message_too(sampler, pipe, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(pipe, "generate", broken)
    sampler.generate_button.click()
    assert "unexpected RuntimeError: boom" in sampler.message.value and sampler.result is None


def test_a_prompt_the_evaluator_cannot_read_is_still_generated(sampler):
    sampler.prompt.value, sampler.extend.value = "a dog runs", False
    sampler.generate_button.click()
    assert sampler.result is not None and isinstance(sampler.result.reading, str)
    assert "cannot read this prompt" in sampler.reading.value


def test_the_pure_helpers():
    assert [t for _, t in frame_options(4, 17)] == [5, 9, 13, 17, 21, 25, 29, 33]
    assert [t for _, t in frame_options(2, 17, longest=9)] == [3, 5, 7, 9, 17]
    assert parse_box("") is None and parse_box("1, 2 3 4") == (1, 2, 3, 4)
    with pytest.raises(ValueError, match="4 integers"):
        parse_box("1 2 3 x")
    req = SampleRequest("a red circle", steps=10)
    assert expected_evals(req, "euler") == 10 and expected_evals(req, "heun") == 19
    assert expected_evals(SampleRequest("a", mode="loop", steps=10), "euler") == 20
    assert expected_evals(SampleRequest("a", mode="long", steps=10, segments=4), "euler") == 40
    assert expected_evals(SampleRequest("a", mode="edit", steps=10, strength=0.5), "euler") == 5
    assert decode_upload(()) is None
