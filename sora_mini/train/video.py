"""The text-to-video training recipe: world videos at their native sizes -> latents of the causal
autoencoder -> Patch n' Pack batches with a timestep per example, caption dropout and frame masks
-> rectified flow with logit-normal timesteps and a size-dependent shift.

What one training step sees (``VideoBatches(data, recipe)(step)``, deterministic in the step):

    packed     PackedBatch: S rows of ``pack_length`` tokens; images (T = 1) and videos of every
               size and duration of the mix, each example whole in one row (first-fit)
    given      [S, L] bool: tokens of clean conditioning frames (the frame-mask strategies below)
    t          [B] flow time per example (0 = data, 1 = noise), logit-normal, then shifted for
               the example's size and length (:func:`time_shift`)
    noise      [S, L, P]
    text       [B, Lt, D] caption token embeddings (a dropped caption is the empty caption's),
               text_mask [B, Lt]; ``captions``: the B captions themselves ("" where dropped), for
               a text encoder trained with the model (:mod:`sora_mini.train.joint_text`)
    index      [B] the training clip each example is; ``strategy``: each example's frame-mask
               strategy (list of B names); ``dropped`` [B] bool: its caption was dropped

Frame masks (Open-Sora 1.x ``mask_ratios``, VDT's unified masks): one strategy per video, drawn
with the probabilities of :class:`MaskRatios`, so the one model later serves every prompting mode:
``head`` (the first latent frame: image-to-video), ``head_k`` / ``tail_k`` (the first / last k
frames: extension forward / backward), ``head_tail`` (both ends: connecting two clips),
``interleaved`` (every other frame), ``single`` (one random frame), ``block`` (a spatial box is
generated, the rest given: inpainting); the rest ``none`` (text-to-video). Images get ``none`` or
``block``. The loss is the flow-matching MSE over the generated tokens only (the given ones are
clean inputs with timestep 0: ``frame_cond="in_place"``, Open-Sora 1.2's ``x_mask``), plus, when
``VideoRecipe.motion_weight`` is set, the error of every frame-to-frame change (:func:`temporal_pairs`).

The training set is rendered from the world (:class:`VideoDataConfig`) or read from a folder of the
user's clips with ``.txt`` captions (:class:`sora_mini.train.clips.ClipFolderData`, each clip
center-cropped to a size the model takes); a set with fewer tokens than a step repeats examples.

On several processes (torchrun, :mod:`sora_mini.train.distributed`): every rank draws the same
global batch of the step, exactly as one process does (same draws in the same order), and keeps
its part, :meth:`VideoBatch.shard`: the examples ``r, r + N, r + 2N, ...`` of the draw, repacked
into rows of their own, each with its own timestep, frame mask, caption (or the dropped one) and
the noise one process drew for its tokens. Each rank's loss is the squared error summed over its
generated tokens divided by the GLOBAL batch's count of them (``generated``, carried in the shard)
and multiplied by N, so DDP's average of the N gradients is the one process's gradient of the
global batch's mean. The two differ only by float rounding (the sums run in another order, and
each example's attention runs in other rows); with one process nothing is cut and nothing changes.
The loss calls ``model(packed, ...)`` (``VideoDiT.forward`` takes a PackedBatch), since DDP
averages the gradients of calls through ``forward`` only.

The training set itself (the scenes, their hold-out, captions and encoding into latents) is
:mod:`sora_mini.train.video_data`; its names are importable from here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from sora_mini.config import step_seed
from sora_mini.diffusion.flow import FlowMatching, resolution_shift, timestep_shift
from sora_mini.patches import PackedBatch, pack
from sora_mini.patches.patchify import patchify
from sora_mini.pretrained import HASH_IF_SET
from sora_mini.train.device import unwrap
from sora_mini.train.video_data import (  # noqa: F401  the training set, re-exported for the recipe's users
    DIRECTED,
    LatentVideos,
    VideoDataConfig,
    caption_for,
    combo_of,
    encode_captions,
    encode_latents,
    encode_videos,
    holdout_combos,
    size_for,
    training_specs,
)

MASK_STRATEGIES = ("none", "head", "head_k", "tail_k", "head_tail", "interleaved", "single", "block")


# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MaskRatios:
    """Probability of each frame-mask strategy for a video (``none`` takes the rest)."""

    head: float = 0.12
    head_k: float = 0.08
    tail_k: float = 0.06
    head_tail: float = 0.06
    interleaved: float = 0.03
    single: float = 0.03
    block: float = 0.05

    def __post_init__(self):
        values = [getattr(self, k) for k in MASK_STRATEGIES[1:]]
        if any(v < 0 for v in values) or sum(values) > 1 + 1e-9:
            raise ValueError(f"mask ratios must be >= 0 and sum to at most 1 (the rest is 'none'); got "
                             f"{dict(zip(MASK_STRATEGIES[1:], values))}")

    def probabilities(self) -> list[float]:
        """[p(none), p(head), ...] in ``MASK_STRATEGIES`` order."""
        rest = [getattr(self, k) for k in MASK_STRATEGIES[1:]]
        return [max(0.0, 1.0 - sum(rest)), *rest]


@dataclass(frozen=True)
class VideoRecipe:
    """How the text-to-video model is trained (the data is :class:`VideoDataConfig`)."""

    pack_length: int = 256  # tokens per packed row (>= the largest example)
    tokens_per_step: int = 1024  # real tokens drawn per optimiser step (rows = about this / pack_length)
    caption_dropout: float = 0.1  # captions replaced by the empty caption, for guidance
    masks: MaskRatios = field(default_factory=MaskRatios)
    logit_mean: float = 0.0  # logit-normal timesteps (SD3's rf/lognorm(0, 1))
    logit_std: float = 1.0
    shift: str | float = "resolution"  # "resolution": :func:`time_shift` per example; a number: fixed
    seed: int = 0
    # weight of the temporal-difference term of the loss (:func:`packed_flow_loss`): the error of the
    # change from each latent frame to the next, on top of the plain MSE (None: no such term). The
    # plain MSE is mostly spent on what is still (appearance); this adds the motion (VideoJAM's claim,
    # Chefer et al. 2025, tested here in its cheapest form)
    motion_weight: float | None = field(default=None, metadata=HASH_IF_SET)

    def __post_init__(self):
        if self.pack_length < 1 or self.tokens_per_step < 1:
            raise ValueError("pack_length and tokens_per_step must be >= 1")
        if not 0.0 <= self.caption_dropout <= 1.0:
            raise ValueError(f"caption_dropout is a probability in [0, 1], got {self.caption_dropout}")
        if isinstance(self.shift, str) and self.shift != "resolution":
            raise ValueError(f"shift must be 'resolution' or a number > 0, got {self.shift!r}")
        if not isinstance(self.shift, str) and not self.shift > 0:
            raise ValueError(f"shift must be 'resolution' or a number > 0, got {self.shift!r}")
        if self.motion_weight is not None and not self.motion_weight >= 0:
            raise ValueError(f"motion_weight must be >= 0 (or None), got {self.motion_weight!r}")


def time_shift(grid: tuple[int, int, int], shift: str | float = "resolution") -> float:
    """The timestep shift alpha of a latent token grid ``(nt, nh, nw)``: Open-Sora 2.0's rule, linear
    in the tokens per frame (1 at a 4 x 4 grid, a 32 x 32 clip here; 1.5 at 8 x 8) times
    sqrt(latent frames). A bigger or longer clip has more redundant pixels, so the same noise level
    destroys less of it and training and sampling must spend more time near noise."""
    if not isinstance(shift, str):
        return float(shift)
    nt, nh, nw = grid
    return resolution_shift(nh * nw, nt, base_tokens=16, max_tokens=64, base_shift=1.0, max_shift=1.5)


def flow_objective(recipe: VideoRecipe) -> FlowMatching:
    """The recipe's objective: rectified flow, logit-normal t (the shift is applied per example)."""
    return FlowMatching("logit_normal", logit_mean=recipe.logit_mean, logit_std=recipe.logit_std)


# ----------------------------------------------------------------------------------------------
# Frame masks
# ----------------------------------------------------------------------------------------------
def frame_mask(strategy: str, grid: tuple[int, int, int], gen: torch.Generator) -> torch.Tensor:
    """The given (clean) tokens of one example as bool [nt, nh, nw] for ``strategy``; at least one
    token is always left to generate."""
    if strategy not in MASK_STRATEGIES:
        raise ValueError(f"unknown mask strategy {strategy!r}; allowed: {', '.join(MASK_STRATEGIES)}")
    nt, nh, nw = grid
    given = torch.zeros(nt, nh, nw, dtype=torch.bool)

    def draw(lo: int, hi: int) -> int:  # an integer in [lo, hi]
        return int(torch.randint(lo, hi + 1, (1,), generator=gen))

    if strategy == "block":
        h, w = draw(1, nh), draw(1, nw)
        y, x = draw(0, nh - h), draw(0, nw - w)
        given[:] = True
        given[:, y:y + h, x:x + w] = False
        return given
    if nt < 2 or strategy == "none":
        return given
    if strategy == "head":
        given[0] = True
    elif strategy == "head_k":
        given[:draw(1, nt - 1)] = True
    elif strategy == "tail_k":
        given[nt - draw(1, nt - 1):] = True
    elif strategy == "head_tail":
        k = draw(1, max(1, (nt - 1) // 2))
        given[:k] = True
        given[nt - k:] = True
    elif strategy == "interleaved":
        given[::2] = True
    elif strategy == "single":
        given[draw(0, nt - 1)] = True
    if bool(given.all()):
        given[-1] = False
    return given


def draw_strategy(ratios: MaskRatios, is_image: bool, gen: torch.Generator) -> str:
    """One strategy from the ratios; images (one latent frame) take only ``none`` or ``block``."""
    probs = torch.tensor(ratios.probabilities())
    if is_image:
        keep = torch.tensor([s in ("none", "block") for s in MASK_STRATEGIES])
        probs = probs * keep
        probs[0] = max(float(probs[0]), 1e-9)
    return MASK_STRATEGIES[int(torch.multinomial(probs / probs.sum(), 1, generator=gen))]


# ----------------------------------------------------------------------------------------------
# Batches
# ----------------------------------------------------------------------------------------------
class VideoBatch(dict):
    """One step's batch (the keys of the module docstring), a dict that knows how to split itself
    between the ranks of a DDP run (:func:`sora_mini.train.distributed.shard` calls :meth:`shard`)."""

    def shard(self, rank: int, world_size: int) -> VideoBatch:
        """Rank ``rank``'s part: the examples ``rank::world_size``, packed into their own rows of the
        same length, with their rows of ``t``, ``text`` and ``text_mask`` and their tokens' ``given``
        and ``noise`` (zeros at the new padding, which the loss leaves out). Adds ``generated`` (the
        generated tokens of the whole batch) and ``shards`` (``world_size``) for the loss."""
        packed: PackedBatch = self["packed"]
        if packed.num_examples < world_size:
            raise ValueError(f"the step's batch has {packed.num_examples} examples for {world_size} processes: "
                             "raise tokens_per_step or use fewer processes")
        mine = list(range(rank, packed.num_examples, world_size))
        slots = packed.flat_index().split(packed.lengths)  # each example's slots in [S*L]
        width = packed.tokens.shape[-1]
        tokens, coords, given, noise = (v.reshape(-1, *v.shape[2:]) for v in
                                        (packed.tokens, packed.coords, self["given"], self["noise"]))
        part = pack([tokens[slots[i]] for i in mine], [coords[slots[i]] for i in mine], packed.max_len,
                    patch_size=packed.patch_size)
        where = part.flat_index()
        part_given = torch.zeros(part.segment_ids.numel(), dtype=torch.bool, device=given.device)
        part_given[where] = torch.cat([given[slots[i]] for i in mine])
        part_noise = noise.new_zeros(part.segment_ids.numel(), width)
        part_noise[where] = torch.cat([noise[slots[i]] for i in mine])
        generated = int((packed.valid & ~self["given"]).sum())
        return VideoBatch(packed=part, given=part_given.view(part.segment_ids.shape), t=self["t"][mine],
                          noise=part_noise.view(part.tokens.shape), text=_rows(self["text"], mine),
                          text_mask=_rows(self["text_mask"], mine), tokens=int(part.valid.sum()),
                          generated=generated, shards=world_size, index=self["index"][mine],
                          strategy=_rows(self["strategy"], mine), dropped=self["dropped"][mine],
                          captions=_rows(self.get("captions"), mine))


def _rows(values, index: list[int]):
    """Rows ``index`` of a tensor or a list (captions); None stays None."""
    if values is None:
        return None
    return values[index] if torch.is_tensor(values) else [values[i] for i in index]


class VideoBatches:
    """``batches(step) -> VideoBatch``: the packed training batch of ``step`` (see the module
    docstring), the same for the same step, so a resumed run sees the batches an uninterrupted one
    would."""

    def __init__(self, videos: LatentVideos, recipe: VideoRecipe, patch_size: tuple[int, int, int]):
        self.videos, self.recipe, self.patch_size = videos, recipe, tuple(patch_size)
        self.grids = [self._grid(z) for z in videos.latents]
        self.lengths = [nt * nh * nw for nt, nh, nw in self.grids]
        too_long = max(self.lengths)
        if too_long > recipe.pack_length:
            raise ValueError(f"an example has {too_long} tokens, more than pack_length={recipe.pack_length}; "
                             "raise pack_length or train on smaller sizes")

    def _grid(self, z: torch.Tensor) -> tuple[int, int, int]:
        pt, ph, pw = self.patch_size
        _, t, h, w = z.shape
        return t // pt, h // ph, w // pw

    def draw_examples(self, gen: torch.Generator) -> list[int]:
        """Example indices whose tokens add up to at least ``tokens_per_step``, in shuffled passes
        over the set: a set with fewer tokens than a step takes (a few clips) repeats examples."""
        chosen, total = [], 0
        while total < self.recipe.tokens_per_step:
            for i in torch.randperm(len(self.videos), generator=gen).tolist():
                if total >= self.recipe.tokens_per_step:
                    break
                chosen.append(i)
                total += self.lengths[i]
        return chosen

    def __call__(self, step: int) -> VideoBatch:
        r = self.recipe
        gen = torch.Generator().manual_seed(step_seed(r.seed, step))
        idx = self.draw_examples(gen)
        tokens, coords, given, strategies = [], [], [], []
        for i in idx:
            tok, crd = patchify(self.videos.latents[i].float(), self.patch_size)  # [n, P], [n, 3]
            tokens.append(tok)
            coords.append(crd)
            strategies.append(draw_strategy(r.masks, self.grids[i][0] == 1, gen))
            given.append(frame_mask(strategies[-1], self.grids[i], gen).reshape(-1))
        packed = pack(tokens, coords, r.pack_length)
        packed.patch_size = self.patch_size
        flat = torch.zeros(packed.segment_ids.numel(), dtype=torch.bool)
        flat[packed.flat_index()] = torch.cat(given)
        t = torch.sigmoid(r.logit_mean + r.logit_std * torch.randn(len(idx), generator=gen))
        alphas = torch.tensor([time_shift(self.grids[i], r.shift) for i in idx])
        t = timestep_shift(t, alphas).clamp(0.0, 1.0)
        noise = torch.randn(packed.tokens.shape, generator=gen)
        drop = torch.rand(len(idx), generator=gen) < r.caption_dropout
        text, text_mask = self._text(idx, drop)
        captions = ["" if d else self.videos.captions[i] for i, d in zip(idx, drop.tolist())]
        return VideoBatch(packed=packed, given=flat.view(packed.segment_ids.shape), t=t, noise=noise,
                          text=text, text_mask=text_mask, tokens=int(packed.valid.sum()),
                          index=torch.tensor(idx), strategy=strategies, dropped=drop, captions=captions)

    def _text(self, idx: list[int], drop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.videos
        mask = v.text_mask[idx]
        length = max(int(mask.sum(1).max()), v.null_mask.shape[1])
        text, mask = v.text[idx, :length].float(), mask[:, :length].clone()
        n = v.null_mask.shape[1]
        if bool(drop.any()):
            text[drop] = 0.0
            text[drop, :n] = v.null_text[0].float()
            mask[drop] = False
            mask[drop, :n] = v.null_mask[0]
        return text, mask


def temporal_pairs(packed: PackedBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat slot indices ``(a, b)`` into ``[S * L]``: ``b`` is the token of the same example at the
    same place one latent frame after ``a`` (every such pair of real tokens in the pack)."""
    seg, crd = packed.segment_ids.reshape(-1), packed.coords.reshape(-1, 3).long()
    real = (seg >= 0).nonzero().squeeze(1)
    if real.numel() == 0:
        return real, real
    c, s = crd[real], seg[real]
    nt, nh, nw = (int(c[:, k].max()) + 2 for k in range(3))
    key = ((s * nt + c[:, 0]) * nh + c[:, 1]) * nw + c[:, 2]
    ordered, order = key.sort()
    nxt = key + nh * nw  # one frame later: same example, same place
    pos = torch.searchsorted(ordered, nxt).clamp(max=len(ordered) - 1)
    found = ordered[pos] == nxt
    return real[found], real[order[pos[found]]]


def packed_flow_loss(objective: FlowMatching, motion_weight: float | None = None) -> Callable:
    """``loss_fn(model, batch) -> (loss, metrics)`` for the Trainer: the velocity MSE over the
    generated tokens of a :class:`VideoBatches` batch (given and padding tokens left out). On a
    rank's shard (:meth:`VideoBatch.shard`), its squared errors over the whole batch's generated
    tokens, times the ranks (see the module docstring). ``model(packed, t, x=, cond=, cond_given=,
    text=, text_mask=)`` is called through its ``forward`` (a DDP wrapper averages those gradients);
    a model that ``reads_captions`` (:class:`sora_mini.train.joint_text.JointTextDiT`) also gets
    ``captions=``.

    ``motion_weight`` w > 0 adds w times the squared error of each frame-to-frame change,
    ``(pred_b - pred_a) - (target_b - target_a)`` for every pair of generated tokens one latent frame
    apart at one place (:func:`temporal_pairs`), normalised as the MSE is (so w = 1 weighs a
    token's change as much as the token). Its minimiser is the same as the plain MSE's (the
    conditional mean); what changes is which errors a model of limited capacity fixes first."""

    def loss_fn(model, batch):
        packed: PackedBatch = batch["packed"]
        device = batch["noise"].device
        packed = packed.to(device)
        x0, noise, t, given = packed.tokens, batch["noise"], batch["t"], batch["given"]
        t_tok = t[packed.segment_ids.clamp(min=0)][..., None]  # [S, L, 1]
        x_t = (1 - t_tok) * x0 + t_tok * noise
        words = {"captions": batch["captions"]} if getattr(unwrap(model), "reads_captions", False) else {}
        pred = model(packed, t * objective.model_time_scale(unwrap(model)), x=x_t, cond=x0, cond_given=given,
                     text=batch["text"], text_mask=batch["text_mask"], **words)
        target = objective.target(x0, noise)
        weight = (packed.valid & ~given).to(pred.dtype)[..., None]  # generated, real tokens
        # one process: its own count; a rank's shard: the whole batch's (times the ranks DDP averages over)
        count = weight.new_tensor(batch["generated"]) if "generated" in batch else weight.sum()
        diff = (pred.float() - target.float()) * weight
        sse = (diff ** 2).sum()
        scale = batch.get("shards", 1) / (count * x0.shape[-1]).clamp(min=1)
        err = sse * scale
        metrics = {"tokens": float(batch["tokens"]), "given_share": float(given[packed.valid].float().mean())}
        if motion_weight:
            a, b = temporal_pairs(packed)
            flat, gen = diff.reshape(-1, diff.shape[-1]), weight.reshape(-1)
            both = (gen[a] * gen[b])[:, None]  # both generated (a given frame's output is not trained)
            motion = (((flat[b] - flat[a]) * both) ** 2).sum() * scale
            metrics["motion_loss"] = float(motion.detach())
            err = err + motion_weight * motion
        return err, metrics

    return loss_fn


def flops_per_token(model, context: int) -> float:
    """Training FLOPs per token, forward and backward (3x the forward): 2 per weight of the blocks
    and the embeddings (each token passes through every matmul) plus attention's two [L x L]
    products and cross-attention's [L x Lt] ones over ``context`` tokens (Kaplan et al. 2020's 6N)."""
    params = sum(p.numel() for n, p in model.named_parameters() if p.ndim >= 2)
    width, depth = model.hidden_size, len(model.blocks)
    attention = 2 * 2 * context * width * depth * 2  # self + cross, QK^T and AV
    return 3.0 * (2.0 * params + attention)
