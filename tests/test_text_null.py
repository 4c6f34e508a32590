"""The null condition of classifier-free guidance: learned, empty caption, zeros; caption dropout."""

import pytest
import torch

from sora_mini.text.encoders import TextEncoderConfig, TransformerTextEncoder
from sora_mini.text.null import NullCondition, NullConditionConfig

PROMPTS = ["a red circle moves right", "a blue square falls", "a green triangle grows. the background is navy."]


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return TransformerTextEncoder(TextEncoderConfig(hidden_size=16, layers=1, heads=2)).eval()


@pytest.fixture(scope="module")
def emb(encoder):
    with torch.no_grad():
        return encoder.encode(PROMPTS)


DROP = torch.tensor([False, True, False])


def _kept_rows_unchanged(out, emb):
    for i in (0, 2):
        torch.testing.assert_close(out.tokens[i, :emb.tokens.shape[1]], emb.tokens[i])
        assert torch.equal(out.mask[i, :emb.mask.shape[1]], emb.mask[i])
        torch.testing.assert_close(out.pooled[i], emb.pooled[i])


def test_learned_null_replaces_dropped_rows_and_gets_gradients(emb):
    null = NullCondition("learned", 16, length=2)
    out = null.replace(emb, DROP)
    _kept_rows_unchanged(out, emb)
    torch.testing.assert_close(out.tokens[1, :2], null.tokens)
    assert out.mask[1].tolist()[:3] == [True, True, False]
    (out.tokens[1].sum() + out.pooled[1].sum()).backward()
    assert null.tokens.grad is not None and null.tokens.grad.abs().sum() > 0


def test_empty_null_is_the_encoding_of_the_empty_caption(encoder, emb):
    null = NullCondition("empty", 16)
    with torch.no_grad():
        out = null.replace(emb, DROP, encoder=encoder)
        empty = encoder.encode([""], allow_empty=True)
    _kept_rows_unchanged(out, emb)
    n = empty.tokens.shape[1]
    torch.testing.assert_close(out.tokens[1, :n], empty.tokens[0])
    assert out.mask[1].sum() == n
    torch.testing.assert_close(out.pooled[1], empty.pooled[0])
    with pytest.raises(ValueError, match="pass encoder="):
        null.replace(emb, DROP)


def test_empty_null_of_a_frozen_encoder_is_encoded_once_and_again_after_its_weights_change():
    torch.manual_seed(1)
    enc = TransformerTextEncoder(TextEncoderConfig(hidden_size=16, layers=1, heads=2)).eval()
    calls = []
    encode = enc.encode
    enc.encode = lambda prompts, **kw: calls.append(prompts) or encode(prompts, **kw)
    null = NullCondition("empty", 16)
    # trainable: encoded every call (its weights may change between steps)
    null.null(2, encoder=enc)
    null.null(2, encoder=enc)
    assert len(calls) == 2
    enc.requires_grad_(False)  # frozen: once
    first = null.null(2, encoder=enc)
    again = null.null(3, encoder=enc)
    assert len(calls) == 3 and again.tokens.shape[0] == 3
    torch.testing.assert_close(again.tokens[0], first.tokens[0])
    with torch.no_grad():  # weights changed in place: encoded again, and the new encoding is used
        next(enc.parameters()).add_(1.0)
    changed = null.null(1, encoder=enc)
    assert len(calls) == 4
    torch.testing.assert_close(changed.tokens[0], encode([""], allow_empty=True).tokens[0])
    assert not torch.allclose(changed.tokens[0], first.tokens[0])


def test_zeros_null_has_one_zero_token_and_zero_pooled(emb):
    out = NullCondition("zeros", 16).replace(emb, DROP)
    _kept_rows_unchanged(out, emb)
    assert out.tokens[1].abs().sum() == 0 and out.pooled[1].abs().sum() == 0
    assert out.mask[1].tolist() == [True] + [False] * (out.mask.shape[1] - 1)


@pytest.mark.parametrize("kind", ["learned", "empty", "zeros"])
def test_caption_dropout_rate_in_training_and_none_in_eval(kind, encoder, emb):
    null = NullCondition(NullConditionConfig(kind=kind, dim=16, caption_dropout=0.3))
    g = torch.Generator().manual_seed(0)
    drops = torch.stack([null.drop_mask(3, generator=g) for _ in range(2000)]).float().mean()
    assert abs(drops.item() - 0.3) < 0.03
    null.eval()
    assert null(emb, encoder=encoder) is emb
    null.train()
    with torch.no_grad():
        out = null(emb, encoder=encoder, generator=torch.Generator().manual_seed(3))
    assert out.tokens.shape[0] == 3


def test_null_condition_errors_and_round_trip(emb, tmp_path):
    with pytest.raises(ValueError, match="unknown null condition 'nothing'"):
        NullCondition("nothing", 16)
    with pytest.raises(ValueError, match="probability"):
        NullConditionConfig(caption_dropout=1.5)
    with pytest.raises(ValueError, match="16 wide but the null is 8"):
        NullCondition("zeros", 8).replace(emb, DROP)
    null = NullCondition("learned", 16, length=3)
    null.save_pretrained(tmp_path / "n")
    again = NullCondition.from_pretrained(tmp_path / "n")
    assert again.config == null.config
    torch.testing.assert_close(again.replace(emb, DROP).tokens, null.replace(emb, DROP).tokens)
