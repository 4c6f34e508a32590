"""The held-out prompt suite: its prompts, scoring rows and summary table."""

import json

import pytest

from sora_mini.studies import prompt_suite
from sora_mini.studies.prompt_suite import (
    ASPECTS,
    GROUPS,
    load_or_run_suite,
    mover_readings,
    one_object_prompt,
    score_row,
    suite_config,
    suite_prompts,
    summarize,
)
from sora_mini.train.video import holdout_combos
from sora_mini.world.captions import parse_caption


def test_prompts_are_the_holdout_at_every_aspect_and_parse():
    config = suite_config("small")
    rows = suite_prompts(config)
    one = [r for r in rows if r["group"] == "one_object"]
    assert len(one) == len(ASPECTS) * config.holdout
    assert {r["aspect"] for r in one} == set(ASPECTS)
    combos = {(c, s) for c, s, _ in holdout_combos(config.holdout)}
    for r in rows:
        spec = parse_caption(r["prompt"])  # every prompt is in the grammar
        if r["group"] == "one_object":
            assert (spec.objects[0].color, spec.objects[0].shape) in combos
    assert one_object_prompt("red", "circle", "up left") == "a red circle moves up left"
    assert one_object_prompt("red", "circle", "fall") == "a red circle falls"
    assert sum(r["group"] == "two_objects" for r in rows) == config.two_objects


def test_rows_and_summary_from_evaluator_results():
    prompt = {"group": "one_object", "prompt": "a red circle moves up", "aspect": "1:1", "key": "direction"}
    good = {"adherence": {"attributes": {"color": 1.0, "shape": 1.0, "direction": 1.0, "size": None}},
            "framing": {"score": 1.0}}
    bad = {"adherence": {"attributes": {"color": 1.0, "shape": 0.0, "direction": 1.0}}, "framing": {"score": 0.5}}
    unscored = {"adherence": {"attributes": {"color": 0.0}}, "framing": {"score": None}}
    rows = [score_row(prompt, 0, good), score_row(prompt, 1, bad)]
    assert rows[0]["all_three"] == 1.0 and rows[1]["all_three"] == 0.0
    assert "size" not in rows[0]["attributes"]
    table = {(t["aspect"], t["attribute"]): t for t in summarize(rows)}
    assert table[("all", "shape")]["mean"] == 0.5 and table[("all", "shape")]["n"] == 2
    assert table[("1:1", "framing")]["mean"] == 0.75
    assert table[("all", "all_three")]["low"] < 0.5 < table[("all", "all_three")]["high"]
    with_unscored = {(t["aspect"], t["attribute"]): t for t in summarize([*rows, score_row(prompt, 2, unscored)])}
    assert with_unscored[("all", "framing")]["n"] == 2 and with_unscored[("all", "color")]["n"] == 3


def test_readings_of_movers_say_why_a_direction_was_missed():
    prompt = {"group": "one_object", "prompt": "a red circle moves up", "aspect": "1:1", "key": "direction"}
    blue = {"color": "blue", "motion": "still", "direction": None, "credible": True}
    noise = {"color": "red", "motion": "turn", "direction": "up", "credible": False}

    def result(direction, motion, read_dir):
        red = {"color": "red", "motion": motion, "direction": read_dir, "credible": True}
        return {"adherence": {"attributes": {"color": 1.0, "shape": 1.0, "direction": direction}},
                "framing": {"score": 1.0}, "detected": [blue, noise, red]}

    rows = [score_row(prompt, 0, result(1.0, "move", "up")), score_row(prompt, 1, result(0.0, "grow", None)),
            score_row(prompt, 2, result(0.0, "shrink", None)), score_row(prompt, 3, result(0.0, "grow", None))]
    assert rows[0]["read"] == {"motion": "move", "direction": "up"}  # the red one, not the blue or the speck
    still = {**prompt, "prompt": "a red circle falls", "key": "motion"}
    rows.append(score_row(still, 0, result(None, "fall", None)))  # not a mover: not counted
    unread = score_row(prompt, 4, {"adherence": {"attributes": {"direction": 0.0}}, "framing": {"score": None}})
    assert unread["read"] is None
    old = {k: v for k, v in rows[0].items() if k != "read"}  # a row cached before readings were kept
    got = mover_readings([*rows, unread, old])
    assert got == {"right": {"move": 1, "not recorded": 1}, "wrong": {"grow": 2, "shrink": 1, "no object": 1}, "n": 6}


def test_runs_on_the_tiny_pipeline_and_caches(tiny_pipeline_dir, tmp_path, monkeypatch):
    rows = load_or_run_suite(tiny_pipeline_dir, "tiny", run_root=tmp_path, progress=False)
    assert {r["group"] for r in rows} == set(GROUPS)
    assert all(0.0 <= r["framing"] <= 1.0 for r in rows)
    assert all("read" in r for r in rows if r["group"] == "one_object")
    again = load_or_run_suite(tiny_pipeline_dir, "tiny", run_root=tmp_path, progress=False)
    assert again == rows
    # rows cached before the suite kept the evaluator's readings are scored again
    (cached,) = tmp_path.glob("tiny/prompt_suite-*/rows.json")
    cached.write_text(json.dumps([{k: v for k, v in r.items() if k != "read"} for r in rows]))
    monkeypatch.setattr(prompt_suite, "run_suite", lambda *a, **k: [{"rescored": True}])
    assert load_or_run_suite(tiny_pipeline_dir, "tiny", run_root=tmp_path, progress=False) == [{"rescored": True}]
    with pytest.raises(ValueError, match="unknown scale"):
        suite_config("huge")
