"""The CLIP-like pair: temperature, a training step lowers the loss, recall@k, round trip."""

import math

import pytest
import torch

from sora_mini.text.clip import CLIPConfig, VideoTextCLIP, recall_at_k, retrieval_recall
from sora_mini.text.config import TextTrainConfig
from sora_mini.text.data import CaptionedVideos
from sora_mini.train.text import train_clip

CFG = CLIPConfig(text_hidden=32, text_layers=1, text_heads=2, video_channels=(8, 16), embed_dim=32)


@pytest.fixture(scope="module")
def data():
    return CaptionedVideos(12, seed=3, sizes=((32, 32),), frames=(5,))


def test_temperature_starts_as_clips_and_is_clamped():
    clip = VideoTextCLIP(CFG)
    assert math.isclose(clip.scale().item(), 1 / 0.07, rel_tol=1e-5)
    with torch.no_grad():
        clip.logit_scale.fill_(10.0)
    assert math.isclose(clip.scale().item(), 100.0, rel_tol=1e-5)


def test_training_lowers_the_contrastive_loss(tmp_path):
    torch.manual_seed(0)
    clip = VideoTextCLIP(CFG)
    small = CaptionedVideos(8, seed=3, sizes=((32, 32),), frames=(5,))  # each batch: all 8 videos
    batch = small.items(range(8))
    with torch.no_grad():
        before = clip.loss(batch["video"], batch["detailed"])[0].item()
    history = train_clip(clip, small, TextTrainConfig(steps=20, batch_size=8, lr=5e-3, warmup_steps=0,
                                                      caption="detailed"),
                         progress=False, ckpt_path=tmp_path / "ck", log_path=tmp_path / "log.jsonl")
    with torch.no_grad():
        after = clip.loss(batch["video"], batch["detailed"])[0].item()
    assert after < before - 0.1, (before, after)
    assert history[-1]["step"] == 20 and (tmp_path / "log.jsonl").is_file()


def test_recall_at_k_on_known_similarities():
    assert recall_at_k(torch.eye(6), (1, 5)) == {"@1": 1.0, "@5": 1.0}
    anti = 1 - torch.eye(6)  # the right item always ranks last (6th of 6)
    assert recall_at_k(anti, (1, 5)) == {"@1": 0.0, "@5": 0.0}
    sim = torch.eye(4)
    sim[0, 1] = 2.0  # query 0's right item ranks second
    assert recall_at_k(sim, (1, 2)) == {"@1": 0.75, "@2": 1.0}


def test_retrieval_recall_reports_both_directions_and_round_trip(data, tmp_path):
    clip = VideoTextCLIP(CFG).eval()
    vids = [data.model_video(i) for i in range(len(data))]
    r = retrieval_recall(clip, vids, data.detailed)
    assert set(r) == {"t2v@1", "t2v@5", "v2t@1", "v2t@5", "n", "chance@1"} and r["n"] == 12
    clip.save_pretrained(tmp_path / "clip")
    again = VideoTextCLIP.from_pretrained(tmp_path / "clip")
    b = data.items(range(4))
    with torch.no_grad():
        torch.testing.assert_close(again(b["video"], b["short"]), clip(b["video"], b["short"]), atol=0, rtol=0)
    assert retrieval_recall(again, vids, data.detailed) == r
