"""The caption tokenizer: shipped == rebuilt, special tokens, every caption word known, unknown words."""

import json
import warnings

import pytest

from sora_mini.text.encoders import CAPTION_VOCAB_SIZE
from sora_mini.text.prompts import tokenize_prompts
from sora_mini.text.tokenizer import (
    SPECIAL_TOKENS,
    build_tokenizer,
    load_tokenizer,
    save_tokenizer,
    shipped_tokenizer_dir,
)
from sora_mini.world.captions import detailed_caption, short_caption
from sora_mini.world.sample import sample_specs


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


def test_shipped_tokenizer_equals_a_rebuilt_one(tok):
    assert (shipped_tokenizer_dir() / "tokenizer.json").is_file(), "data/tokenizer/ is not shipped"
    rebuilt = build_tokenizer()
    assert json.loads(rebuilt.backend_tokenizer.to_str()) == json.loads(tok.backend_tokenizer.to_str())
    assert rebuilt.get_vocab() == tok.get_vocab()
    assert len(tok) == CAPTION_VOCAB_SIZE  # the encoders' default vocab_size


def test_special_tokens_and_template(tok):
    assert [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3]
    assert tok.pad_token_id == 0
    ids = tok("a red circle")["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id and len(ids) == 5


def test_unseen_world_captions_have_no_unknown_words_and_round_trip(tok):
    for spec in sample_specs(300, seed=12345):  # another seed than the corpus
        for text in (short_caption(spec), detailed_caption(spec)):
            ids = tok(text)["input_ids"]
            assert tok.unk_token_id not in ids, text
            assert tok.decode(ids, skip_special_tokens=True) == text


def test_save_and_load_round_trip(tok, tmp_path):
    save_tokenizer(tok, tmp_path / "t")
    again = load_tokenizer(tmp_path / "t")
    text = "a large blue square starts at the top left and falls. the background is navy."
    assert again(text)["input_ids"] == tok(text)["input_ids"]
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        load_tokenizer(tmp_path / "missing")


def test_unknown_words_map_to_unk_with_a_warning_naming_them(tok):
    with pytest.warns(UserWarning, match=r"\['blob', 'zooms'\]"):
        ids, _mask = tokenize_prompts(tok, ["a red blob zooms right"], 96)
    assert ids[0].tolist().count(tok.unk_token_id) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # known words: no warning
        tokenize_prompts(tok, ["a red circle moves right"], 96)
