"""The joint caption encoder: frozen MiniLM tokens followed by a caption transformer trained with
the DiT (sora_mini.text.joint, sora_mini.train.joint_text)."""

import copy
import dataclasses

import pytest
import torch

PROMPTS = ["a red circle moves right", "a blue square"]


@pytest.fixture(scope="module")
def encoder():
    from sora_mini.text.joint import JointTextEncoder

    torch.manual_seed(0)
    return JointTextEncoder()


def test_tokens_are_the_frozen_ones_then_the_trained_ones(encoder):
    frozen = encoder.frozen.encode(PROMPTS)
    words = encoder.word_tokens(PROMPTS)
    joined = encoder.encode(PROMPTS)
    lm = frozen.tokens.shape[1]
    assert joined.tokens.shape == (2, lm + words.tokens.shape[1], 384)
    assert torch.equal(joined.tokens[:, :lm], frozen.tokens) and torch.equal(joined.mask[:, :lm], frozen.mask)
    assert torch.allclose(joined.tokens[:, lm:], words.tokens)
    # the words the caption transformer reads: [BOS] + the caption's words + [EOS]
    assert words.mask.sum(1).tolist() == [len(p.split()) + 2 for p in PROMPTS]
    # the pooled vector is the masked mean over both parts
    w = joined.mask[..., None].float()
    assert torch.allclose(joined.pooled, (joined.tokens * w).sum(1) / w.sum(1), atol=1e-5)


def test_saves_the_trained_half_only_and_loads_it_back(encoder, tmp_path):
    from sora_mini.pretrained import read_weights
    from sora_mini.text.joint import JointTextEncoder

    encoder.save_pretrained(tmp_path / "te")
    state = read_weights(tmp_path / "te")
    assert state and all(k.startswith(("words.", "proj.")) for k in state)  # no MiniLM weights copied
    assert (tmp_path / "te" / "tokenizer" / "tokenizer.json").is_file()
    loaded = JointTextEncoder.from_pretrained(tmp_path / "te")
    assert torch.allclose(loaded.encode(PROMPTS).tokens, encoder.encode(PROMPTS).tokens, atol=1e-6)


def test_a_copy_shares_the_frozen_encoder(encoder):
    twin = copy.deepcopy(encoder)
    assert twin.frozen is encoder.frozen and twin.proj.weight is not encoder.proj.weight
    assert not any(n.startswith("_frozen") for n, _ in encoder.named_parameters())


def test_unknown_words_warn_and_widths_must_match(encoder):
    from sora_mini.text.embedding import TextEmbedding
    from sora_mini.text.joint import join

    with pytest.warns(UserWarning, match="zebra"):
        encoder.encode(["a red zebra"])
    a = TextEmbedding(torch.zeros(2, 3, 8), torch.ones(2, 3, dtype=torch.bool), torch.zeros(2, 8))
    b = TextEmbedding(torch.zeros(2, 3, 4), torch.ones(2, 3, dtype=torch.bool), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="width must match"):
        join(a, b)


def _tiny_batches(n=6):
    from sora_mini.train.video import LatentVideos, VideoBatches, VideoRecipe

    latents = [torch.randn(4, 3, 4, 4) for _ in range(n)]
    captions = [f"a {c} circle moves right" for c in ("red", "blue", "green", "yellow", "purple", "white")][:n]
    text = torch.randn(n, 5, 384)
    videos = LatentVideos(latents, captions, text, torch.ones(n, 5, dtype=torch.bool), torch.randn(1, 2, 384),
                          torch.ones(1, 2, dtype=torch.bool), [(5, 16, 16)] * n)
    recipe = VideoRecipe(pack_length=64, tokens_per_step=48, caption_dropout=0.5)
    return VideoBatches(videos, recipe, (1, 2, 2)), captions


def test_batches_carry_their_captions_empty_where_dropped():
    batches, captions = _tiny_batches()
    batch = batches(3)
    assert len(batch["captions"]) == len(batch["index"])
    for i, d, c in zip(batch["index"].tolist(), batch["dropped"].tolist(), batch["captions"]):
        assert c == ("" if d else captions[i])
    assert any(batch["dropped"].tolist()) and not all(batch["dropped"].tolist())
    part = batch.shard(1, 2)
    assert part["captions"] == batch["captions"][1::2]


def test_the_diffusion_loss_trains_the_caption_transformer(encoder):
    """Gradients reach the trained half through the DiT's cross-attention; the frozen one has none."""
    from sora_mini.models.configs import VideoDiTConfig
    from sora_mini.models.video_dit import VideoDiT
    from sora_mini.train.joint_text import JointTextDiT
    from sora_mini.train.video import flow_objective, packed_flow_loss

    batches, _ = _tiny_batches()
    dit = VideoDiT(VideoDiTConfig(in_channels=4, patch_size=(1, 2, 2), hidden_size=32, depth=1, num_heads=2,
                                  frame_cond="in_place", text_cond="cross_attn", text_dim=384))
    with torch.no_grad():  # off adaLN-Zero's start (zero gates pass no gradient to the condition)
        for p in dit.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model = JointTextDiT(dit, copy.deepcopy(encoder))
    loss, _ = packed_flow_loss(flow_objective(batches.recipe))(model, batches(0))
    loss.backward()
    words = [p.grad for p in model.text.words.parameters() if p.grad is not None]
    assert words and any(float(g.abs().sum()) > 0 for g in words)
    assert float(model.text.proj.weight.grad.abs().sum()) > 0
    assert all(p.grad is None for p in model.text.frozen.parameters())
    with pytest.raises(ValueError, match="text_dim"):
        JointTextDiT(VideoDiT(dataclasses.replace(dit.config, text_dim=64)), encoder)


def test_a_field_hashed_only_when_set_keeps_old_names():
    from dataclasses import dataclass, field

    from sora_mini.pretrained import HASH_IF_SET, config_hash

    @dataclass(frozen=True)
    class Old:
        a: int = 1

    @dataclass(frozen=True)
    class New:
        a: int = 1
        b: int | None = field(default=None, metadata=HASH_IF_SET)

    New.__name__ = Old.__name__ = "Same"
    assert config_hash(New()) == config_hash(Old())
    assert config_hash(New(b=2)) != config_hash(Old())


def test_snapshots_bring_their_text_encoder(encoder, tmp_path):
    """A snapshot of a joint training loads with its caption transformer; one of a stage trained
    without one, with the frozen MiniLM alone."""
    from types import SimpleNamespace

    from sora_mini.artifacts.video import load_snapshot
    from sora_mini.models.configs import VideoDiTConfig
    from sora_mini.models.video_dit import VideoDiT
    from sora_mini.text.joint import JointTextEncoder
    from sora_mini.train.joint_text import JointTextDiT

    dit = VideoDiT(VideoDiTConfig(in_channels=4, patch_size=(1, 2, 2), hidden_size=32, depth=1, num_heads=2,
                                  frame_cond="in_place", text_cond="cross_attn", text_dim=384))
    trained = copy.deepcopy(encoder)
    torch.nn.init.normal_(trained.proj.weight)
    JointTextDiT(dit, trained).save_pretrained(tmp_path / "joint")
    dit.save_pretrained(tmp_path / "plain")
    pipe = SimpleNamespace(transformer=None, text_encoder=encoder)
    load_snapshot(pipe, tmp_path / "joint")
    assert isinstance(pipe.text_encoder, JointTextEncoder) and pipe.text_encoder.frozen is encoder.frozen
    assert torch.equal(pipe.text_encoder.proj.weight, trained.proj.weight)
    load_snapshot(pipe, tmp_path / "plain")
    assert pipe.text_encoder is encoder.frozen and isinstance(pipe.transformer, VideoDiT)


def test_a_snapshot_reads_with_its_stages_frozen_encoder(encoder, tmp_path):
    """A stage-1 snapshot of a two-stage pipeline is scored with stage 1's encoder, not stage 2's."""
    from types import SimpleNamespace

    from sora_mini.artifacts.video import load_snapshot
    from sora_mini.models.configs import VideoDiTConfig
    from sora_mini.models.video_dit import VideoDiT
    from sora_mini.text.frozen import CompassMiniLM, FrozenMiniLM

    dit = VideoDiT(VideoDiTConfig(in_channels=4, patch_size=(1, 2, 2), hidden_size=32, depth=1, num_heads=2,
                                  frame_cond="in_place", text_cond="cross_attn", text_dim=384))
    stage = tmp_path / "stage1"
    encoder.frozen.save_pretrained(stage / "text_encoder")  # a FrozenMiniLM
    dit.save_pretrained(stage / "snapshots" / "step-000001")
    compass = CompassMiniLM()
    pipe = SimpleNamespace(transformer=None, text_encoder=compass)
    load_snapshot(pipe, stage / "snapshots" / "step-000001")
    assert type(pipe.text_encoder) is FrozenMiniLM
    compass.save_pretrained(stage / "text_encoder")
    load_snapshot(pipe, stage / "snapshots" / "step-000001")
    assert type(pipe.text_encoder) is CompassMiniLM
