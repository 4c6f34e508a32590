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


# ---- compression ----
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


# ---- spacetime patches (notebook 02) ----
def mean_std(values, scale: float = 1.0, digits: int = 1) -> str:
    """``"mean ± std"`` of repeated figures (seeds, draws, timing repeats), each times ``scale``."""
    arr = np.asarray(values, dtype=float) * scale
    std = arr.std(ddof=1) if arr.size > 1 else 0.0
    return f"{arr.mean():.{digits}f} ± {std:.{digits}f}"


def draw_patches(ax, frame, grid_hw, first_index: int, keep=None):
    """One pixel frame with its patch grid and each token's index; tokens not in ``keep`` greyed out."""
    import matplotlib.pyplot as plt

    ax.imshow(frame, interpolation="nearest")
    nh, nw = grid_hw
    cell_h, cell_w = frame.shape[0] / nh, frame.shape[1] / nw
    for y in range(nh):
        for x in range(nw):
            i = first_index + y * nw + x
            dropped = keep is not None and i not in keep
            ax.add_patch(plt.Rectangle((x * cell_w - .5, y * cell_h - .5), cell_w, cell_h, fill=dropped,
                                       fc=(.5, .5, .5, .85), ec="white", lw=.6))
            ax.text((x + .5) * cell_w - .5, (y + .5) * cell_h - .5, str(i), ha="center", va="center",
                    fontsize=5, color="yellow")
    ax.set_xticks([]), ax.set_yticks([])


def plot_patch_grids(videos, grids, pixel_frame, keeps=None, last_only: bool = False):
    """A row per video, a panel per token frame: the patch grid over the pixel frame it covers.

    ``grids``: (nt, nh, nw) per video; ``pixel_frame(j)``: the pixel frame shown for token frame j;
    ``keeps``: kept token indices per video (greyed out otherwise); ``last_only``: one panel each.
    """
    import matplotlib.pyplot as plt

    cols = 1 if last_only else max(g[0] for g in grids)
    rows, cols = (1, len(videos)) if last_only else (len(videos), cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 1.7 * rows), squeeze=False)
    for i, (video, (nt, nh, nw)) in enumerate(zip(videos, grids)):
        frames = [nt - 1] if last_only else range(cols)
        for col, j in enumerate(frames):
            ax = axes[0, i] if last_only else axes[i, col]
            if j >= nt:
                ax.axis("off")
                continue
            keep = None if keeps is None else set(keeps[i].tolist())
            draw_patches(ax, video[pixel_frame(j)], (nh, nw), j * nh * nw, keep)
            title = f"kept {len(keep)}/{nt * nh * nw} (grey = dropped)" if keep is not None else f"token frame t={j}"
            ax.set_title(f"{video.shape[1]}x{video.shape[2]}, {title}", fontsize=7)
    fig.tight_layout()
    return fig


def plot_sincos_similarity(maps, titles, train_width: int, unseen_width: int):
    """Left: the position fed to sin-cos along x, absolute vs scaled; right: cosine similarity maps.

    ``maps``: [h, w] similarity to the centre token per panel (one colour scale for all).
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 1 + len(maps), figsize=(4 + 3.2 * len(maps), 2.8),
                             gridspec_kw={"width_ratios": [1.2] + [1] * len(maps)})
    cols = np.arange(unseen_width)
    axes[0].axhspan(0, train_width - 1, color="0.9", label="positions seen in training")
    axes[0].plot(cols[:train_width], cols[:train_width], "o-", label=f"training size ({train_width} wide)")
    axes[0].plot(cols, cols, ".--", label=f"absolute, {unseen_width} wide")
    axes[0].plot(cols, cols * train_width / unseen_width, ".-", label=f"scaled, {unseen_width} wide")
    axes[0].set_xlabel("patch column x"), axes[0].set_ylabel("position fed to sin-cos")
    axes[0].legend(fontsize=7)
    lo = min(float(m.min()) for m in maps)
    for ax, title, m in zip(axes[1:], titles, maps):
        im = ax.imshow(m, cmap="viridis", vmin=lo, vmax=1)
        ax.set_title(title, fontsize=9), ax.set_xlabel("x (patches)"), ax.set_ylabel("y (patches)")
    fig.colorbar(im, ax=axes[1:], label="cosine similarity to the centre token")
    return fig


def plot_rope_angles(cos_by_axis, pairs, offsets, scores):
    """Left: cos(angle) of every RoPE channel pair as a token moves along t, y or x (one panel each);
    right: the attention score of a query and key ``offset`` apart, one curve per start position.

    ``cos_by_axis``: three [positions, pairs] arrays; ``pairs``: (n_t, n_y, n_x) pairs per axis;
    ``scores``: {start label: [len(offsets)] scores}.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(15, 2.9), gridspec_kw={"width_ratios": [1, 1, 1, 1.4]})
    bounds = np.cumsum(pairs)[:-1] - 0.5
    for ax, axis, c in zip(axes, "tyx", cos_by_axis):
        im = ax.imshow(np.asarray(c).T, aspect="auto", cmap="coolwarm", vmin=-1, vmax=1, interpolation="nearest")
        for b in bounds:
            ax.axhline(b, color="k", lw=.8)
        ax.set_yticks([(a + b) / 2 for a, b in zip([-0.5, *bounds], [*bounds, sum(pairs) - 0.5])],
                      [f"{n} pairs: {name}" for n, name in zip(pairs, "tyx")], fontsize=7)
        ax.set_xlabel(f"position along {axis} (patches)"), ax.set_title(f"moving along {axis}", fontsize=9)
    fig.colorbar(im, ax=axes[:3], label="cos(rotation angle)")
    for (label, s), style in zip(scores.items(), ["-", "--", ":"]):
        axes[3].plot(offsets, s, style, lw=2, label=label)
    axes[3].set_xlabel("offset of the key from the query along x (patches)")
    axes[3].set_ylabel("attention score q·k")
    axes[3].legend(fontsize=7), axes[3].set_title("the score depends only on the offset", fontsize=9)
    return fig


def plot_packing(packs):
    """Token slots of packed batches side by side: one colour per example, white = padding.

    ``packs``: {title: PackedBatch}.
    """
    import matplotlib.pyplot as plt

    widths = [pb.max_len * (1.0 if i == 0 else 0.6) for i, pb in enumerate(packs.values())]
    fig, axes = plt.subplots(1, len(packs), figsize=(12, 3.6), squeeze=False,
                             gridspec_kw={"width_ratios": widths})
    for ax, (title, pb) in zip(axes[0], packs.items()):
        ids = np.ma.masked_less(pb.segment_ids.cpu().numpy(), 0) % 20  # padding is masked: white
        ax.imshow(ids, aspect="auto", cmap="tab20", interpolation="nearest", vmin=0, vmax=19)
        ax.set_title(f"{title}: {list(pb.tokens.shape[:2])}, {100 * pb.real_share():.0f}% real token slots",
                     fontsize=9)
        ax.set_xlabel("token slot"), ax.set_ylabel("sequence")
    fig.suptitle("one colour per example (colours repeat after 20); white = padding", fontsize=9)
    fig.tight_layout()
    return fig


def plot_attention_mask(mask, segment_ids):
    """One packed row's [L, L] attention mask: black = attend; and the same coloured by example."""
    import matplotlib.pyplot as plt

    mask, seg = np.asarray(mask, dtype=bool), np.asarray(segment_ids)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    axes[0].imshow(mask, cmap="gray_r", interpolation="nearest")
    axes[0].set_title("attention mask of sequence 0 (black = attend)", fontsize=9)
    ids = np.broadcast_to(np.ma.masked_less(seg, 0) % 20, mask.shape)
    axes[1].imshow(np.ma.masked_where(~mask | (seg[None] < 0), ids), cmap="tab20", vmin=0, vmax=19,
                   interpolation="nearest")
    axes[1].set_title("real pairs, coloured by example (padding blank)", fontsize=9)
    for ax in axes:
        ax.set_xlabel("key slot"), ax.set_ylabel("query slot")
    fig.tight_layout()
    return fig


def plot_layout_shares(names, token_shares, pair_shares):
    """Two bars per layout, mean ± std over draws: real-token share of the slots and real-pair share
    of the dense attention. Shares are per draw, in [0, 1]: ``token_shares[name]`` a list."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.55 * len(names)))
    y = np.arange(len(names))
    for offset, shares, label, colour in [(-0.2, token_shares, "real tokens / token slots", "#48c"),
                                          (0.2, pair_shares, "real pairs / attention pairs (dense mask)", "#c84")]:
        vals = np.array([shares[n] for n in names], dtype=float) * 100
        err = vals.std(1, ddof=1) if vals.shape[1] > 1 else None
        ax.barh(y + offset, vals.mean(1), height=0.38, xerr=err, capsize=3, color=colour, label=label)
    ax.set_yticks(y, names), ax.invert_yaxis(), ax.set_xlim(0, 100)
    ax.set_xlabel("share spent on real work (%)"), ax.legend(fontsize=7, loc="lower right")
    return fig


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


# ---- diffusion: sampling schedules, paths and their spread ----
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
