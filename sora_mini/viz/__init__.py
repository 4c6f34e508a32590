"""Pictures: inline animated videos, frame strips, grids, and the package's own source in a notebook.

The notebooks' own figures live in one module each (``world``, ``compression``, ``patches``,
``diffusion``, ``backbones``, ``captions``, ``modes``), the error-bar helpers in ``sora_mini.evaluate.intervals``; every name is importable
from ``sora_mini.viz``.

Everything here returns objects (HTML, matplotlib figures, numpy arrays) rather than drawing as a
side effect, so notebooks show them and tests can check them.
"""

from sora_mini.evaluate.intervals import (
    mean_std,
    wilson_interval,
)
from sora_mini.viz.backbones import (
    FRAME_ROUTES,
    plot_ablation_losses,
    plot_frame_conditioning_routes,
    plot_uvit_skips,
)
from sora_mini.viz.captions import (
    pca_2d,
    plot_attribute_bars,
    plot_embedding_space,
    plot_guidance,
    plot_samples,
    tokens_markdown,
)
from sora_mini.viz.compression import (
    frame_dependence,
    plot_code_usage,
    plot_frame_dependence,
    plot_with_intervals,
)
from sora_mini.viz.core import (
    LISTING_METADATA,
    VideoHTML,
    frame_grid,
    listing_outputs,
    missing_listings,
    plot_frames,
    save_video,
    show_source,
    show_video,
    to_uint8,
    upscale,
)
from sora_mini.viz.diffusion import (
    plot_sampling_paths,
    plot_visited_times,
    point_cloud_grid,
)
from sora_mini.viz.modes import default_masks, plot_conditioning_masks
from sora_mini.viz.patches import (
    draw_patches,
    plot_attention_mask,
    plot_layout_shares,
    plot_packing,
    plot_patch_grids,
    plot_rope_angles,
    plot_sincos_similarity,
)
from sora_mini.viz.prompting import modes_markdown, plot_edit_tradeoff, plot_frame_steps
from sora_mini.viz.sampling import (
    plot_guidance_sweep,
    plot_step_sweep,
    plot_suite,
    suite_markdown,
)
from sora_mini.viz.training import (
    batch_markdown,
    follow_training,
    plot_learning_curve,
    plot_loss_curve,
    plot_mask_strategies,
    plot_packed_batch,
    plot_snapshot_grid,
    plot_throughput,
    plot_time_shift,
)
from sora_mini.viz.world import (
    plot_credibility,
    plot_maps,
    plot_validation,
    validation_markdown,
    validation_rates,
)

__all__ = [
    "FRAME_ROUTES",
    "LISTING_METADATA",
    "VideoHTML",
    "batch_markdown",
    "default_masks",
    "draw_patches",
    "follow_training",
    "frame_dependence",
    "frame_grid",
    "listing_outputs",
    "mean_std",
    "missing_listings",
    "modes_markdown",
    "pca_2d",
    "plot_ablation_losses",
    "plot_attention_mask",
    "plot_attribute_bars",
    "plot_code_usage",
    "plot_conditioning_masks",
    "plot_credibility",
    "plot_edit_tradeoff",
    "plot_embedding_space",
    "plot_frame_conditioning_routes",
    "plot_frame_dependence",
    "plot_frame_steps",
    "plot_frames",
    "plot_guidance",
    "plot_guidance_sweep",
    "plot_layout_shares",
    "plot_learning_curve",
    "plot_loss_curve",
    "plot_maps",
    "plot_mask_strategies",
    "plot_packed_batch",
    "plot_packing",
    "plot_patch_grids",
    "plot_rope_angles",
    "plot_samples",
    "plot_sampling_paths",
    "plot_sincos_similarity",
    "plot_snapshot_grid",
    "plot_step_sweep",
    "plot_suite",
    "plot_throughput",
    "plot_time_shift",
    "plot_uvit_skips",
    "plot_validation",
    "plot_visited_times",
    "plot_with_intervals",
    "point_cloud_grid",
    "save_video",
    "show_source",
    "show_video",
    "suite_markdown",
    "to_uint8",
    "tokens_markdown",
    "upscale",
    "validation_markdown",
    "validation_rates",
    "wilson_interval",
]
