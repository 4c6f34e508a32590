"""Pictures of notebook 06: a packed training batch (its examples, clean frames and timesteps), the
frame-mask strategies, the size-dependent timestep shift, the loss curve (live while a run trains),
throughput, samples of the training's snapshots side by side, and adherence against training time."""

from __future__ import annotations

import itertools
import os
import time

import numpy as np

PADDING, GENERATED, GIVEN = 0, 1, 2  # the roles of a token slot in plot_packed_batch


# ----------------------------------------------------------------------------------------------
# The recipe
# ----------------------------------------------------------------------------------------------
def plot_packed_batch(batch: dict):
    """A ``VideoBatches`` batch slot by slot, three panels of [S, L]: the example each token belongs
    to (one colour each, white = padding), its role (clean given frame, generated, padding) and the
    flow time t of its example."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    seg = batch["packed"].segment_ids.cpu().numpy()  # [S, L], -1 at padding
    role = np.where(seg < 0, PADDING, np.where(batch["given"].cpu().numpy(), GIVEN, GENERATED))
    t_slot = np.ma.masked_where(seg < 0, batch["t"].cpu().numpy()[np.clip(seg, 0, None)])
    fig, axes = plt.subplots(3, 1, figsize=(11, 1.2 + 0.55 * 3 * seg.shape[0]), sharex=True)
    axes[0].imshow(np.ma.masked_less(seg, 0) % 20, aspect="auto", cmap="tab20", vmin=0, vmax=19,
                   interpolation="nearest")
    axes[0].set_title(f"{len(batch['t'])} examples in {seg.shape[0]} rows of {seg.shape[1]} slots: "
                      "one colour per example, white = padding", fontsize=9)
    axes[1].imshow(role, aspect="auto", cmap=ListedColormap(["white", "#f4a259", "#2b2d42"]), vmin=0, vmax=2,
                   interpolation="nearest")
    axes[1].set_title("orange = generated (in the loss), dark = clean given frames (frame masks)", fontsize=9)
    im = axes[2].imshow(t_slot, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    axes[2].set_title("flow time t of each token's example (0 = data, 1 = noise)", fontsize=9)
    fig.colorbar(im, ax=axes[2], fraction=0.03, pad=0.01, label="t")
    for ax in axes:
        ax.set_ylabel("row")
    axes[-1].set_xlabel("token slot")
    fig.tight_layout()
    return fig


def batch_markdown(batch: dict, batches, max_rows: int = 24, max_caption: int = 60) -> str:
    """A markdown table of a batch's examples (the first ``max_rows``): size, latent grid, tokens,
    mask strategy, shift alpha, t, and its caption (or "dropped"). ``batches``: the
    ``VideoBatches`` that drew it."""
    from sora_mini.train.video import time_shift

    v, index = batches.videos, batch["index"].tolist()
    lines = ["| # | example | T x H x W | latent grid | tokens | mask | alpha | t | caption |",
             "|---|---|---|---|---|---|---|---|---|"]
    for k, i in enumerate(index[:max_rows]):
        grid = batches.grids[i]
        caption = "*(dropped: the empty caption)*" if bool(batch["dropped"][k]) else v.captions[i][:max_caption]
        lines.append(f"| {k} | {i} | {' x '.join(map(str, v.sizes[i]))} | {' x '.join(map(str, grid))} | "
                     f"{batches.lengths[i]} | {batch['strategy'][k]} | {time_shift(grid, batches.recipe.shift):.2f} "
                     f"| {float(batch['t'][k]):.2f} | {caption} |")
    if len(index) > max_rows:
        lines.append(f"| ... | {len(index) - max_rows} more | | | | | | | |")
    return "\n".join(lines)


def plot_mask_strategies(grid: tuple[int, int, int], ratios, seed: int = 0):
    """Each frame-mask strategy drawn once on a latent grid ``(nt, nh, nw)``: one row per strategy,
    its ``nt`` latent frames left to right, dark = clean given token, orange = generated."""
    import matplotlib.pyplot as plt
    import torch
    from matplotlib.colors import ListedColormap

    from sora_mini.train.video import MASK_STRATEGIES, frame_mask

    nt, nh, nw = grid
    gen = torch.Generator().manual_seed(seed)
    probs = dict(zip(MASK_STRATEGIES, ratios.probabilities()))
    size = (1.1 + 0.225 * nt * (nw + 1), 0.75 * len(MASK_STRATEGIES))
    fig, axes = plt.subplots(len(MASK_STRATEGIES), 1, figsize=size)
    for ax, name in zip(axes, MASK_STRATEGIES):
        given = frame_mask(name, grid, gen).numpy()  # [nt, nh, nw]
        strip = np.full((nh, nt * (nw + 1) - 1), np.nan)  # a blank column between frames
        for f in range(nt):
            strip[:, f * (nw + 1): f * (nw + 1) + nw] = given[f]
        ax.imshow(np.ma.masked_invalid(strip), cmap=ListedColormap(["#f4a259", "#2b2d42"]), vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_ylabel(f"{name}\np = {probs[name]:.2f}", rotation=0, ha="right", va="center", fontsize=8)
    axes[0].set_title(f"latent frames 0..{nt - 1} of a {nt} x {nh} x {nw} grid: dark = given, orange = generated",
                      fontsize=9)
    fig.tight_layout()
    return fig


def plot_time_shift(grids, recipe, draws: int = 20000, seed: int = 0):
    """Left: the shift alpha of each latent grid ``(nt, nh, nw)`` of the training mix. Right: the
    logit-normal t of the recipe, unshifted and shifted by the smallest and largest alpha."""
    import matplotlib.pyplot as plt
    import torch

    from sora_mini.diffusion.flow import timestep_shift
    from sora_mini.train.video import time_shift

    grids = sorted(set(map(tuple, grids)), key=lambda g: (np.prod(g), g))
    alphas = [time_shift(g, recipe.shift) for g in grids]
    gen = torch.Generator().manual_seed(seed)
    t = torch.sigmoid(recipe.logit_mean + recipe.logit_std * torch.randn(draws, generator=gen))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    axes[0].bar(range(len(grids)), alphas, color="#5c7aea")
    axes[0].set_xticks(range(len(grids)), [" x ".join(map(str, g)) for g in grids], rotation=45, fontsize=7)
    axes[0].set(xlabel="latent grid (t x h x w tokens)", ylabel="shift alpha",
                title="the shift grows with size and length")
    bins = np.linspace(0, 1, 41)
    axes[1].hist(t.numpy(), bins, histtype="step", color="0.4", label="logit-normal (alpha = 1)")
    for a, c in ((min(alphas), "#2a9d8f"), (max(alphas), "#e76f51")):
        if a == 1.0:
            continue  # the unshifted curve itself
        axes[1].hist(timestep_shift(t, a).numpy(), bins, histtype="step", color=c, label=f"shifted, alpha = {a:.2f}")
    axes[1].set(xlabel="t (0 = data, 1 = noise)", ylabel="draws", title="training timesteps")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------
def plot_loss_curve(rows: list[dict], title: str = ""):
    """Loss and learning rate against step from the training log's rows (``training_log``, or
    ``staged_log`` for several stages: a dotted line where each later stage begins)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.4))
    for a, b in itertools.pairwise(rows):
        if b.get("stage", 1) != a.get("stage", 1):
            ax.axvline(a["step"], color="0.5", ls=":", lw=1)
            ax.text(a["step"], 1.0, f" stage {b['stage']}", fontsize=8, color="0.35", va="top",
                    transform=ax.get_xaxis_transform())
    if rows:
        steps = [r["step"] for r in rows]
        ax.plot(steps, [r["loss"] for r in rows], "o-", ms=3, color="#264653", label="loss")
        lr_ax = ax.twinx()
        lr_ax.plot(steps, [r["lr"] for r in rows], color="#e9c46a", lw=1, label="learning rate")
        lr_ax.set_ylabel("learning rate", color="#b08d1a")
    ax.set(xlabel="step", ylabel="flow-matching loss (generated tokens)", title=title or "training loss")
    fig.tight_layout()
    return fig


def follow_training(job, folder, every_s: float = 1.0, title: str = ""):
    """Show the loss curve of ``folder/log.jsonl`` (or of a list of stage folders, one curve:
    ``staged_log``) while ``job`` (a ``concurrent.futures.Future`` of the training) runs, redrawn
    when new rows arrive; returns ``job.result()`` (its error raised)."""
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    from sora_mini.artifacts.stages import staged_log

    folders = [folder] if isinstance(folder, str | os.PathLike) else list(folder)

    def rows() -> list[dict]:
        return staged_log(folders)

    handle, shown = None, -1
    while True:
        done = job.done()
        current = rows()
        if len(current) != shown:
            fig, png = plot_loss_curve(current, title=title), io.BytesIO()
            fig.savefig(png, format="png", dpi=100)  # an image, whatever the matplotlib backend
            plt.close(fig)
            if handle is None:
                handle = display(Image(png.getvalue()), display_id=True)
            else:
                handle.update(Image(png.getvalue()))
            shown = len(current)
        if done:
            return job.result()
        time.sleep(every_s)


def plot_throughput(rows: list[dict]):
    """Tokens per second and model FLOP/s of each log row, against step."""
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    axes[0].plot(steps, [r["tokens_per_s"] for r in rows], "o-", ms=3)
    axes[0].set(xlabel="step", ylabel="tokens / s", title="training throughput")
    axes[1].plot(steps, [r["model_flops_per_s"] / 1e9 for r in rows], "o-", ms=3, color="#e76f51")
    axes[1].set(xlabel="step", ylabel="model GFLOP / s", title="model FLOP/s (forward + backward)")
    fig.tight_layout()
    return fig


def plot_snapshot_grid(samples: dict, prompts: list[str], frames: int = 3):
    """Samples of each snapshot side by side: a row per prompt, a column per step, each cell
    ``frames`` evenly spaced frames. ``samples``: {step: uint8 [P, T, H, W, 3]} (same seeds)."""
    import matplotlib.pyplot as plt

    from sora_mini.viz.core import frame_grid

    steps = sorted(samples)
    size = (0.65 * len(steps) * frames + 1, 1.0 * len(prompts) + 0.6)
    fig, axes = plt.subplots(len(prompts), len(steps), figsize=size, squeeze=False)
    for c, step in enumerate(steps):
        for r in range(len(prompts)):
            video = samples[step][r]
            idx = np.unique(np.linspace(0, len(video) - 1, frames).round().astype(int))
            axes[r, c].imshow(frame_grid([video[idx]]), interpolation="nearest")
            axes[r, c].set_xticks([]), axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title(f"step {step}", fontsize=9)
            if c == 0:
                axes[r, c].set_ylabel(prompts[r], rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle("the same prompts and seeds at each snapshot (frames left to right)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_learning_curve(rows: list[dict], attributes=("color", "shape", "direction", "motion", "all_three")):
    """Adherence per attribute against training minutes, with 95 % Wilson intervals
    (``sora_mini.studies.prompt_suite.learning_curve`` rows); attributes absent are left out. Rows
    of several training stages get a dotted line where each later stage begins (the last snapshot
    of the stage before)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8))
    for stage in sorted({r.get("stage", 1) for r in rows})[1:]:
        start = max(r["train_seconds"] for r in rows if r.get("stage", 1) < stage) / 60
        ax.axvline(start, color="0.5", ls=":", lw=1)
        ax.text(start, 1.0, f" stage {stage}", fontsize=8, color="0.35", va="top")
    for attr in attributes:
        sub = sorted((r for r in rows if r["attribute"] == attr), key=lambda r: r["step"])
        if not sub:
            continue
        x = [r["train_seconds"] / 60 for r in sub]
        line, = ax.plot(x, [r["mean"] for r in sub], "o-", ms=3, label=f"{attr} (n = {sub[0]['n']})")
        ax.fill_between(x, [r["low"] for r in sub], [r["high"] for r in sub], color=line.get_color(), alpha=0.15)
    ax.set(xlabel="training time (minutes)", ylabel="adherence (held-out prompts)", ylim=(-0.03, 1.03),
           title="what the model learns first")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig
