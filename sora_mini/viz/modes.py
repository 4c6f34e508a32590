"""Pictures of the prompting modes: each mode's mask in pixel frames and in latent frames."""

from __future__ import annotations

COLORS = {"kept": "#2166ac", "dropped": "#f4a582", "generated": "#eeeeee", "partial": "#92c5de",
          "guided": "#b2abd2"}


def default_masks(num_frames: int, temporal_factor: int, overlap: int | None = None) -> list[tuple[str, object]]:
    """(label, ConditioningMasks) of every mode, extension in both directions; ``overlap`` None:
    each mode's default (``sora_mini.modes.DEFAULT_OVERLAP``)."""
    from sora_mini.modes import DEFAULT_OVERLAP, MODES, conditioning_masks

    out = []
    for mode in MODES:
        for direction in (("forward", "backward") if mode == "extend" else ("forward",)):
            label = f"{mode} {direction}" if mode == "extend" else mode
            k = overlap or DEFAULT_OVERLAP.get(mode, 1)
            out.append((label, conditioning_masks(mode, num_frames, temporal_factor, overlap=k, direction=direction)))
    return out


def _state(masks, i: int) -> str:
    if masks.mode == "inpaint":
        return "partial"
    if masks.mode == "edit":
        return "guided"
    return "kept" if masks.kept[i] else "dropped" if masks.requested[i] else "generated"


def plot_conditioning_masks(num_frames: int = 17, temporal_factor: int = 4, *, overlap: int | None = None,
                            masks=None):
    """A panel per mode: its pixel frames (top row) and the latent frames of the causal autoencoder
    under them (bottom row, each as wide as the pixel frames it covers), coloured kept / given but
    dropped (its latent frame is only partly given) / generated; inpainting's frames are given
    outside the box, SDEdit's start from the noised input. ``masks``: (label, ConditioningMasks)
    pairs to draw instead of every mode (:func:`default_masks`)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    from sora_mini.patches.frames import pixel_frames_of

    masks = masks if masks is not None else default_masks(num_frames, temporal_factor, overlap)
    T = max(len(m.kept) for _, m in masks)
    fig, axes = plt.subplots(len(masks), 1, figsize=(0.32 * T + 2.2, 0.75 * len(masks) + 0.8), squeeze=False)
    for ax, (label, m) in zip(axes[:, 0], masks):
        for i in range(len(m.kept)):  # pixel frames
            ax.add_patch(Rectangle((i, 1), 0.95, 0.9, fc=COLORS[_state(m, i)], ec="k", lw=0.4))
        for j, given in enumerate(m.latent):  # latent frames, under their pixel frames
            px = pixel_frames_of(j, temporal_factor)
            state = "partial" if m.mode == "inpaint" else "guided" if m.mode == "edit" else \
                "kept" if given else "generated"
            ax.add_patch(Rectangle((px.start, 0), len(px) - 0.05, 0.9, fc=COLORS[state], ec="k", lw=0.4))
            ax.text(px.start + (len(px) - 0.05) / 2, 0.45, str(j), ha="center", va="center", fontsize=6)
        ax.set_xlim(-0.1, T + 0.1), ax.set_ylim(-0.1, 2.0)
        ax.set_yticks([0.45, 1.45], ["latent", "pixel"], fontsize=7)
        ax.set_xticks([i + 0.475 for i in range(T)], [str(i) for i in range(T)], fontsize=6)
        ax.tick_params(length=0)
        ax.set_title(f"{label}" + (f": {m.note}" if m.note else ""), fontsize=8, loc="left")
        for side in ("top", "right", "left", "bottom"):
            ax.spines[side].set_visible(False)
    axes[-1, 0].set_xlabel(f"pixel frame (a latent frame j >= 1 covers {temporal_factor} pixel frames; "
                           "it is given only when all of them are)", fontsize=7)
    names = {"kept": "given (kept clean)", "dropped": "given, but dropped (its latent frame is partly given)",
             "generated": "generated", "partial": "given outside the box", "guided": "from the noised input"}
    fig.legend(handles=[Patch(fc=COLORS[k], ec="k", label=v) for k, v in names.items()], loc="lower center",
               ncol=3, fontsize=7, frameon=False, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig
