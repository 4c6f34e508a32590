"""Bad input: one clear message each (empty, too long, non-ASCII, unknown words, not a string)."""

import pytest
import torch

from sora_mini.text.encoders import TextEncoderConfig, TransformerTextEncoder
from sora_mini.text.extend import extend_prompt
from sora_mini.text.prompts import PromptError, check_prompts


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return TransformerTextEncoder(TextEncoderConfig(hidden_size=16, layers=1, heads=2, max_length=12)).eval()


@pytest.mark.parametrize("bad", ["", "   ", ["a red circle", ""]])
def test_empty_prompt_is_refused_with_what_to_do(encoder, bad):
    with pytest.raises(PromptError, match="empty.*e.g. 'a red circle moves right'"):
        encoder.encode(bad)
    with pytest.raises(PromptError, match="empty"):
        extend_prompt(bad if isinstance(bad, str) else "")


def test_empty_caption_allowed_only_when_asked(encoder):
    emb = encoder.encode([""], allow_empty=True)
    assert emb.mask.sum().item() == 2  # [BOS] [EOS]


def test_too_long_prompt_is_truncated_with_a_warning_naming_the_limit(encoder):
    long = "a red circle moves right slowly, then turns up late and a blue square falls"
    with pytest.warns(UserWarning, match="context of 12 tokens.*truncated to 12"):
        emb = encoder.encode([long, "a red circle"])
    assert emb.tokens.shape[1] == 12 and emb.mask[0].all() and emb.mask[1].sum() == 5


def test_accented_letters_are_transliterated_with_a_warning(encoder):
    with pytest.warns(UserWarning, match="read as 'a red circle'"):
        assert check_prompts(["a red círcle"]) == ["a red circle"]
    with pytest.warns(UserWarning, match="accented"):
        a = encoder.encode(["a red círcle"]).pooled
    torch.testing.assert_close(a, encoder.encode(["a red circle"]).pooled)


@pytest.mark.parametrize("text", ["a red circle 🚀", "一个红色的圆"])
def test_other_non_ascii_is_refused_naming_the_characters(encoder, text):
    with pytest.raises(PromptError, match="non-ASCII characters .*plain English"):
        encoder.encode([text])


def test_unknown_words_warn_naming_them(encoder):
    with pytest.warns(UserWarning, match=r"\['hexagon'\].*\[UNK\]"):
        encoder.encode(["a red hexagon"])


@pytest.mark.parametrize("bad", [None, 3, [], ["ok", 5]])
def test_non_strings_are_refused(encoder, bad):
    with pytest.raises(PromptError, match="string"):
        encoder.encode(bad)


def test_prompt_extension_errors_are_prompt_errors():
    with pytest.raises(PromptError, match="unknown words"):
        extend_prompt("a red hexagon")
    with pytest.raises(PromptError, match="at most 3"):
        extend_prompt("a red circle, a blue circle, a green circle and a white square")
    with pytest.raises(PromptError, match="share a colour"):
        extend_prompt("a red circle and a red square")
    with pytest.raises(PromptError, match="cannot place"):
        extend_prompt("a large red circle in the center and a large blue square in the center")


# -- the same bad input through the other two encoders (the frozen MiniLM, CLIP's text tower) ----
@pytest.fixture(scope="module", params=["minilm", "clip"])
def other_encoder(request):
    from sora_mini.text import CLIPConfig, FrozenMiniLM, VideoTextCLIP

    if request.param == "minilm":
        return FrozenMiniLM()
    torch.manual_seed(0)
    clip = VideoTextCLIP(CLIPConfig(text_hidden=16, text_layers=1, text_heads=2, max_length=12,
                                    video_channels=(4,), embed_dim=8))
    return clip.eval()


def test_other_encoders_refuse_empty_and_foreign_text(other_encoder):
    with pytest.raises(PromptError, match="empty"):
        other_encoder.encode([""])
    with pytest.raises(PromptError, match="non-ASCII"):
        other_encoder.encode(["a red circle 🚀"])
    with pytest.warns(UserWarning, match="accented"):
        other_encoder.encode(["a red círcle"])


def test_other_encoders_truncate_with_a_warning_naming_their_limit(other_encoder):
    limit = other_encoder.config.max_length
    long = " ".join(["a red circle moves right"] * limit)
    with pytest.warns(UserWarning, match=f"context of {limit} tokens.*truncated to {limit}"):
        emb = other_encoder.encode([long])
    assert emb.tokens.shape[1] == limit
