"""The evaluator measured on the world's ground truth: every attribute read back (>= 99%), and
mismatched prompts near chance. 240 held-out videos over the tiny preset's sizes and durations."""

import pytest

from sora_mini.evaluate.validate import validate_evaluator


@pytest.fixture(scope="module")
def report():
    return validate_evaluator(
        n=240,
        seed=2024,
        sizes=((32, 32), (32, 48), (48, 32), (32, 64)),
        frames=(1, 5, 9),
        verbose=False,
    )


def test_every_attribute_is_read_back(report):
    acc = report.accuracy("observable")
    for attribute, value in acc.items():
        assert value is not None, attribute
        assert value >= 0.99, (attribute, value, report.failures[:5])
    # enough cases per attribute for 99% to mean something
    assert report.observable["shape"][1] >= 400 and report.observable["motion"][1] >= 250
    # turns no pixel shows are rare, and reported apart rather than hidden
    assert (
        report.truth["motion"][1] - report.observable["motion"][1]
        <= 0.03 * report.truth["motion"][1]
    )


def test_mismatched_prompts_fall_to_chance(report):
    truth, mism, chance = (report.accuracy(k) for k in ("observable", "mismatched", "chance"))
    for attribute in truth:
        assert abs(mism[attribute] - chance[attribute]) < 0.08, (
            attribute,
            mism[attribute],
            chance[attribute],
        )
        assert mism[attribute] < truth[attribute] - 0.3, attribute
