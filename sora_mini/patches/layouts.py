"""How much of a batch is real tokens: packing vs pad-to-max vs bucketing, from token counts alone.

Shapes: lengths [B] token counts (and bucket keys [B]) -> Layout (rows, slots, real tokens, and the
attention pairs: a dense mask computes every (query, key) pair of a row, len(row)^2, of which only
the pairs inside one example, sum n_i^2, are real).
Pad-to-max is what a fixed-shape batch does without packing; bucketing (group equal sizes, as
Open-Sora's resolution / duration buckets) removes padding inside a batch but leaves partly
filled batches; Patch n' Pack (NaViT, arXiv 2307.06304) fills fixed-length sequences greedily.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

from sora_mini.patches.pack import first_fit


@dataclass(frozen=True)
class Layout:
    """A batch layout: ``slots`` token slots computed, ``real`` of them real tokens; ``pairs``
    attention (query, key) pairs computed under a dense mask, ``real_pairs`` of them within one example."""

    name: str
    rows: int
    slots: int
    real: int
    pairs: int = 0
    real_pairs: int = 0

    @property
    def real_share(self) -> float:
        """Real tokens / slots: the share of the per-token work (projections, MLP) that is real."""
        return self.real / self.slots if self.slots else 0.0

    @property
    def real_pair_share(self) -> float:
        """sum n_i^2 / sum len(row)^2: the share of dense-mask attention FLOPs spent on real pairs."""
        return self.real_pairs / self.pairs if self.pairs else 0.0


def _squares(lengths: Iterable[int]) -> int:
    return sum(int(n) ** 2 for n in lengths)


def layout_packed(lengths: Sequence[int], max_len: int, sort: bool = False) -> Layout:
    """Greedy first-fit into rows of ``max_len`` (the last row may be partly empty)."""
    bins = first_fit(lengths, max_len, sort=sort)
    return Layout("packing (first-fit decreasing)" if sort else "packing (first-fit)",
                  len(bins), len(bins) * max_len, int(sum(lengths)), len(bins) * max_len ** 2, _squares(lengths))


def layout_pad_to_max(lengths: Sequence[int], batch_size: int | None = None) -> Layout:
    """Consecutive batches of ``batch_size`` examples (all of them when None), each padded to its longest."""
    lengths = [int(n) for n in lengths]
    if not lengths:
        raise ValueError("empty batch: no lengths")
    bs = batch_size or len(lengths)
    chunks = [lengths[i:i + bs] for i in range(0, len(lengths), bs)]
    slots = sum(len(chunk) * max(chunk) for chunk in chunks)
    pairs = sum(len(chunk) * max(chunk) ** 2 for chunk in chunks)
    return Layout("pad-to-max", len(lengths), slots, sum(lengths), pairs, _squares(lengths))


def bucket_batches(keys: Sequence[Hashable], lengths: Sequence[int], tokens_per_batch: int | None = None,
                   batch_size: int | None = None) -> list[list[int]]:
    """Bucketing: examples of equal ``key`` (e.g. latent grid) share batches, in input order.

    A bucket's batch holds ``tokens_per_batch // length`` examples (a token budget per step, as
    Open-Sora's bucket batch sizes) or ``batch_size``. Returns the example indices of each batch;
    build one with ``pad_to_max([tokens[i] for i in batch], ...)``.
    """
    if len(keys) != len(lengths) or not lengths:
        raise ValueError(f"{len(keys)} keys for {len(lengths)} lengths; need one key per example, at least one")
    if (tokens_per_batch is None) == (batch_size is None):
        raise ValueError("give exactly one of tokens_per_batch (a token budget) or batch_size (rows per batch)")
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[key].append(i)
    batches = []
    for members in groups.values():
        length = max(int(lengths[i]) for i in members)
        per_batch = batch_size or max(1, tokens_per_batch // length)
        batches += [members[a:a + per_batch] for a in range(0, len(members), per_batch)]
    return batches


def layout_buckets(keys: Sequence[Hashable], lengths: Sequence[int], tokens_per_batch: int | None = None,
                   batch_size: int | None = None) -> Layout:
    """Bucketing's real-token share: no padding inside a batch of equal sizes, but each bucket's last,
    partly filled batch is padded with empty rows so every step keeps its shape (the alternative,
    dropping those examples, loses data). Arguments as :func:`bucket_batches`."""
    rows = slots = pairs = 0
    for batch in bucket_batches(keys, lengths, tokens_per_batch, batch_size):
        length = max(int(lengths[i]) for i in batch)
        per_batch = batch_size or max(1, tokens_per_batch // length)
        rows += per_batch
        slots += per_batch * length
        pairs += per_batch * length ** 2
    return Layout("bucketing", rows, slots, int(sum(lengths)), pairs, _squares(lengths))


def fill_sequences(lengths: Iterable[int], num_sequences: int, max_len: int, patience: int = 8):
    """A streaming packer: first-fit examples from a stream into ``num_sequences`` rows; an example
    that fits nowhere waits for the next step; stop after ``patience`` such misses.

    Returns (bins: example positions in the stream per row, used: number of stream items read).
    """
    bins: list[list[int]] = [[] for _ in range(num_sequences)]
    room = [max_len] * num_sequences
    misses = used = 0
    for i, n in enumerate(lengths):
        used = i + 1
        if n > max_len:
            raise ValueError(f"stream item {i} has {n} tokens, more than the pack length {max_len}")
        for b in range(num_sequences):
            if n <= room[b]:
                bins[b].append(i)
                room[b] -= n
                break
        else:
            misses += 1
            if misses >= patience:
                break
    return bins, used
