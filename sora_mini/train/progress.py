"""What the trainer reports: one log row per window of steps, throughput, the progress bar's figures."""

from __future__ import annotations

import time


class LogWindow:
    """The steps since the last log row. :meth:`row` averages their figures, except ``tokens`` (the
    real tokens of each step's batch), which it sums: ``tokens_per_s`` is the tokens of the window
    over its wall-clock seconds, and ``model_flops_per_s`` that times ``flops_per_token`` (the model's
    forward + backward FLOPs per token, about 6 x its parameters, given by the caller).

    The window survives a resume (:meth:`state_dict`), so a resumed run logs the rows an
    uninterrupted one would (the timings aside).
    """

    def __init__(self, flops_per_token: float | None = None):
        self.flops_per_token = flops_per_token
        self.steps: list[dict[str, float]] = []
        self._carried_s = 0.0  # seconds of this window spent before a resume
        self._start = time.perf_counter()

    def start_clock(self) -> None:
        """Count the window's seconds from now (on top of those carried over a resume)."""
        self._start = time.perf_counter()

    def seconds(self) -> float:
        return self._carried_s + time.perf_counter() - self._start

    def add(self, metrics: dict[str, float]) -> None:
        self.steps.append(dict(metrics))

    def row(self, step: int, elapsed_s: float) -> dict[str, float]:
        """The log row of the window ending at ``step`` (a count of steps done); starts a new window."""
        seconds = self.seconds()
        tokens = [m["tokens"] for m in self.steps if "tokens" in m]
        keys = [k for k in dict.fromkeys(k for m in self.steps for k in m) if k != "tokens"]
        row = {"step": step}
        for k in keys:
            values = [m[k] for m in self.steps if k in m]
            row[k] = sum(values) / len(values)
        if tokens:
            row["tokens"] = sum(tokens)
            row["tokens_per_s"] = row["tokens"] / seconds
            if self.flops_per_token is not None:
                row["model_flops_per_s"] = row["tokens_per_s"] * self.flops_per_token
        row["elapsed_s"] = round(elapsed_s, 3)
        self.steps, self._carried_s = [], 0.0
        self.start_clock()
        return row

    def state_dict(self) -> dict:
        return {"steps": self.steps, "seconds": self.seconds()}

    def load_state_dict(self, state: dict) -> None:
        self.steps = [dict(m) for m in state["steps"]]
        self._carried_s = float(state["seconds"])
        self.start_clock()


def progress_postfix(row: dict[str, float]) -> dict[str, str]:
    """The figures the progress bar shows after a log row: the loss, and tokens per second when
    the loss function counts tokens (``12.3k``)."""
    from tqdm import tqdm

    out = {"loss": f"{row['loss']:.4g}"}
    if "tokens_per_s" in row:
        out["tok/s"] = tqdm.format_sizeof(row["tokens_per_s"])
    return out
