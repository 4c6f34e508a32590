"""Pictures of notebook 00: the evaluator's validation with its intervals, coverage maps, the object floor."""

from __future__ import annotations

import numpy as np

from sora_mini.evaluate.intervals import wilson_interval


def validation_rates(report) -> list[dict]:
    """A ``ValidationReport`` -> one row per attribute: n, rates with Wilson 95 % intervals."""
    rows = []
    for a in (a for a, rate in report.accuracy("truth").items() if rate is not None):
        k, n = report.truth[a]
        km, nm = report.mismatched[a]
        kc, nc = report.chance[a]
        rows.append({"attribute": a, "n": n, "truth": k / n, "truth_ci": wilson_interval(k, n),
                     "mismatched": km / nm, "mismatched_ci": wilson_interval(km, nm),
                     "chance": kc / nc})
    return rows


def validation_markdown(rows) -> str:
    """Rows of :func:`validation_rates` -> a markdown table with the intervals written out."""
    out = ["| attribute | n | own caption [95 % CI] | mismatched caption [95 % CI] | chance |",
           "| --- | ---: | --- | --- | ---: |"]
    for r in rows:
        (lo, hi), (mlo, mhi) = r["truth_ci"], r["mismatched_ci"]
        out.append(f"| {r['attribute']} | {r['n']} | {r['truth']:.3f} [{lo:.3f}, {hi:.3f}] | "
                   f"{r['mismatched']:.3f} [{mlo:.3f}, {mhi:.3f}] | {r['chance']:.3f} |")
    return "\n".join(out)


def plot_validation(rows, title: str = ""):
    """Bars of :func:`validation_rates` (own caption, mismatched, chance) with Wilson error bars."""
    import matplotlib.pyplot as plt

    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(10, 3.2))
    for dx, key, label in ((-0.27, "truth", "own caption (ground truth)"),
                           (0.0, "mismatched", "another video's caption")):
        v = np.array([r[key] for r in rows])
        ci = np.array([r[key + "_ci"] for r in rows])
        err = np.clip([v - ci[:, 0], ci[:, 1] - v], 0, None)  # clip float round-off at 0 and 1
        ax.bar(x + dx, v, 0.27, yerr=err, capsize=2, label=label)
    ax.bar(x + 0.27, [r["chance"] for r in rows], 0.27, label="chance (perfect analyzer, mismatched)")
    ax.axhline(0.99, color="k", lw=0.8, ls="--")
    ax.set(xticks=x, ylabel="adherence (share agreeing)", ylim=(0, 1.05), title=title)
    ax.set_xticklabels([r["attribute"] for r in rows], rotation=30)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=3)
    fig.tight_layout()
    return fig


def plot_maps(images, titles, cmap="magma", vmax=1.0, suptitle=None):
    """A row of panels: RGB frames (uint8 ``[H, W, 3]``) as they are, 2D maps with a colour bar."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(images), figsize=(2.3 * len(images), 2.2), squeeze=False)
    for ax, im, title in zip(axes[0], images, titles):
        if np.ndim(im) == 3:
            ax.imshow(im, interpolation="nearest")
        else:
            fig.colorbar(ax.imshow(im, cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest"),
                         ax=ax, fraction=0.046, pad=0.04)
        ax.set_title(title, fontsize=8)
        ax.set(xticks=[], yticks=[])
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig


def plot_credibility(frames, scores, floor: dict):
    """The object floor: a frame per case over bars of its best detection's three scores.

    ``frames``: name -> uint8 ``[H, W, 3]``; ``scores``: name -> {"one-piece share", "shape
    misfit", "fit share"}; ``floor``: score name -> (threshold, "min" or "max").
    """
    import matplotlib.pyplot as plt

    names, keys = list(frames), list(floor)
    fig, axes = plt.subplots(2, len(names), figsize=(2.8 * len(names), 4.6),
                             gridspec_kw={"height_ratios": [1, 1.1]}, squeeze=False)
    for col, name in enumerate(names):
        axes[0, col].imshow(frames[name], interpolation="nearest")
        axes[0, col].set_title(name, fontsize=9)
        axes[0, col].axis("off")
        ax = axes[1, col]
        vals = [min(scores[name][k], 1.5) for k in keys]
        ok = [(v >= t) if kind == "min" else (v <= t) for v, (t, kind) in zip(vals, floor.values())]
        ax.bar(range(len(keys)), vals, color=["tab:green" if g else "tab:red" for g in ok])
        for i, v in enumerate(vals):
            ax.text(i, v + 0.03, f"{v:.2f}", ha="center", fontsize=7)
        for i, (t, kind) in enumerate(floor.values()):
            ax.hlines(t, i - 0.4, i + 0.4, color="k", ls="--", lw=1)
        ax.set(xticks=range(len(keys)), ylim=(0, 1.55), ylabel="score" if col == 0 else None)
        ax.set_xticklabels(keys, rotation=25, fontsize=7)
    fig.suptitle("dashes: the floor (one piece and fit share at least, misfit at most); "
                 "green passes", fontsize=8)
    fig.tight_layout()
    return fig
