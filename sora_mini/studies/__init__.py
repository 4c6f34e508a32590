"""Studies: each claim, ablation or teaching toy rerun as a measurement, with its own config and
per-scale presets (never in ``sora_mini.config``), a ``run`` and a summary.

``toy_diffusion``        notebook 03: 2D point clouds and colour-conditional images
                         (``toy_config(scale)``, ``train_denoiser``, ``get_image_denoiser``); its
                         denoisers ``ToyMLP`` / ``TinyUNet`` live in ``toy_denoisers``;
                         ``toy_sampling`` measures its samplers with their spread (Wilson
                         intervals, chamfer over seeds, path straightness).
``frame_conditioning``   notebook 04: five ways to feed clean frames, one video-prediction task
                         (``AblationConfig.from_scale(scale)``, ``load_or_run_ablation``, ``summarize``,
                         ``results_table``, ``leader`` / ``gap`` against the seed spread).
``caption_conditioning`` notebook 05: three text encoders, short vs detailed captions (DALL-E 3),
                         the null conditions x guidance scale, on a text-to-image (T = 1) model
                         (``CaptionStudyConfig.from_scale(scale)``, ``load_or_run(experiment, scale)``,
                         ``results_table``, ``guidance_curves``).

``sampling_sweeps``     notebook 07: the trained pipeline's sampler x steps against adherence and
                         time, guidance against adherence and diversity
                         (``sweep_config(scale)``, ``load_or_run_sweep(kind, pipe_folder, scale)``).
``prompting_modes``     notebook 08: every prompting mode on world inputs, each against its target
                        (``modes_config(scale)``, ``load_or_run(pipe_folder, scale)``, ``summary``,
                        ``edit_curve``: SDEdit's faithfulness against adherence).

Get-or-train helpers take ``(scale, *, run_root, device, retrain, progress, **options)`` like
``sora_mini.artifacts.get_autoencoder`` and keep each whole config in its own folder.
``compression_flicker``  notebook 01's claim: does 3D causal compression flicker less than 2D?
                         (``sora-mini study compression-flicker --scale small``).
``text_budget``          what CLIP or the captioner learns in N minutes at the small sizes
                         (``sora-mini study text-budget clip --minutes 5``).
``motion_profile``       where generated movers go wrong: the tracked object's px per frame early,
                         midway and late in the clip, model against world (notebook 07;
                         ``sora-mini study motion-profile --scale small``).

A study sits above the training and assembly layers: it may use every part of the package, and
nothing in the package imports it except the faces (notebooks, ``sora_mini.cli``).
"""
