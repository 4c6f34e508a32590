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


# ---- backbones (notebook 04) ----
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
