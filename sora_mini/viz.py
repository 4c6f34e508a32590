"""Pictures: inline animated videos, frame strips, grids, and the package's own source in a notebook.

Everything here returns objects (HTML, matplotlib figures, numpy arrays) rather than drawing as a
side effect, so notebooks show them and tests can check them.
"""

from __future__ import annotations

import base64
import html
import inspect
import os

import numpy as np

from sora_mini.convert import to_uint8
from sora_mini.videoio import gif_bytes, write_video


def upscale(video: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling so that small videos are visible (no smoothing: pixels stay pixels)."""
    if scale <= 1:
        return video
    return video.repeat(scale, axis=1).repeat(scale, axis=2)


class VideoHTML:
    """An inline animated video (a GIF in an <img>); displays in Jupyter, saved with the notebook."""

    def __init__(self, html_text: str):
        self.html = html_text

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return "<VideoHTML>"


def show_video(video, fps: float = 8, scale: int = 4, titles=None, value_range=(-1.0, 1.0)) -> VideoHTML:
    """Inline animated video(s): one video or a list shown side by side, each with an optional title."""
    videos = video if isinstance(video, (list, tuple)) else [video]
    if titles is not None and not isinstance(titles, (list, tuple)):
        titles = [titles]
    cells = []
    for i, v in enumerate(videos):
        arr = upscale(to_uint8(v, value_range), scale)
        data = base64.b64encode(gif_bytes(arr, fps)).decode("ascii")
        title = html.escape(str(titles[i])) if titles is not None and i < len(titles) else ""
        cells.append(
            f'<figure style="display:inline-block;margin:4px;text-align:center">'
            f'<img src="data:image/gif;base64,{data}" style="image-rendering:pixelated"/>'
            f'<figcaption style="font-size:11px;max-width:{arr.shape[2]}px">{title}</figcaption></figure>'
        )
    return VideoHTML("<div>" + "".join(cells) + "</div>")


def frame_grid(videos, pad: int = 1, pad_value: int = 255) -> np.ndarray:
    """Videos (a list, each ``[T,H,W,3]`` of equal size) -> one image, a row per video, a column per frame."""
    arrs = [to_uint8(v) for v in (videos if isinstance(videos, (list, tuple)) else [videos])]
    t = max(a.shape[0] for a in arrs)
    h, w = arrs[0].shape[1:3]
    if any(a.shape[1:3] != (h, w) for a in arrs):
        raise ValueError("frame_grid needs videos of one size; use plot_frames per video for mixed sizes")
    grid = np.full((len(arrs) * (h + pad) - pad, t * (w + pad) - pad, 3), pad_value, np.uint8)
    for r, a in enumerate(arrs):
        for c in range(a.shape[0]):
            grid[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = a[c]
    return grid


def plot_frames(video, title: str | None = None, max_frames: int = 12, ax_width: float = 1.2, boxes=None):
    """A matplotlib figure with the frames of one video in a row (evenly spaced if there are many).

    ``boxes``: optional per-frame lists of ``(x0, y0, x1, y1)`` boxes drawn over the frames.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    arr = to_uint8(video)
    t, h, w = arr.shape[:3]
    idx = np.unique(np.linspace(0, t - 1, min(t, max_frames)).round().astype(int))
    fig, axes = plt.subplots(1, len(idx), figsize=(ax_width * len(idx) * max(1.0, w / h), ax_width * 1.25),
                             squeeze=False)
    for ax, i in zip(axes[0], idx):
        ax.imshow(arr[i], interpolation="nearest")
        ax.set_title(f"t={i}", fontsize=8)
        ax.axis("off")
        if boxes is not None:
            for (x0, y0, x1, y1) in boxes[i]:
                ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="lime", lw=1))
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


LISTING_METADATA = {"sora_mini": "listing"}  # marks a displayed listing (checked by make test)


def show_source(obj, lines: tuple[int, int] | None = None) -> None:
    """Display the package's real source of a function, class or method, syntax-highlighted.

    It displays itself (anywhere in a cell, not only as the last expression) and returns None.
    ``lines=(first, last)`` shows only those lines of it (1-based, inclusive), for a long body.
    Outside IPython the source is printed.
    """
    src = inspect.getsource(obj)
    if lines is not None:
        first, last = lines
        body = src.splitlines()
        if not 1 <= first <= last <= len(body):
            raise ValueError(f"lines={lines} is outside the {len(body)} lines of {obj.__qualname__}")
        src = "\n".join(body[first - 1:last]) + "\n"
    try:
        from IPython import get_ipython
        from IPython.display import Code, display
    except ImportError:  # IPython is not installed: plain text
        print(src)
        return
    if get_ipython() is None:
        print(src)
        return
    display(Code(src, language="python"), metadata=LISTING_METADATA)
    return


def listing_outputs(outputs) -> int:
    """How many outputs of an executed cell are listings shown by :func:`show_source`."""
    return sum(1 for o in outputs if o.get("output_type") in ("display_data", "execute_result")
               and (o.get("metadata") or {}).get("sora_mini") == "listing")


def missing_listings(cells) -> list[int]:
    """Indices of code cells that call ``show_source`` more often than they show a listing."""
    bad = []
    for i, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        calls = sum(line.count("show_source(") for line in cell.get("source", "").splitlines()
                    if not line.lstrip().startswith(("#", "def ", "from ", "import ")))
        if calls and listing_outputs(cell.get("outputs", [])) < calls:
            bad.append(i)
    return bad


def save_video(path: str | os.PathLike, video, fps: float = 8, scale: int = 1):
    """Export a video (gif, mp4 or npz by suffix), optionally upscaled for viewing."""
    return write_video(path, upscale(to_uint8(video), scale), fps=fps)


# ---- the video world and its evaluator (notebook 00) ----


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a rate ``k / n`` (95 % for ``z = 1.96``) -> (low, high).

    Unlike ``p +- z sqrt(p (1 - p) / n)`` it stays inside [0, 1] and is not empty at ``k = n``
    (Wilson 1927, "Probable inference, the law of succession, and statistical inference").
    """
    if n <= 0:
        return (float("nan"), float("nan"))
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * float(np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))) / (1 + z2 / n)
    # exact ends: all wrong -> low 0, all right -> high 1 (no round-off)
    return (0.0 if k == 0 else max(0.0, centre - half), 1.0 if k == n else min(1.0, centre + half))


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
