"""A scale's text-to-video training in stages (Open-Sora's multi-stage recipe): stage 1 is
:func:`sora_mini.artifacts.video.video_training`; each later stage (``cfg.train.finetune``, one
``FinetuneConfig`` or a tuple of them; :func:`finetune_training`) starts from the EMA weights of
the stage before, in a folder of its own. The folders
(``stage_dirs``), the chain a finished folder was trained through (``stage_chain``), their logs as
one run (``staged_log``) and their snapshots counted from stage 1's start (``stage_snapshots``).
``sora_mini.pipeline.train_pipeline`` runs the stages in order.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from sora_mini.artifacts.video import (
    VideoTraining,
    is_trained,
    snapshot_dirs,
    video_model_dir,
    video_training,
)
from sora_mini.config import FinetuneConfig, ScaleConfig, get_config
from sora_mini.text.joint import JointTextConfig
from sora_mini.train.video import MaskRatios


def stage_count(scale: ScaleConfig | str) -> int:
    """How many stages ``scale``'s recipe trains: 1 + ``cfg.train.finetune_stages()``."""
    return 1 + len(get_config(scale).train.finetune_stages())


def stage_config(scale: ScaleConfig | str, stage: int) -> FinetuneConfig:
    """The ``FinetuneConfig`` of stage ``stage`` (2, 3, ...) of ``scale``'s recipe."""
    stages = get_config(scale).train.finetune_stages()
    if not 2 <= stage <= len(stages) + 1:
        have = f"stages 2 to {len(stages) + 1}" if stages else "no stage after the first (cfg.train.finetune is None)"
        raise ValueError(f"scale {get_config(scale).name!r} has {have}, not stage {stage!r}")
    ft = stages[stage - 2]
    earlier = [k for k in range(2, stage) if stages[k - 2].whiten_text]
    if ft.whiten_text and earlier:
        raise ValueError(f"stage {stage} of {get_config(scale).name!r} sets whiten_text, but stage {earlier[0]} "
                         "whitened the caption tokens already: set whiten_text=False in the later stage")
    return ft


def finetune_training(scale: ScaleConfig | str = "tiny", *, run_root: str | os.PathLike = "runs",
                      stage: int = 2) -> VideoTraining:
    """Stage ``stage`` (2, 3, ...) of ``scale``'s recipe (``cfg.train.finetune``): stage 1's
    training with the stage's clips (``videos`` world scenes of the same seed, so the same
    hold-out, at the stage's durations, with its ``max_objects`` and ``motions`` when set), its
    frame-mask ratios times ``mask_scale``, a new warmup and cosine decay over ``steps`` at ``lr``,
    and (``joint_text``) a caption transformer trained with it. It starts from the EMA weights of
    the stage before (see :func:`stage_dirs`)."""
    cfg = get_config(scale)
    ft = stage_config(cfg, stage)
    base = video_training(cfg, run_root=run_root)
    scenes = {k: v for k, v in (("max_objects", ft.max_objects), ("motions", ft.motions)) if v is not None}
    data = dataclasses.replace(base.data, videos=ft.videos, frames=ft.frames, **scenes)
    masks = MaskRatios(**{k: round(v * ft.mask_scale, 6) for k, v in dataclasses.asdict(base.recipe.masks).items()})
    trainer = dataclasses.replace(base.trainer, steps=ft.steps, lr=ft.lr, warmup_steps=ft.warmup_steps,
                                  desc=f"text-to-video stage {stage} ({cfg.name})")
    joint = JointTextConfig(frozen=ft.text_encoder) if ft.joint_text else None
    return dataclasses.replace(base, data=data, recipe=dataclasses.replace(base.recipe, masks=masks), trainer=trainer,
                               text_encoder=ft.text_encoder, joint_text=joint)


def has_stage_two(scale: ScaleConfig | str, data_folder=None, trainer_overrides: dict | None = None) -> bool:
    """True when ``scale``'s recipe has later stages and this training is that recipe: world
    data and no trainer overrides (``--steps``, ``--minutes``, a user's clip folder train one stage)."""
    return stage_count(scale) > 1 and data_folder is None and not trainer_overrides


def stage_dirs(scale: ScaleConfig | str = "tiny", *, run_root: str | os.PathLike = "runs") -> list[Path]:
    """The folders of ``scale``'s training stages, in order: stage 1's, then each later stage's
    (trained from the folder before it; its name hashes that folder's name)."""
    folders = [video_model_dir(video_training(scale, run_root=run_root), run_root=run_root)]
    for stage in range(2, stage_count(scale) + 1):
        folders.append(video_model_dir(finetune_training(scale, run_root=run_root, stage=stage), run_root=run_root,
                                       init_from=folders[-1], whiten_text=stage_config(scale, stage).whiten_text))
    return folders


@dataclass(frozen=True)
class Snapshot:
    """One saved EMA transformer of a (staged) training: the steps and training seconds since the
    first stage began, the stage (1, 2, ...) and its folder."""

    step: int
    seconds: float
    stage: int
    folder: Path


def stage_snapshots(folder: str | os.PathLike) -> list[Snapshot]:
    """Every snapshot of ``folder``'s training and of the stages before it (:func:`stage_chain`), in
    order, counted from the first stage's start (seconds interpolated in :func:`staged_log`)."""
    import numpy as np

    chain = stage_chain(folder)
    log = staged_log(chain)
    steps, seconds = [0] + [r["step"] for r in log], [0.0] + [r.get("elapsed_s", 0.0) for r in log]
    out = []
    for stage, part in enumerate(chain, start=1):
        offset = max([r["step"] for r in log if r["stage"] < stage], default=0)
        for step, snap in snapshot_dirs(part):
            out.append(Snapshot(offset + step, float(np.interp(offset + step, steps, seconds)), stage, snap))
    return out


def staged_log(folders) -> list[dict]:
    """The log rows of training stages in order (``stage_dirs``), as one run: each stage's steps and
    ``elapsed_s`` counted on from the last row of the stage before, and ``stage`` (1, 2, ...) on
    every row. A stage with no log yet ends the list (a training in progress)."""
    from sora_mini.artifacts.store import training_log

    out, step0, seconds0 = [], 0, 0.0
    for stage, folder in enumerate(folders, start=1):
        try:
            log = training_log(folder)
        except FileNotFoundError:  # not started yet
            break
        out += [{**r, "step": step0 + r["step"], "stage": stage,
                 **({"elapsed_s": seconds0 + r["elapsed_s"]} if "elapsed_s" in r else {})} for r in log]
        if log:
            step0, seconds0 = step0 + log[-1]["step"], seconds0 + log[-1].get("elapsed_s", 0.0)
    return out


def stage_chain(folder: str | os.PathLike) -> list[Path]:
    """The trained folders of a staged training, first stage first, ending with ``folder``: each
    stage's ``training.json`` names the folder it started from (``result.init_from``, a sibling)."""
    from sora_mini.artifacts.store import training_info

    chain = [Path(folder)]
    while (base := training_info(chain[0]).get("result", {}).get("init_from")) is not None:
        chain.insert(0, chain[0].parent / base)
        if not is_trained(chain[0]):
            raise FileNotFoundError(f"{folder} started from {chain[0]}, which is not there (or not trained): "
                                    "keep the folders of every stage side by side")
    return chain
