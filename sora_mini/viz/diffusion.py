"""Pictures of notebook 03: the timesteps a sampler visits, point clouds, sampling paths step by step."""

from __future__ import annotations

import numpy as np


def plot_visited_times(ax, rows: dict, xlabel: str = "t (1 = noise, 0 = data)"):
    """One row of ticks per schedule (``rows``: name -> the times it visits, in [0, 1]), noise on the left."""
    for i, times in enumerate(rows.values()):
        ax.plot(np.asarray(times, dtype=float), np.full(len(times), i), "|", ms=14, mew=1.5)
    ax.set_yticks(range(len(rows)), list(rows))
    ax.set(xlabel=xlabel, xlim=(1.03, -0.03), ylim=(-0.6, len(rows) - 0.4))
    return ax


def point_cloud_grid(clouds: dict, ref, titles: dict | None = None, size: float = 2.3, lim=(3.0, 2.5)):
    """A figure of 2D samples over the data in grey: ``clouds[(row, col)]`` -> points [n, 2]."""
    import matplotlib.pyplot as plt

    rows = list(dict.fromkeys(r for r, _ in clouds))  # in the order given
    cols = list(dict.fromkeys(c for _, c in clouds))
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(size * len(cols), size * len(rows)), squeeze=False)
    for (r, c), x in clouds.items():
        ax = axes[rows.index(r), cols.index(c)]
        ax.scatter(*np.asarray(ref).T, s=1, c="0.85")
        ax.scatter(*np.asarray(x).T, s=1)
        ax.set(xlim=(-lim[0], lim[0]), ylim=(-lim[1], lim[1]), xticks=[], yticks=[])
        ax.set_title((titles or {}).get((r, c), f"{r}, {c}"), fontsize=9)
    fig.tight_layout()
    return fig


def plot_sampling_paths(ax_plane, ax_time, path, times, ref, title: str, n_show: int = 8):
    """One sampler's paths: in the plane (start -> end dot), and the first coordinate against t.

    ``path`` [S + 1, N, 2] (x_T, then x after each step), ``times`` [S + 1] in [0, 1] (1 = noise).
    """
    p, times = np.asarray(path), np.asarray(times, dtype=float)
    ax_plane.scatter(*np.asarray(ref).T, s=1, c="0.85")
    ax_plane.plot(p[:, :, 0], p[:, :, 1], lw=0.7)
    ax_plane.scatter(*p[-1].T, s=6, c="k")
    ax_plane.set(title=title, xlim=(-3, 3), ylim=(-3, 3), xlabel="x1", ylabel="x2")
    ax_time.plot(times, p[:, :n_show, 0], "o-", ms=2, lw=0.8)
    ax_time.set(xlim=(1.02, -0.02), xlabel="t (1 = noise, 0 = data)", ylabel="x1 of x_t",
                title=f"{title}: {n_show} points, step by step")
