"""Pictures of notebook 02: patch grids, position similarity, RoPE angles, packing and its masks."""

from __future__ import annotations

import numpy as np


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
