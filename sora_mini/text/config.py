"""Scale presets of the text parts: ``TextConfig`` per scale (``tiny``, ``small``, ``base``).

The lead wires one into ``sora_mini.config`` later; until then ``get_text_config(scale)`` reads
them here. ``tiny`` trains each part in seconds (numbers not meaningful); ``small`` is sized for a
laptop CPU (the comment above it says how its times were measured); ``base`` for one GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sora_mini.config import scale_preset
from sora_mini.pretrained import HASH_IF_SET
from sora_mini.text.captioner import CaptionerConfig
from sora_mini.text.clip import CLIPConfig
from sora_mini.text.encoders import TextEncoderConfig

TEXT_ENCODERS = ("transformer", "clip", "minilm")


@dataclass(frozen=True)
class TextDataConfig:
    """The world videos CLIP and the captioner train on (the held-out split uses other seeds)."""

    sizes: tuple[tuple[int, int], ...] = ((32, 32),)
    frames: tuple[int, ...] = (5,)
    max_objects: int = 3
    train_videos: int = 64
    eval_videos: int = 32
    seed: int = 0


@dataclass(frozen=True)
class TextTrainConfig:
    """One recipe's optimisation settings (flat: ``config_hash`` keys the cache with it)."""

    steps: int = 30
    batch_size: int = 16
    lr: float = 2e-3
    warmup_steps: int = 3
    weight_decay: float = 0.0
    caption: str = "both"  # CLIP: "short", "detailed" or "both" (alternating per step)
    # the captioner's video encoder: None trains its own from scratch; "clip" starts it from the
    # scale's trained CLIP video tower (contrastively pre-trained on the same world: it already tells
    # colours, shapes and places apart), as captioners start from a pre-trained image encoder
    video_init: str | None = field(default=None, metadata=HASH_IF_SET)
    freeze_video: bool | None = field(default=None, metadata=HASH_IF_SET)  # and keeps it frozen
    # the recipe's own training clips (None: the preset's ``TextDataConfig``): their lengths and number
    frames: tuple[int, ...] | None = field(default=None, metadata=HASH_IF_SET)
    videos: int | None = field(default=None, metadata=HASH_IF_SET)

    def __post_init__(self):
        if self.video_init not in (None, "clip"):
            raise ValueError(f"video_init must be None or 'clip', got {self.video_init!r}")
        if self.freeze_video and self.video_init is None:
            raise ValueError("freeze_video keeps a pre-trained video encoder frozen: set video_init='clip' too")
        if self.frames is not None and (not self.frames or min(self.frames) < 1):
            raise ValueError(f"frames lists the clip lengths to train on (each >= 1), got {self.frames!r}")
        if self.videos is not None and self.videos < 1:
            raise ValueError(f"videos is the number of training videos (>= 1), got {self.videos}")


@dataclass(frozen=True)
class TextConfig:
    """Everything text: which encoder conditions the diffusion model, its null condition, the
    caption dropout of classifier-free guidance, and the trained parts' sizes and recipes."""

    name: str = "tiny"
    encoder: str = "transformer"  # one of TEXT_ENCODERS
    null_kind: str = "learned"  # one of sora_mini.text.null.NULL_KINDS
    caption_dropout: float = 0.1
    text_encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    clip: CLIPConfig = field(default_factory=CLIPConfig)
    captioner: CaptionerConfig = field(default_factory=CaptionerConfig)
    data: TextDataConfig = field(default_factory=TextDataConfig)
    clip_train: TextTrainConfig = field(default_factory=TextTrainConfig)
    captioner_train: TextTrainConfig = field(default_factory=TextTrainConfig)
    # a second captioner stage (None: none): the first stage's weights trained further on the recipe's
    # ``frames`` / ``videos`` (longer clips, as the video model's later stages), ``video_init`` unused
    captioner_finetune: TextTrainConfig | None = field(default=None, metadata=HASH_IF_SET)

    def __post_init__(self):
        if self.captioner_finetune is not None and self.captioner_finetune.video_init is not None:
            raise ValueError("captioner_finetune starts from the first captioner stage's weights: leave its "
                             "video_init unset")
        if self.encoder not in TEXT_ENCODERS:
            raise ValueError(f"unknown text encoder {self.encoder!r}; choose one of {', '.join(TEXT_ENCODERS)}")


TEXT_PRESETS: dict[str, TextConfig] = {
    "tiny": TextConfig(
        name="tiny",
        text_encoder=TextEncoderConfig(hidden_size=32, layers=1, heads=2),
        clip=CLIPConfig(text_hidden=32, text_layers=1, text_heads=2, video_channels=(8, 16), embed_dim=32),
        captioner=CaptionerConfig(video_channels=(8, 16), hidden_size=32, layers=1, heads=2),
    ),
    # small: 9-frame videos of 32x32, 32x48, 48x32; on 4096 of them CLIP's 1500 steps of batch 64 took
    # 437 s on an idle native-bf16 2-core CPU (held-out detailed-caption t2v recall@1 0.98 of 256, chance 0.004)
    "small": TextConfig(
        name="small",
        text_encoder=TextEncoderConfig(hidden_size=128, layers=3, heads=4),
        clip=CLIPConfig(text_hidden=128, text_layers=3, text_heads=4, video_channels=(32, 64, 128),
                        embed_dim=128),
        # video_positions=4 with video_attention_layers=2 (two transformer layers over the video tokens
        # before the decoder, each token knowing where it is): the only video encoder measured here that
        # learned a move from a turn. Over 1000 steps from CLIP it was ahead of every other option on
        # every hard attribute (region 0.99, motion 0.84, direction 0.92, event time 0.82, direction2
        # 0.64); at 3000 steps motion 0.97, event time 0.96, direction2 0.86, the rest 0.99-1.00 (3426 s;
        # without the two: 0.86 / 0.85 / 0.58). Off: video_downsample=2, video_differences, and the losses
        # aimed at the turn (motion_loss=1, focal_gamma=2), each measured over 1000 steps (README).
        captioner=CaptionerConfig(video_channels=(32, 64, 128), hidden_size=128, layers=3, heads=4,
                                  video_positions=4, video_attention_layers=2),
        # 16,384 training videos (4096 before): measured at small on a 2-core AVX2-only CPU, CLIP on them
        # t2v@1 0.96 (0.98 on 4096) in 3078 s, and the captioner below gains on every hard attribute
        data=TextDataConfig(sizes=((32, 32), (32, 48), (48, 32)), frames=(9,), train_videos=16384,
                            eval_videos=256),
        clip_train=TextTrainConfig(steps=1500, batch_size=64, lr=1e-3, warmup_steps=50),
        # the captioner's video encoder starts from the trained CLIP's video tower and trains on
        # (measured at small, 256 held-out videos; colour, shape, region, motion, direction, event time,
        # direction2): with the attention layers above, 3000 steps on 16,384 videos (3235 s, 2-core AVX2
        # CPU) 1.00 / 1.00 / 1.00 / 0.97 / 0.99 / 0.96 / 0.86, every caption parsed. Without them (the
        # figures below): 3000 steps on 16,384 videos (2797 s) 1.00 / 0.99 / 0.99 / 0.86 /
        # 0.96 / 0.85 / 0.58, 99.2 % parsed; 1000 steps on them 1.00 / 0.99 / 0.94 / 0.82 / 0.87 / 0.76 /
        # 0.48. On 4096 videos: 3000 steps (917 s, native-bf16 CPU) 0.99 / 0.98 / 0.97 / 0.89 / 0.93 /
        # 0.79 / 0.46; 1000 steps 0.99 / 0.98 / 0.87 / 0.78 / 0.78 / 0.58 / 0.04; 1000 steps frozen 0.99
        # / 0.81 / 0.45 / 0.71 / 0.37 (colour .. direction); from scratch (palette order) 0.54 / 0.39 /
        # 0.47 / 0.27 / 0.15
        captioner_train=TextTrainConfig(steps=3000, batch_size=32, lr=1e-3, warmup_steps=50, video_init="clip"),
        # a second stage on the same 9-frame clips (more training, a new warmup and cosine at lr 3e-4):
        # measured at small, 1500 steps after the 3000 above (1694 s, 2-core AVX2 CPU), on the 256
        # held-out videos motion 0.97 -> 0.99, direction 0.99 -> 1.00, event time 0.96 -> 0.97,
        # direction2 0.86 -> 0.92, exact caption 0.93 -> 0.96, the rest 1.00, every caption parsed.
        # On 17-frame clips instead (1000 steps, lr 3e-4, 2015 s) it scored direction2 0.86 on 17-frame
        # clips and lost on 9-frame ones (direction2 0.72, event time 0.92), so the stage stays on 9 frames.
        # 3000 steps instead of 1500 (3640 s): direction2 0.92 again, motion 0.98, event time 0.98, exact 0.95.
        # On 2048 other held-out clips that stage scored direction2 0.87 (late turns 0.76) against 0.97 on
        # its own training clips: a generalisation gap. So the stage trains on 49,152 clips (three times
        # the first stage's; 1682 s): on those 2048 clips direction2 0.875 -> 0.904 (+29 / -14 turns,
        # p = 0.03), event time 0.956 -> 0.969 (p = 0.004), motion 0.98, exact 0.94 -> 0.95
        captioner_finetune=TextTrainConfig(steps=1500, batch_size=32, lr=3e-4, warmup_steps=50, frames=(9,),
                                           videos=49152),
    ),
    "base": TextConfig(
        name="base",
        encoder="minilm",
        text_encoder=TextEncoderConfig(hidden_size=384, layers=6, heads=6),
        clip=CLIPConfig(text_hidden=256, text_layers=4, text_heads=4, video_channels=(64, 128, 256),
                        embed_dim=256),
        captioner=CaptionerConfig(video_channels=(64, 128, 256), hidden_size=256, layers=4, heads=4),
        data=TextDataConfig(sizes=((64, 64), (64, 112), (112, 64)), frames=(17,), train_videos=65536,
                            eval_videos=1024),
        clip_train=TextTrainConfig(steps=20000, batch_size=256, lr=5e-4, warmup_steps=500),
        captioner_train=TextTrainConfig(steps=20000, batch_size=64, lr=5e-4, warmup_steps=500),
    ),
}


def get_text_config(scale: str | TextConfig = "tiny") -> TextConfig:
    """The text preset of ``scale``; a clear error for an unknown name."""
    if isinstance(scale, TextConfig):
        return scale
    return scale_preset(TEXT_PRESETS, scale)
