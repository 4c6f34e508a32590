"""Pictures of notebook 04: U-ViT's long skips, the five frame-conditioning routes, ablation losses."""

from __future__ import annotations

import numpy as np


def _box(ax, x, y, text, color="#dde6f0", w=1.3, h=0.42, fontsize=8):
    """A rounded box centred at (x, y); returns (x, y, w, h) for ``_link``."""
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02", fc=color, ec="0.3", lw=0.8))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)
    return (x, y, w, h)


def _link(ax, a, b, color="0.3", ls="-", arrow=True):
    """A line from box ``a`` to box ``b`` (each (x, y, w, h)), cut at their edges."""
    (xa, ya, wa, ha), (xb, yb, wb, hb) = a, b
    d = np.array([xb - xa, yb - ya], float)
    cut = lambda w, h: min(w / 2 / abs(d[0]) if d[0] else np.inf, h / 2 / abs(d[1]) if d[1] else np.inf) + 0.03
    p0, p1 = np.array([xa, ya]) + cut(wa, ha) * d, np.array([xb, yb]) - cut(wb, hb) * d
    style = {"arrowstyle": "-|>" if arrow else "-", "color": color, "lw": 1.2, "ls": ls, "shrinkA": 0, "shrinkB": 0}
    ax.annotate("", xy=p1, xytext=p0, arrowprops=style)


def plot_uvit_skips(n_in: int, pairs):
    """U-ViT as a U: in-blocks down the left, the mid-block at the bottom, out-blocks up the right,
    the main path as arrows and each long skip ``(in_block, out_block)`` of ``pairs`` dashed red."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.75 * n_in + 1.4))
    ins = [_box(ax, i, n_in - i, f"in-block {i}") for i in range(n_in)]
    mid = _box(ax, n_in, 0, "mid-block", color="#f0e6d0")
    outs = [_box(ax, n_in + 1 + j, j + 1, f"out-block {j}") for j in range(n_in)]
    path = ins + [mid] + outs
    for k in range(len(path) - 1):
        _link(ax, path[k], path[k + 1])
    for i, j in pairs:
        _link(ax, ins[i], outs[j], color="tab:red", ls="--")
    ax.plot([], [], ls="--", color="tab:red", label="long skip: concatenate, then linear")
    ax.plot([], [], color="0.3", label="main path")
    ax.text(0, n_in + 0.4, "patch tokens + time (+ label) tokens", ha="center", fontsize=8)
    ax.text(2 * n_in, n_in + 0.4, "norm, linear -> patch values", ha="center", fontsize=8)
    ax.legend(loc="lower left", fontsize=8, frameon=False)
    ax.set(xlim=(-0.9, 2 * n_in + 0.9), ylim=(-0.5, n_in + 0.7),
           title=f"U-ViT with {2 * n_in + 1} blocks: the long skips found in a forward pass")
    ax.axis("off")
    fig.tight_layout()
    return fig


# Where the clean frames enter each way (sora_mini.models.conditioning): the box they feed, a note.
FRAME_ROUTES = {
    "in_place": ("tokens", "replace the given tokens, whose timestep is set to 0 (dashed)"),
    "token_concat": ("tokens", "replace the given tokens; every token keeps the video's timestep"),
    "channel_concat": ("embed", "[ref x mask | mask] -> zero-init linear, added to the embedding"),
    "cross_attn": ("blocks", "embedded; every block cross-attends to them"),
    "adaln": ("c", "embedded, mean-pooled, added to c (so every adaLN sees them)"),
}


def plot_frame_conditioning_routes(extras: dict | None = None):
    """One row per frame-conditioning way: the shared path (noisy tokens -> patch embedding ->
    DiT blocks modulated by c -> prediction) and, in red, where the clean frames enter
    (``FRAME_ROUTES``); ``extras`` {way: text} adds a line to a row's note (e.g. its extra layers)."""
    import matplotlib.pyplot as plt

    gap = 1.7
    fig, ax = plt.subplots(figsize=(11.5, gap * len(FRAME_ROUTES) * 0.62 + 0.4))
    for r, (way, (target, note)) in enumerate(FRAME_ROUTES.items()):
        y = -gap * r
        box = {"tokens": _box(ax, 0, y, "noisy tokens x_t"), "embed": _box(ax, 1.8, y, "patch embed\n+ positions"),
               "blocks": _box(ax, 3.6, y, "DiT blocks"), "out": _box(ax, 5.4, y, "prediction"),
               "c": _box(ax, 3.6, y - 0.62, "c = emb(t)", color="#e8e8e8", h=0.32)}
        for a, b in (("tokens", "embed"), ("embed", "blocks"), ("blocks", "out"), ("c", "blocks")):
            _link(ax, box[a], box[b])
        ax.text(-0.9, y, way, ha="right", va="center", fontsize=9, weight="bold")
        tx, ty = box[target][:2]
        clean = _box(ax, tx - 1.8, ty, "clean frames", "#f6c9c9", 1.1, 0.3, 7) if target == "c" else \
            _box(ax, tx, ty + 0.62, "clean frames", "#f6c9c9", 1.1, 0.3, 7)
        _link(ax, clean, box[target], color="tab:red")
        if way == "in_place":  # the given tokens' timestep: a per-token c
            _link(ax, box["tokens"], box["c"], color="tab:red", ls="--")
        text = note + (f"\n{extras[way]}" if extras and way in extras else "")
        ax.text(6.25, y, text, color="tab:red", ha="left", va="center", fontsize=7.5)
    ax.set(xlim=(-2.2, 11.4), ylim=(-gap * (len(FRAME_ROUTES) - 1) - 0.9, 1.0),
           title="where the clean frames enter the video DiT, per way")
    ax.axis("off")
    fig.tight_layout()
    return fig


def plot_ablation_losses(results: dict, points: int = 20):
    """Training-loss curves of every way of the frame-conditioning ablation: a moving mean over
    about 1/``points`` of training, mean ± std over seeds as a band."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for mode, runs in results["arms"].items():
        losses = np.array([r["loss"] for r in runs])  # [seeds, steps]
        w = max(1, losses.shape[1] // points)
        smooth = np.array([np.convolve(row, np.ones(w) / w, mode="valid") for row in losses])
        steps = np.arange(smooth.shape[1]) + w
        mean, std = smooth.mean(0), smooth.std(0)
        ax.plot(steps, mean, label=mode)
        ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    ax.set(xlabel="training step", ylabel=f"flow-matching loss (moving mean of {w})",
           title=f"loss curves, mean ± std over {losses.shape[0]} seeds")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
