"""Pictures of notebook 07: samplers and step counts against adherence and time, the guidance scale
against adherence and diversity (``sora_mini.studies.sampling_sweeps`` results, mean ± std), and
the held-out prompt suite as one markdown table per group (``prompt_suite.summarize`` rows)."""

from __future__ import annotations


def _lines(result: dict, key: str) -> dict:
    """{value of ``key``: {field: [one value per point]}} from a sweep's rows."""
    out: dict = {}
    for row in result["rows"]:
        line = out.setdefault(row[key], {})
        for field, value in row.items():
            line.setdefault(field, []).append(value)
    return out


def plot_step_sweep(result: dict):
    """Three panels, one line per sampler (mean ± std over seeds): adherence against steps, seconds
    per video against steps, and adherence against seconds (the trade-off a user picks from)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11.5, 3.1))
    for sampler, c in _lines(result, "sampler").items():
        steps = c["num_inference_steps"]
        axes[0].errorbar(steps, c["adherence"], yerr=c["adherence_std"], marker="o", capsize=3, label=sampler)
        axes[1].errorbar(steps, c["seconds"], yerr=c["seconds_std"], marker="o", capsize=3, label=sampler)
        axes[2].errorbar(c["seconds"], c["adherence"], xerr=c["seconds_std"], yerr=c["adherence_std"], marker="o",
                         capsize=3, label=sampler)
        for x, y, n in zip(c["seconds"], c["adherence"], steps):
            axes[2].annotate(str(n), (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7)
    steps = sorted({r["num_inference_steps"] for r in result["rows"]})
    for ax in axes[:2]:
        ax.set_xscale("log", base=2)
        ax.set_xticks(steps, labels=[str(n) for n in steps])
        ax.minorticks_off()
    axes[0].set(xlabel="sampling steps", ylabel="adherence (evaluator, overall)", title="adherence vs steps",
                ylim=(-0.05, 1.05))
    axes[1].set(xlabel="sampling steps", ylabel="seconds per video (decoded)", title="time vs steps")
    axes[2].set(xlabel="seconds per video (labels: steps)", ylabel="adherence", title="adherence vs time",
                ylim=(-0.05, 1.05))
    axes[0].legend(title="sampler", fontsize=7)
    fig.tight_layout()
    return fig


def plot_guidance_sweep(result: dict, default: float | None = None):
    """Two panels against the guidance scale w (mean ± std): adherence (over seeds) and diversity
    (mean pairwise pixel distance of one prompt's samples, over prompts); ``default``: a dotted line
    at the pipeline's default w."""
    import matplotlib.pyplot as plt

    (c,) = _lines(result, "sampler").values()
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.0))
    w = c["guidance_scale"]
    axes[0].errorbar(w, c["adherence"], yerr=c["adherence_std"], marker="o", capsize=3)
    axes[1].errorbar(w, c["diversity"], yerr=c["diversity_std"], marker="o", capsize=3, color="C1")
    axes[0].set(xlabel="guidance scale w", ylabel="adherence (evaluator, overall)", title="adherence vs guidance",
                ylim=(-0.05, 1.05))
    axes[1].set(xlabel="guidance scale w", ylabel="mean |a - b| (pixels in [0, 1])", title="diversity vs guidance")
    if default is not None:
        for ax in axes:
            ax.axvline(default, color="0.6", ls=":", lw=1)
    fig.tight_layout()
    return fig


def suite_markdown(summary: list[dict], group: str) -> str:
    """One markdown table of a prompt-suite group: a row per attribute, a column per aspect ("all"
    first), each cell "mean (low-high) n" with the 95 % Wilson interval."""
    rows = [r for r in summary if r["group"] == group]
    if not rows:
        raise ValueError(f"no rows of group {group!r}; groups here: {sorted({r['group'] for r in summary})}")
    aspects = list(dict.fromkeys(r["aspect"] for r in rows))
    attrs = list(dict.fromkeys(r["attribute"] for r in rows))
    cell = {(r["attribute"], r["aspect"]): r for r in rows}
    lines = ["| attribute | " + " | ".join(aspects) + " |", "|---|" + "---|" * len(aspects)]
    for a in attrs:
        vals = [cell.get((a, s)) for s in aspects]
        lines.append(f"| {a} | " + " | ".join("-" if v is None else f"{v['mean']:.2f} ({v['low']:.2f}-{v['high']:.2f}) "
                                              f"n={v['n']}" for v in vals) + " |")
    return "\n".join(lines)


def plot_suite(summary: list[dict], aspect: str = "all"):
    """One panel per prompt-suite group: a bar per attribute (its ``aspect`` rows) with the 95 %
    Wilson interval, and n under each bar."""
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(r["group"] for r in summary))
    fig, axes = plt.subplots(1, len(groups), figsize=(3.8 * len(groups), 2.9), squeeze=False)
    for ax, group in zip(axes[0], groups):
        rows = [r for r in summary if r["group"] == group and r["aspect"] == aspect]
        x = range(len(rows))
        mean = [r["mean"] for r in rows]
        err = [[r["mean"] - r["low"] for r in rows], [r["high"] - r["mean"] for r in rows]]
        ax.bar(x, mean, yerr=err, capsize=3, color="C0", alpha=0.8)
        ax.set_xticks(list(x), labels=[f"{r['attribute']}\nn={r['n']}" for r in rows], rotation=45, fontsize=7,
                      ha="right")
        ax.set(ylim=(0, 1.05), ylabel="share correct (evaluator)", title=f"{group} ({aspect})")
    fig.tight_layout()
    return fig
