"""Pictures of notebook 08: frame steps with a seam marked (extension, loop, long videos), the
SDEdit trade-off between faithfulness and adherence, and the modes' summary as a markdown table
(``sora_mini.studies.prompting_modes`` results)."""

from __future__ import annotations

import numpy as np


def plot_frame_steps(video: np.ndarray, marks: dict[str, list[int]] | None = None, title: str = ""):
    """Bars of the mean absolute change from each frame to the next of ``video`` uint8
    [T, H, W, 3] (``sora_mini.modes.frame_steps``), the steps in ``marks`` ({label: step
    indices}, step i: frame i to i + 1) in colour, and the median of the others dashed."""
    import matplotlib.pyplot as plt

    from sora_mini.modes import frame_steps

    steps = frame_steps(video)
    marks = marks or {}
    marked = sorted({i for at in marks.values() for i in at})
    fig, ax = plt.subplots(figsize=(max(4.0, 0.22 * len(steps) + 1.5), 2.6))
    ax.bar(np.arange(len(steps)), steps, color="0.75", label="frame step")
    for c, (label, at) in enumerate(marks.items()):
        ax.bar(at, steps[at], color=f"C{c + 1}", label=label)
    others = np.delete(steps, marked)
    if len(others):
        ax.axhline(float(np.median(others)), color="k", ls="--", lw=1, label="median of the other steps")
    ax.set(xlabel="step i (frame i to i + 1)", ylabel="mean |change| (uint8 levels)", title=title)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def plot_edit_tradeoff(curve: list[dict]):
    """Three panels of ``prompting_modes.edit_curve`` (mean ± std over scenes x seeds): faithfulness
    (PSNR to the input) against strength, adherence to the edited prompt against strength, and
    adherence against faithfulness, each point labelled by its strength (the trade-off a user
    picks a strength from)."""
    import matplotlib.pyplot as plt

    s = [p["strength"] for p in curve]
    f, f_std = [p["faithfulness"] for p in curve], [p["faithfulness_std"] for p in curve]
    a, a_std = [p["adherence"] for p in curve], [p["adherence_std"] for p in curve]
    fig, axes = plt.subplots(1, 3, figsize=(11.5, 3.1))
    axes[0].errorbar(s, f, yerr=f_std, marker="o", capsize=3)
    axes[1].errorbar(s, a, yerr=a_std, marker="o", capsize=3, color="C1", label="overall")
    axes[1].plot(s, [p["color"] for p in curve], marker="s", ls=":", color="C2", label="colour")
    axes[2].errorbar(f, a, xerr=f_std, yerr=a_std, marker="o", capsize=3, color="C3")
    for x, y, v in zip(f, a, s):
        axes[2].annotate(f"{v:g}", (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7)
    axes[0].set(xlabel="strength", ylabel="PSNR to the input (dB)", title="faithfulness vs strength")
    axes[1].set(xlabel="strength", ylabel="adherence to the edited prompt", title="adherence vs strength",
                ylim=(-0.05, 1.05))
    axes[1].legend(fontsize=7, frameon=False)
    axes[2].set(xlabel="PSNR to the input (dB; labels: strength)", ylabel="adherence (overall)",
                title="the trade-off", ylim=(-0.05, 1.05))
    fig.tight_layout()
    return fig


def modes_markdown(rows: list[dict], modes=None) -> str:
    """``prompting_modes.summary`` rows (those of ``modes`` when given) as a markdown table: the
    figure with its 95 % interval, n, the target and whether it is met."""
    rows = [r for r in rows if modes is None or r["mode"] in modes]
    if not rows:
        raise ValueError(f"no summary rows of modes {modes}")
    lines = ["| mode | measure | value (95 % interval) | n | target | met |", "|---|---|---|---|---|---|"]
    for r in rows:
        spread = "" if r["low"] == r["high"] or not np.isfinite([r["low"], r["high"]]).all() \
            else f" ({r['low']:.2f} to {r['high']:.2f})"
        met = "" if r["met"] is None else "yes" if r["met"] else "no"
        lines.append(f"| {r['mode']} | {r['measure']} | {r['value']:.2f}{spread} | {r['n']} | {r['target']} | {met} |")
    return "\n".join(lines)
