"""Pictures of notebook 05: tokens of a caption, the contrastive embedding space, samples per arm,
adherence per attribute (mean ± std over seeds), and guidance scale against adherence and diversity."""

from __future__ import annotations

import numpy as np


def tokens_markdown(tokenizer, prompt: str) -> str:
    """A markdown table of ``prompt`` token by token: position, id, token, the text it covers
    (``[UNK]`` rows show the word the vocabulary lacks)."""
    enc = tokenizer.backend_tokenizer.encode(prompt)
    lines = ["| # | id | token | text |", "|---|---|---|---|"]
    for i, (tid, tok, (a, b)) in enumerate(zip(enc.ids, enc.tokens, enc.offsets)):
        lines.append(f"| {i} | {tid} | `{tok}` | {prompt[a:b] or '-'} |")
    return "\n".join(lines)


def pca_2d(*arrays: np.ndarray) -> list[np.ndarray]:
    """Project each [N_i, E] array onto the top two principal axes of all of them together."""
    x = np.concatenate(arrays)
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return [(a - mean) @ vt[:2].T for a in arrays]


def plot_embedding_space(text: np.ndarray, video: np.ndarray, labels, title: str = ""):
    """CLIP's joint space in 2D (one PCA of both): captions as circles, videos as crosses, coloured
    by ``labels`` (e.g. the first object's colour), a grey line from each caption to its video."""
    import matplotlib.pyplot as plt

    t2, v2 = pca_2d(np.asarray(text, float), np.asarray(video, float))
    from sora_mini.world.spec import PALETTE

    names = sorted(set(labels))
    cmap = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for (a, b) in zip(t2, v2):
        ax.plot([a[0], b[0]], [a[1], b[1]], color="0.85", lw=0.6, zorder=0)
    for k, name in enumerate(names):
        idx = [i for i, lab in enumerate(labels) if lab == name]
        color = np.array(PALETTE[name]) / 255 if name in PALETTE else cmap(k)  # a colour shows as itself
        ax.scatter(t2[idx, 0], t2[idx, 1], marker="o", s=22, color=color, edgecolor="0.2", lw=0.4, label=f"{name}")
        ax.scatter(v2[idx, 0], v2[idx, 1], marker="x", s=22, color=color)
    ax.set(xlabel="PC 1", ylabel="PC 2", title=title or "caption (o) and video (x) embeddings")
    ax.legend(fontsize=7, ncol=2, loc="best")
    fig.tight_layout()
    return fig


def plot_attribute_bars(rows: list[dict], attributes=None, title: str = ""):
    """Grouped bars: per attribute (and the overall adherence), one bar per arm, mean ± std over
    seeds (``sora_mini.studies.caption_conditioning.summarize`` rows); attributes no prompt
    states (None) are left out."""
    import matplotlib.pyplot as plt

    attrs = ["adherence"] + list(attributes or [a for a in rows[0] if not a.endswith("_std") and a not in
                                                ("arm", "seeds", "adherence", "train_s")])
    attrs = [a for a in attrs if any(r.get(a) is not None for r in rows)]
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(attrs), 3.2))
    for k, r in enumerate(rows):
        x = np.arange(len(attrs)) + (k - (len(rows) - 1) / 2) * width
        mean = [r[a] if r.get(a) is not None else np.nan for a in attrs]
        std = [r[a + "_std"] if r.get(a) is not None else 0.0 for a in attrs]
        ax.bar(x, mean, width, yerr=std, capsize=2, label=r["arm"])
    ax.set_xticks(np.arange(len(attrs)), attrs, rotation=20)
    ax.set(ylim=(0, 1.05), ylabel="adherence (share right)", title=title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_guidance(curves: dict):
    """Two panels against the guidance scale, one line per null kind (mean ± std over seeds):
    adherence and diversity (mean pairwise pixel distance of samples of one prompt)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.0))
    for kind, c in curves.items():
        for ax, key in zip(axes, ("adherence", "diversity")):
            ax.errorbar(c["scale"], c[key], yerr=c[key + "_std"], marker="o", capsize=3, label=kind)
    axes[0].set(xlabel="guidance scale w", ylabel="adherence", title="adherence vs guidance")
    axes[1].set(xlabel="guidance scale w", ylabel="mean |a - b| (pixels in [0, 1])", title="diversity vs guidance")
    axes[0].legend(title="null", fontsize=7)
    fig.tight_layout()
    return fig


def plot_samples(samples: dict, prompts: list[str], max_images: int = 6):
    """A row of generated images per arm (``samples``: {arm: list of uint8 [H, W, 3]}), the
    prompts as column titles (cut to 40 characters)."""
    import matplotlib.pyplot as plt

    n = min(max_images, min(len(v) for v in samples.values()))
    fig, axes = plt.subplots(len(samples), n, figsize=(1.9 * n, 1.9 * len(samples)), squeeze=False)
    for i, (arm, images) in enumerate(samples.items()):
        for j in range(n):
            ax = axes[i, j]
            ax.imshow(np.asarray(images[j], np.uint8), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(prompts[j][:40] + ("..." if len(prompts[j]) > 40 else ""), fontsize=6)
            if j == 0:
                ax.set_ylabel(arm, fontsize=8)
    fig.tight_layout()
    return fig
