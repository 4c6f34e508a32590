"""The text-to-video model by scale: its recipe from the scale preset, its latent training set,
and its training into ``runs/<scale>/text_to_video-<hash>/`` (a :class:`sora_mini.pipeline`
folder: ``pipeline.json``, ``transformer/``, ``vae/``, ``text_encoder/``, with ``training.json``,
``log.jsonl`` and the trainer's checkpoint beside them).

``video_training(scale) -> VideoTraining`` (data, recipe, model config, trainer config);
``video_model_dir(training)``; ``train_video_model(scale, *, run_root, device, progress)`` trains
(or resumes) and returns the trained parts (``sora_mini.pipeline.train_pipeline`` saves them);
``latent_videos(...)`` is the encoded training set, cached under ``runs/<scale>/video_latents-<hash>/``.

``data_folder=`` (each of them) trains on a folder of the user's clips instead of world renders
(:mod:`sora_mini.train.clips`: each clip center-cropped to a size the model takes, its caption
from the ``.txt`` beside it); the folder's path and files are part of the hash.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sora_mini.artifacts.autoencoder import autoencoder_config, autoencoder_dir, get_autoencoder
from sora_mini.artifacts.store import LOG_NAME, TRAINER_NAME, TRAINING_NAME, part_dir
from sora_mini.checkpoint import atomic_write
from sora_mini.config import ScaleConfig, get_config
from sora_mini.models.configs import VideoDiTConfig
from sora_mini.pretrained import HASH_IF_SET, config_to_dict
from sora_mini.text.joint import JointTextConfig
from sora_mini.train.clips import ClipFolderData, clip_folder_data
from sora_mini.train.loop import TrainerConfig
from sora_mini.train.video import MaskRatios, VideoDataConfig, VideoRecipe

AUTOENCODER_KIND = "3d_kl"  # notebook 01's causal 3D KL autoencoder
LATENTS_NAME = "latents.safetensors"  # in latent_dir(training), with latents.json


@dataclass(frozen=True)
class VideoTraining:
    """Everything that decides the trained text-to-video model (its folder hashes all of it)."""

    scale: str
    data: VideoDataConfig | ClipFolderData  # world renders, or a folder of the user's clips
    recipe: VideoRecipe
    model: VideoDiTConfig
    trainer: TrainerConfig
    autoencoder: str  # the autoencoder's folder name (its config and training, hashed)
    # frozen all-MiniLM-L6-v2 (nothing to train, 384-wide tokens): "minilm", or "minilm-compass" (its
    # horizontal direction words read as compass words first: sora_mini.text.frozen.FROZEN_ENCODERS)
    text_encoder: str = "minilm"
    # and a caption transformer trained with the model, its tokens after MiniLM's (None: MiniLM alone)
    joint_text: JointTextConfig | None = field(default=None, metadata=HASH_IF_SET)


@dataclass(frozen=True)
class LatentSource:
    """What encodes the training set (the cache of latents is keyed by it and the data)."""

    autoencoder: str
    text_encoder: str


def video_training(scale: ScaleConfig | str = "tiny", *, run_root: str | os.PathLike = "runs",
                   data_folder: str | os.PathLike | None = None, **trainer_overrides) -> VideoTraining:
    """The recipe of ``scale`` from its preset (``cfg.world`` sizes and durations, ``cfg.patches``,
    ``cfg.model``, ``cfg.train``); ``trainer_overrides`` replace fields of the TrainerConfig;
    ``data_folder``: train on that folder's clips instead of ``cfg.train.videos`` world renders."""
    cfg = get_config(scale)
    t, m = cfg.train, cfg.model
    if data_folder is None:
        data = VideoDataConfig(videos=t.videos, sizes=cfg.world.sizes, frames=cfg.world.frames,
                               max_objects=cfg.world.max_objects)
    else:
        ae = autoencoder_config(cfg, AUTOENCODER_KIND)
        data = clip_folder_data(data_folder, spatial_multiple=ae.spatial_factor * max(cfg.patches.patch_size[1:]),
                                temporal_factor=ae.temporal_factor)
    recipe = VideoRecipe(pack_length=cfg.patches.pack_length, tokens_per_step=t.tokens_per_step,
                         caption_dropout=t.caption_dropout, masks=MaskRatios())
    model = VideoDiTConfig(in_channels=cfg.compression.latent_channels, patch_size=cfg.patches.patch_size,
                           hidden_size=m.hidden_size, depth=m.depth, num_heads=m.num_heads, mlp_ratio=m.mlp_ratio,
                           attention=m.attention, frame_cond="in_place", text_cond=m.text_cond, text_dim=m.text_dim)
    trainer = TrainerConfig(steps=t.steps, lr=t.lr, weight_decay=0.0, warmup_steps=t.warmup_steps,
                            precision="bf16" if t.bf16 else "fp32", ema_decay=t.ema_decay, log_every=t.log_every,
                            ckpt_every=t.ckpt_every, desc=f"text-to-video ({cfg.name})")
    trainer = dataclasses.replace(trainer, **trainer_overrides) if trainer_overrides else trainer
    ae = autoencoder_dir(cfg, kind=AUTOENCODER_KIND, run_root=run_root).name
    return VideoTraining(cfg.name, data, recipe, model, trainer, ae, text_encoder=t.text_encoder)


@dataclass(frozen=True)
class InitFrom:
    """Where a stage starts: the trained text-to-video folder of the stage before (its name), and
    whether its caption tokens are whitened first (``TextConditioner.set_whitening``)."""

    base: str
    whiten_text: bool = False


def video_model_dir(training: VideoTraining, *, run_root: str | os.PathLike = "runs",
                    init_from: str | os.PathLike | None = None, whiten_text: bool = False) -> Path:
    """``<run_root>/<scale>/text_to_video-<hash of the whole training>`` (and of the folder it
    starts from and how, for a later stage)."""
    if init_from is None:
        return part_dir(run_root, training.scale, "text_to_video", training)
    return part_dir(run_root, training.scale, "text_to_video", training,
                    InitFrom(Path(init_from).name, whiten_text))


def latent_dir(training: VideoTraining, *, run_root: str | os.PathLike = "runs") -> Path:
    """``<run_root>/<scale>/video_latents-<hash of the data and its encoders>``: the latent cache."""
    return part_dir(run_root, training.scale, "video_latents", training.data,
                    LatentSource(training.autoencoder, training.text_encoder))


def latent_videos(training: VideoTraining, autoencoder, text_encoder, *, run_root="runs", progress=True):
    """The encoded training set of ``training`` (world renders or its ``data_folder``'s clips, as
    ``training.data`` says), loaded from its cache or made (and cached)."""
    from safetensors.torch import load_file, save_file

    from sora_mini.train.video import LatentVideos, encode_videos

    folder = latent_dir(training, run_root=run_root)
    tensors_path, meta_path = folder / LATENTS_NAME, folder / "latents.json"
    if tensors_path.is_file() and meta_path.is_file():
        return LatentVideos.from_state(load_file(str(tensors_path)), json.loads(meta_path.read_text()))
    videos = encode_videos(training.data, autoencoder, text_encoder, progress=progress)
    tensors, meta = videos.state()
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(tensors_path, lambda tmp: save_file(tensors, str(tmp)))
    atomic_write(meta_path, lambda tmp: Path(tmp).write_text(json.dumps(meta)))
    return videos


@dataclass
class TrainedVideoModel:
    """What :func:`train_video_model` returns: the folder, the recipe as a dict, and the trained
    parts (EMA transformer, autoencoder, text encoder) or None when the folder was already done
    (and on every rank but 0 of a DDP run)."""

    folder: Path
    training: dict
    parts: tuple | None


SNAPSHOTS = "snapshots"


def snapshot_callback(folder: Path, every: int):
    """A Trainer callback that saves the EMA transformer as ``snapshots/step-<n>/`` every ``every`` steps."""

    def save(trainer, step, metrics):
        if step % every == 0 and trainer.rank == 0:
            trainer.eval_model().save_pretrained(Path(folder) / SNAPSHOTS / f"step-{step:06d}")

    return save


def load_snapshot(pipe, folder: str | os.PathLike, *, device="cpu"):
    """``pipe`` with the snapshot in ``folder`` as its transformer, in place, and the text encoder
    it was trained with: the caption transformer of that step when one was trained with the model
    (``folder/text_encoder/``), else its stage's frozen encoder (``<stage>/text_encoder/``, two
    folders up: stage 1's MiniLM for a stage-1 snapshot of a two-stage pipeline)."""
    from sora_mini.models.video_dit import VideoDiT
    from sora_mini.pretrained import load_state_strict, read_config_file, read_weights
    from sora_mini.text.encoders import tokenizer_of
    from sora_mini.text.frozen import FROZEN_ENCODERS
    from sora_mini.text.joint import JointTextEncoder
    from sora_mini.train.joint_text import TEXT_ENCODER_DIR

    folder = Path(folder)
    pipe.transformer = VideoDiT.from_pretrained(folder, device=device).eval()
    frozen = getattr(pipe.text_encoder, "frozen", pipe.text_encoder)  # reused when it is the one asked for

    def frozen_of(cls):
        return frozen if type(frozen) is cls else cls().to(device)

    words = folder / TEXT_ENCODER_DIR
    if (words / "config.json").is_file():
        config = JointTextEncoder.config_from_pretrained(words)
        text = JointTextEncoder(config, frozen=frozen_of(FROZEN_ENCODERS[config.frozen]), tokenizer=tokenizer_of(words))
        load_state_strict(text, read_weights(words), str(words))
        pipe.text_encoder = text.to(device).eval()
        return pipe
    stage = folder.parent.parent / TEXT_ENCODER_DIR
    by_class = {cls.__name__: cls for cls in FROZEN_ENCODERS.values()}
    name = read_config_file(stage)["class"] if (stage / "config.json").is_file() else type(frozen).__name__
    if name not in by_class:
        raise ValueError(f"{stage} holds a {name}, not a frozen encoder ({', '.join(by_class)}): the "
                         "stage's caption transformer is in each snapshot's text_encoder/ folder")
    pipe.text_encoder = frozen_of(by_class[name])
    return pipe


def snapshot_dirs(folder: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, folder) of every saved snapshot of a training, in step order."""
    root = Path(folder) / SNAPSHOTS
    found = [(int(p.name.split("-")[1]), p) for p in root.glob("step-*") if (p / "model.safetensors").is_file()]
    return sorted(found)


def is_trained(folder: str | os.PathLike) -> bool:
    """True when ``folder`` holds a finished text-to-video training (its ``training.json``)."""
    return (Path(folder) / TRAINING_NAME).is_file()


def train_video_model(scale: ScaleConfig | str = "tiny", *, run_root: str | os.PathLike = "runs",
                      device="cpu", progress: bool = True, retrain: bool = False,
                      data_folder: str | os.PathLike | None = None, snapshot_every: int | None = None,
                      stage: int = 1, **trainer_overrides) -> TrainedVideoModel:
    """Train the text-to-video model of ``scale`` in its folder, resuming from the trainer's
    checkpoint there; trains the autoencoder first when it is missing (notebook 01's). The caller
    saves the parts and then the record ``training.json`` (``sora_mini.pipeline.train_pipeline``
    does both), which marks the folder finished. ``data_folder``: see :func:`video_training`.
    ``snapshot_every``: save the EMA transformer every n steps into ``snapshots/`` (default the
    scale's ``ckpt_every``; 0: never), for the learning curve of notebook 06.

    Under torchrun, every process runs this (DDP, :mod:`sora_mini.train.distributed`; ``device``
    "cpu" or "cuda", each rank on ``cuda:LOCAL_RANK``): rank 0 trains the autoencoder and encodes
    the latent cache first, the others then load them; each rank trains on its part of every
    step's batch; rank 0 alone writes the log, checkpoints and snapshots, and only its result
    holds the parts (the others' ``parts`` is None, as for a finished folder).

    ``stage=2`` (3, ...): a later stage of the preset (:func:`finetune_training`), from the EMA
    weights of the stage before's finished folder (a ``FileNotFoundError`` when it is not
    trained); ``sora_mini.pipeline.train_pipeline`` runs the stages in order."""
    from sora_mini.artifacts.stages import (
        finetune_training,
        has_stage_two,
        stage_config,
        stage_count,
        stage_dirs,
    )
    from sora_mini.train.distributed import barrier, process_group

    count = stage_count(scale)
    if isinstance(stage, bool) or stage not in range(1, count + 1):
        raise ValueError(f"stage must be one of 1 to {count} (the stages of {get_config(scale).name!r}'s recipe), "
                         f"got {stage!r}")
    if stage > 1 and not has_stage_two(scale, data_folder, trainer_overrides):
        raise ValueError(f"stage {stage} is the preset's recipe: world data, no trainer overrides, and a scale "
                         "whose cfg.train.finetune is set")
    with process_group(device) as info:
        init_from, whiten = None, False
        if stage == 1:
            training = video_training(scale, run_root=run_root, data_folder=data_folder, **trainer_overrides)
            folder = video_model_dir(training, run_root=run_root)
        else:
            training = finetune_training(scale, run_root=run_root, stage=stage)
            init_from, folder = stage_dirs(scale, run_root=run_root)[stage - 2:stage]
            whiten = stage_config(scale, stage).whiten_text
            if not is_trained(init_from):
                raise FileNotFoundError(f"stage {stage} starts from stage {stage - 1}'s model in {init_from}, which "
                                        "is not trained: train the stages in order (train_pipeline runs them all)")
        if retrain and info.rank == 0:
            from sora_mini.artifacts.store import clear_part

            clear_part(folder)
        barrier()  # no rank looks at the folder before rank 0 has cleared it
        if is_trained(folder):
            return TrainedVideoModel(folder, config_to_dict(training), None)
        return _train_in(folder, training, run_root=run_root, device=info.device, progress=progress,
                         snapshot_every=snapshot_every, init_from=init_from, whiten_text=whiten)


def initial_weights(model, init_from: Path) -> None:
    """Load the EMA transformer of the trained folder ``init_from`` into ``model`` (same config, or
    a ``ValueError`` naming the fields that differ)."""
    from sora_mini.models.video_dit import VideoDiT

    base = VideoDiT.from_pretrained(Path(init_from) / "transformer")
    if base.config != model.config:
        differ = [f.name for f in dataclasses.fields(model.config)
                  if getattr(base.config, f.name) != getattr(model.config, f.name)]
        raise ValueError(f"the model in {init_from} has another config ({', '.join(differ)} differ): "
                         "a later stage must keep the model's shape")
    model.prepare_state(base.state_dict())  # an earlier stage's caption whitening comes along
    model.load_state_dict(base.state_dict())


def training_model(training: VideoTraining, text_encoder=None):
    """The module a stage trains (seeded by the recipe): the ``VideoDiT``, or with ``joint_text``
    a :class:`sora_mini.train.joint_text.JointTextDiT` of the DiT and a ``JointTextEncoder``
    over ``text_encoder`` (the frozen MiniLM; loaded when None)."""
    from sora_mini.models.video_dit import VideoDiT

    torch.manual_seed(training.recipe.seed)
    dit = VideoDiT(training.model)
    if training.joint_text is None:
        return dit
    from sora_mini.text.joint import JointTextEncoder
    from sora_mini.train.joint_text import JointTextDiT

    return JointTextDiT(dit, JointTextEncoder(training.joint_text, frozen=text_encoder))


def dit_of(model):
    """The ``VideoDiT`` of what :func:`training_model` built."""
    return getattr(model, "dit", model)


def _train_in(folder: Path, training: VideoTraining, *, run_root, device, progress: bool,
              snapshot_every: int | None, init_from: Path | None = None,
              whiten_text: bool = False) -> TrainedVideoModel:
    """:func:`train_video_model`'s training in this process (one rank of several, or the only one)."""
    from sora_mini.text.frozen import frozen_encoder
    from sora_mini.train.distributed import rank_zero_first, wrap_ddp
    from sora_mini.train.loop import Trainer
    from sora_mini.train.video import (
        VideoBatches,
        flops_per_token,
        flow_objective,
        packed_flow_loss,
    )

    autoencoder = rank_zero_first(lambda: get_autoencoder(training.scale, kind=AUTOENCODER_KIND, run_root=run_root,
                                                          device=device, progress=progress))
    text_encoder = frozen_encoder(training.text_encoder).to(device)
    t0 = time.perf_counter()
    videos = rank_zero_first(lambda: latent_videos(training, autoencoder, text_encoder, run_root=run_root,
                                                   progress=progress))
    data_seconds = time.perf_counter() - t0
    model = training_model(training, text_encoder)
    dit = dit_of(model)
    if init_from is not None:  # a later stage; a checkpoint in the folder (a resume) replaces these
        initial_weights(dit, init_from)
    if whiten_text:  # from the stage's own captions, before the EMA copies the model
        from sora_mini.text.embedding import whitening

        mean, matrix = whitening(videos.text, videos.text_mask)
        dit.text_conditioner.set_whitening(mean, matrix)
        if dit is not model:  # the trained caption tokens start at the origin of the whitened space
            with torch.no_grad():
                model.text.proj.bias.copy_(mean)
    batches = VideoBatches(videos, training.recipe, training.model.patch_size)
    folder.mkdir(parents=True, exist_ok=True)
    flops = flops_per_token(dit, training.recipe.pack_length)
    every = get_config(training.scale).train.ckpt_every if snapshot_every is None else snapshot_every
    run_config = dataclasses.replace(training.trainer, progress=progress)  # the bar is not part of the hash
    loss_fn = packed_flow_loss(flow_objective(training.recipe), training.recipe.motion_weight)
    trainer = Trainer(wrap_ddp(model, device), loss_fn, batches, run_config, device=device, ckpt_path=folder / TRAINER_NAME, log_path=folder / LOG_NAME,
                      model_config=config_to_dict(training.model), flops_per_token=flops,
                      callbacks=[snapshot_callback(folder, every)] if every else ())
    t0 = time.perf_counter()
    history = trainer.fit()
    seconds = time.perf_counter() - t0
    info = {"scale": training.scale, "steps": trainer.step, "train_seconds": round(seconds, 1),
            "data_seconds": round(data_seconds, 1), "videos": len(videos), "device": str(device),
            "precision": trainer.precision, "processes": trainer.world_size, "flops_per_token": flops,
            "final": history[-1] if history else {},
            "init_from": None if init_from is None else Path(init_from).name, "whiten_text": whiten_text}
    parts = None
    if trainer.rank == 0:
        trained = trainer.eval_model()
        parts = (dit_of(trained), autoencoder, trained.text if dit is not model else text_encoder)
    return TrainedVideoModel(folder, {**config_to_dict(training), "result": info}, parts)
