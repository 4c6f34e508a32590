"""The text-to-video model's training set: which world scenes it shows (with a compositional
hold-out), at which sizes and durations, with which captions, and its encoding into latents and
caption embeddings once (:class:`LatentVideos`, cached by ``sora_mini.artifacts.video``).

Captions are those of the world's grammar: detailed ones (every attribute, the re-captioned
training set of DALL-E 3 / Sora) for ``detailed_share`` of the videos, short ones for the rest.
Compositional hold-out: :func:`holdout_combos` names (colour, shape, motion) triples no training
video shows on any object, so generating them measures composition, not recall.

The recipe that trains on it (batches, masks, timesteps, the loss) is :mod:`sora_mini.train.video`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from sora_mini.pretrained import HASH_IF_SET
from sora_mini.world import (
    COLORS,
    DIRECTIONS,
    MOTIONS,
    SHAPES,
    check_motions,
    render,
    sample_spec,
    spec_seed,
)

DIRECTED = ("move", "turn")  # motions whose direction is part of the combination


@dataclass(frozen=True)
class VideoDataConfig:
    """The training set: ``videos`` world clips drawn from the mix of sizes and durations."""

    videos: int = 512
    sizes: tuple[tuple[int, int], ...] = ((32, 32), (32, 48), (48, 32))
    frames: tuple[int, ...] = (1, 5, 9)
    max_objects: int = 3
    detailed_share: float = 0.8  # detailed captions (re-captioned); the rest short ones
    holdout: int = 16  # (colour, shape, motion) combinations no training video shows
    seed: int = 0
    # the motions the scenes draw from (None: all of the world's MOTIONS): a stage of one kind of
    # clip, e.g. ("move",) for a set where every object moves in a straight line (and bounces)
    motions: tuple[str, ...] | None = field(default=None, metadata=HASH_IF_SET)
    min_objects: int | None = field(default=None, metadata=HASH_IF_SET)  # None: 1

    def __post_init__(self):
        if self.videos < 1:
            raise ValueError(f"videos must be >= 1, got {self.videos}")
        if self.motions is not None:
            check_motions(self.motions)  # before any scene is drawn
        if self.min_objects is not None and not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(f"need 1 <= min_objects ({self.min_objects}) <= max_objects ({self.max_objects})")
        if not 0.0 <= self.detailed_share <= 1.0:
            raise ValueError(f"detailed_share is a probability in [0, 1], got {self.detailed_share}")


# ----------------------------------------------------------------------------------------------
# The compositional hold-out
# ----------------------------------------------------------------------------------------------
def combo_of(obj) -> tuple[str, str, str]:
    """(colour, shape, motion word) of an object: the motion word is its direction for movers."""
    motion = obj.direction if obj.motion in DIRECTED and obj.direction else obj.motion
    return obj.color, obj.shape, motion


def holdout_combos(n: int, seed: int = 0) -> frozenset[tuple[str, str, str]]:
    """``n`` (colour, shape, motion word) triples held out of training, every colour, shape and
    motion still seen on its own (at most one held-out triple per (colour, shape) pair). Motion
    words: the eight directions (of ``move``) and the other motions but ``turn``."""
    words = [*DIRECTIONS, *[m for m in MOTIONS if m not in DIRECTED]]
    pairs = [(c, s) for c in COLORS for s in SHAPES]
    rng = random.Random(f"holdout/{seed}")
    rng.shuffle(pairs)
    if n > len(pairs):
        raise ValueError(f"at most {len(pairs)} combinations can be held out, got {n}")
    return frozenset((c, s, words[(i * 5 + rng.randrange(len(words))) % len(words)])
                     for i, (c, s) in enumerate(pairs[:n]))


def training_specs(data: VideoDataConfig) -> list:
    """The ``data.videos`` training scenes: world scenes with no held-out combination on any object
    (a scene that shows one is replaced by the next seed's)."""
    held = holdout_combos(data.holdout, data.seed)
    specs, k = [], 0
    while len(specs) < data.videos:
        spec = sample_spec(spec_seed(data.seed, k), max_objects=data.max_objects, motions=data.motions,
                           min_objects=data.min_objects or 1)
        k += 1
        if not any(combo_of(o) in held for o in spec.objects):
            specs.append(spec)
    return specs


# ----------------------------------------------------------------------------------------------
# The latent training set
# ----------------------------------------------------------------------------------------------
@dataclass
class LatentVideos:
    """Encoded training clips and their captions.

    latents: list of [C, t, h, w] (bf16); captions: list of str; text [N, Lt, D] (bf16) and
    text_mask [N, Lt] bool: each caption's token embeddings; null_text [1, Ln, D] / null_mask: the
    empty caption's (the null condition of guidance); sizes: list of (T, H, W) pixel sizes.
    """

    latents: list
    captions: list
    text: torch.Tensor
    text_mask: torch.Tensor
    null_text: torch.Tensor
    null_mask: torch.Tensor
    sizes: list

    def __len__(self) -> int:
        return len(self.latents)

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors, metadata) for ``safetensors`` + JSON."""
        tensors = {f"latent/{i}": z.contiguous() for i, z in enumerate(self.latents)}
        tensors.update(text=self.text, text_mask=self.text_mask, null_text=self.null_text,
                       null_mask=self.null_mask)
        return tensors, {"captions": self.captions, "sizes": [list(s) for s in self.sizes]}

    @classmethod
    def from_state(cls, tensors: dict, meta: dict) -> LatentVideos:
        n = len(meta["captions"])
        return cls([tensors[f"latent/{i}"] for i in range(n)], list(meta["captions"]), tensors["text"],
                   tensors["text_mask"], tensors["null_text"], tensors["null_mask"],
                   [tuple(s) for s in meta["sizes"]])


def caption_for(spec, index: int, data: VideoDataConfig) -> str:
    """The training caption of scene ``index``: detailed with probability ``detailed_share``."""
    from sora_mini.world.captions import detailed_caption, short_caption

    rng = random.Random(f"{data.seed}/{index}/caption")
    return detailed_caption(spec) if rng.random() < data.detailed_share else short_caption(spec)


def size_for(index: int, data: VideoDataConfig) -> tuple[int, int, int]:
    """(T, H, W) of training clip ``index``, drawn from the mix."""
    rng = random.Random(f"{data.seed}/{index}/size")
    h, w = rng.choice(data.sizes)
    return rng.choice(data.frames), h, w


@torch.no_grad()
def encode_videos(data, autoencoder, text_encoder, *, batch: int = 64, progress: bool = True) -> LatentVideos:
    """The training set of ``data`` encoded: world clips rendered (a :class:`VideoDataConfig`) or a
    folder's clips read and center-cropped (a :class:`sora_mini.train.clips.ClipFolderData`), then
    encoded with ``autoencoder`` (scaled latents), their captions with ``text_encoder``
    (``encode(prompts) -> TextEmbedding``)."""
    from sora_mini.train.clips import ClipFolderData, folder_clips

    if isinstance(data, ClipFolderData):
        clips, captions = folder_clips(data)
        sizes = [tuple(c.shape[:3]) for c in clips]

        def load(i: int, size) -> np.ndarray:
            return clips[i]
    else:
        specs = training_specs(data)
        sizes = [size_for(i, data) for i in range(data.videos)]
        captions = [caption_for(s, i, data) for i, s in enumerate(specs)]

        def load(i: int, size) -> np.ndarray:
            t, h, w = size
            return render(specs[i], h, w, t)[0]
    latents = encode_latents(load, sizes, autoencoder, batch=batch, progress=progress)
    return LatentVideos(latents, captions, *encode_captions(captions, text_encoder, progress=progress), sizes)


def encode_latents(load: Callable, sizes: list, autoencoder, *, batch: int = 64, progress: bool = True) -> list:
    """Latents [C, t, h, w] (bf16, CPU) of clips ``load(i, (T, H, W)) -> uint8 [T, H, W, 3]``, encoded
    in batches of one size."""
    from tqdm.auto import tqdm

    from sora_mini.convert import video_to_model

    device = next(autoencoder.parameters()).device
    latents: list = [None] * len(sizes)
    buckets: dict = {}
    for i, size in enumerate(sizes):
        buckets.setdefault(tuple(size), []).append(i)
    bar = tqdm(total=len(sizes), desc="render + encode", disable=not progress, leave=False)
    for size, idx in buckets.items():
        for start in range(0, len(idx), batch):
            chunk = idx[start:start + batch]
            videos = video_to_model(np.stack([load(i, size) for i in chunk])).to(device)
            z = autoencoder.encode(videos).to(torch.bfloat16).cpu()  # [b, C, t', h', w']
            for j, i in enumerate(chunk):
                latents[i] = z[j].clone()
            bar.update(len(chunk))
    bar.close()
    return latents


def encode_captions(captions: list[str], text_encoder, *, progress: bool = True) -> tuple[torch.Tensor, ...]:
    """(text [N, Lt, D] bf16, text_mask [N, Lt], null_text [1, Ln, D] bf16, null_mask [1, Ln]): the
    captions' token embeddings padded to one length, and the empty caption's."""
    from tqdm.auto import tqdm

    texts, masks = [], []
    for start in tqdm(range(0, len(captions), 256), desc="encode captions", disable=not progress, leave=False):
        emb = text_encoder.encode(captions[start:start + 256])
        texts.append(emb.tokens.to(torch.bfloat16).cpu())
        masks.append(emb.mask.cpu())
    length = max(x.shape[1] for x in texts)
    text = torch.cat([torch.nn.functional.pad(x, (0, 0, 0, length - x.shape[1])) for x in texts])
    mask = torch.cat([torch.nn.functional.pad(m, (0, length - m.shape[1])) for m in masks])
    null = text_encoder.encode([""], allow_empty=True)
    return text, mask, null.tokens.to(torch.bfloat16).cpu(), null.mask.cpu()
