"""Notebook 00's interval helper: the Wilson score interval of a rate."""

import math

from sora_mini.viz import wilson_interval


def test_wilson_interval_known_values():
    # all right: the lower bound is n / (n + z^2), the upper bound 1
    lo, hi = wilson_interval(300, 300)
    assert math.isclose(lo, 300 / (300 + 1.96**2), rel_tol=1e-12) and hi == 1.0
    # 50 of 100: symmetric around 0.5, narrower than +-0.1
    lo, hi = wilson_interval(50, 100)
    assert math.isclose(0.5 - lo, hi - 0.5) and 0.09 < hi - 0.5 < 0.1
    # none right: [0, z^2 / (n + z^2)]
    lo, hi = wilson_interval(0, 40)
    assert lo == 0.0 and math.isclose(hi, 1.96**2 / (40 + 1.96**2), rel_tol=1e-12)


def test_wilson_interval_holds_the_rate_and_shrinks_with_n():
    for k, n in [(1, 3), (7, 10), (99, 100)]:
        lo, hi = wilson_interval(k, n)
        assert 0.0 <= lo <= k / n <= hi <= 1.0
        lo10, hi10 = wilson_interval(10 * k, 10 * n)
        assert hi10 - lo10 < hi - lo
    assert wilson_interval(0, 0) == (0.0, 1.0)  # no trials: nothing known
