"""nbval check: every `show_source(...)` call in an executed cell must show its listing.

A listing that never renders (a helper returning an object Jupyter drops) is a lesson with a hole
in it; this makes it a failing test instead of a silent gap.
"""

import pytest

from sora_mini.viz import listing_outputs


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    outcome = yield
    cell = getattr(item, "cell", None)
    if outcome.excinfo is not None or cell is None or getattr(item, "test_outputs", None) is None:
        return
    source = cell.get("source", "")
    calls = sum(line.count("show_source(") for line in source.splitlines()
                if not line.lstrip().startswith(("#", "def ", "from ", "import ")))
    shown = listing_outputs(item.test_outputs)
    if calls > shown:
        raise AssertionError(f"{item.name}: {calls} show_source call(s) but {shown} listing(s) shown; "
                             "call show_source(...) as a statement (it displays itself)")
