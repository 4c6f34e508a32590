"""Pictures of notebook 01: which frames an output depends on, VQ code usage, curves with intervals."""

from __future__ import annotations

import numpy as np


def frame_dependence(fn, x) -> np.ndarray:
    """Which output frames change when one input frame changes: bool ``[T_out, T_in]``.

    ``fn`` maps ``[B, C, T, H, W]`` to ``[B, C', T', H', W']`` (a layer or an encoder); input frame
    ``f`` of ``x`` is shifted by 1 and output frame ``t`` counts as dependent if it moves at all.
    """
    import torch

    with torch.no_grad():
        base = fn(x)
        cols = []
        for f in range(x.shape[2]):
            bumped = x.clone()
            bumped[:, :, f] += 1.0
            cols.append(((fn(bumped) - base).abs().amax(dim=(0, 1, 3, 4)) > 0).numpy())
    return np.stack(cols, axis=1)


def plot_frame_dependence(maps: dict, xlabel: str = "input frame", ylabel: str = "output frame"):
    """One panel per ``{title: bool [T_out, T_in]}`` from :func:`frame_dependence` (dark = depends)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(maps), figsize=(3.0 * len(maps), 2.9), squeeze=False)
    for ax, (title, m) in zip(axes[0], maps.items()):
        ax.imshow(m, cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title, xticks=range(m.shape[1]), yticks=range(m.shape[0]))
    fig.tight_layout()
    return fig


def plot_code_usage(states: dict, points):
    """VQ codebooks over their data: one column per ``{title: (codes [K, 2], counts [K])}``.

    Top: the 2-D ``points`` and the codes (filled: used, hollow: dead); bottom: hits per code.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(states), figsize=(3.3 * len(states), 5.4), squeeze=False)
    for (top, bottom), (title, (codes, counts)) in zip(axes.T, states.items()):
        codes, counts = np.asarray(codes), np.asarray(counts)
        used = counts > 0
        top.scatter(*np.asarray(points).T, s=2, c="lightgray")
        top.scatter(*codes[used].T, s=40, c="tab:blue", ec="k", label="used code")
        top.scatter(*codes[~used].T, s=40, facecolors="none", ec="tab:red", label="dead code")
        top.set(title=f"{title}\n{used.sum()} of {len(codes)} codes used", xlabel="channel 1", ylabel="channel 2")
        bottom.bar(range(len(counts)), counts, color=np.where(used, "tab:blue", "tab:red"))
        bottom.set(xlabel="code index", ylabel="vectors assigned")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def plot_with_intervals(ax, x, rows: dict, ylabel: str, xlabel: str):
    """Lines with error bars on ``ax``: ``rows = {label: [(mean, low, high), ...]}`` over ``x``."""
    for label, vals in rows.items():
        mean, low, high = (np.array(v) for v in zip(*vals))
        ax.errorbar(x, mean, yerr=[mean - low, high - mean], marker="o", capsize=3, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=8)
    return ax
