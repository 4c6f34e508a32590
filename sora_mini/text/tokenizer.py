"""The caption tokenizer: a word-level vocabulary of the world's caption corpus.

The world's captions come from a closed grammar (``sora_mini.world.captions``), so one token per
word and punctuation mark is exact and short: no sub-word pieces are needed. The vocabulary is
learned with the ``tokenizers`` library from the short and detailed captions of ``corpus_specs``
sampled scenes plus one line listing every word the grammar reads (aliases such as "grey"
included), and wrapped as a ``transformers.PreTrainedTokenizerFast``:

    "a red circle moves right"  ->  [BOS] a red circle moves right [EOS]   (ids, mask)

Special tokens: ``[PAD]`` (id 0), ``[UNK]``, ``[BOS]``, ``[EOS]``. A built tokenizer is shipped in
git under ``data/tokenizer/`` (``load_tokenizer()`` reads it); ``build_tokenizer()`` rebuilds it
deterministically (a test checks the shipped one equals a rebuilt one). Words outside the
vocabulary become ``[UNK]`` with a warning naming them (``sora_mini.text.prompts``).
"""

from __future__ import annotations

import os
from pathlib import Path

from sora_mini.paths import project_root

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)
CORPUS_SPECS = 2000  # sampled scenes whose captions make the corpus
CORPUS_SEED = 0
MODEL_MAX_LENGTH = 96  # longest detailed caption of 3 objects is about 60 tokens


def shipped_tokenizer_dir() -> Path:
    """``data/tokenizer/`` of the source checkout (where the built tokenizer is kept in git)."""
    return project_root() / "data" / "tokenizer"


def caption_corpus(n_specs: int = CORPUS_SPECS, seed: int = CORPUS_SEED) -> list[str]:
    """The training text: short and detailed captions of ``n_specs`` sampled scenes, then one line
    of every word the caption grammar reads (so aliases and rare words get an id too)."""
    from sora_mini.world.captions import KNOWN_WORDS, detailed_caption, short_caption
    from sora_mini.world.sample import sample_specs

    lines = []
    for spec in sample_specs(n_specs, seed=seed):
        lines += [short_caption(spec), detailed_caption(spec)]
    lines.append(" ".join(sorted(KNOWN_WORDS)))
    return lines


def build_tokenizer(n_specs: int = CORPUS_SPECS, seed: int = CORPUS_SEED):
    """Train the word-level tokenizer on :func:`caption_corpus` -> ``PreTrainedTokenizerFast``.

    Deterministic: the same arguments give the same vocabulary and ids (special tokens first,
    then words by falling frequency, ties in alphabetical order).
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import WordLevelTrainer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()  # words and punctuation marks
    trainer = WordLevelTrainer(special_tokens=list(SPECIAL_TOKENS), min_frequency=1)
    tok.train_from_iterator(caption_corpus(n_specs, seed), trainer=trainer)
    # the trainer breaks frequency ties by hash order on some versions: re-rank explicitly
    counts: dict[str, int] = {}
    for line in caption_corpus(n_specs, seed):
        for word, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(line)):
            counts[word] = counts.get(word, 0) + 1
    words = sorted(counts, key=lambda w: (-counts[w], w))
    vocab = {t: i for i, t in enumerate([*SPECIAL_TOKENS, *words])}
    ranked = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    ranked.normalizer, ranked.pre_tokenizer = tok.normalizer, tok.pre_tokenizer
    ranked.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, vocab[BOS]), (EOS, vocab[EOS])])
    ranked.decoder = decoders.WordPiece(prefix="##", cleanup=True)  # "right , then" -> "right, then"
    return PreTrainedTokenizerFast(tokenizer_object=ranked, pad_token=PAD, unk_token=UNK,
                                   bos_token=BOS, eos_token=EOS, model_max_length=MODEL_MAX_LENGTH)


def save_tokenizer(tokenizer, directory: str | os.PathLike | None = None) -> Path:
    """``tokenizer.save_pretrained(directory)`` (default: the shipped ``data/tokenizer/``)."""
    directory = Path(directory) if directory is not None else shipped_tokenizer_dir()
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(directory))
    return directory


def load_tokenizer(directory: str | os.PathLike | None = None):
    """The caption tokenizer saved in ``directory`` (default: the shipped one; rebuilt in memory
    when the package runs without its source checkout)."""
    from transformers import PreTrainedTokenizerFast

    d = Path(directory) if directory is not None else shipped_tokenizer_dir()
    if not (d / "tokenizer.json").is_file():
        if directory is not None:
            raise FileNotFoundError(f"no tokenizer.json in {d}: save one with save_tokenizer(tok, {str(d)!r})")
        return build_tokenizer()
    return PreTrainedTokenizerFast.from_pretrained(str(d), local_files_only=True)
