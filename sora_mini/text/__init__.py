"""Caption conditioning: the caption tokenizer, text encoders behind one interface, the null
condition of classifier-free guidance, a CLIP-like video-text pair, a video captioner and prompt
extension.

    encoder.encode(prompts) -> TextEmbedding(tokens [B, L, D], mask [B, L], pooled [B, D])

Encoders: ``TransformerTextEncoder`` (trained from scratch with the diffusion model), the text
tower of ``VideoTextCLIP`` (trained contrastively), ``FrozenMiniLM`` (all-MiniLM-L6-v2, frozen), and
``JointTextEncoder`` (MiniLM's tokens followed by those of a caption transformer trained with the
text-to-video model).
Bad prompts are refused or warned about with one clear message each (``sora_mini.text.prompts``).
"""

from sora_mini.text.captioner import CaptionerConfig, VideoCaptioner
from sora_mini.text.clip import CLIPConfig, VideoTextCLIP, retrieval_recall
from sora_mini.text.config import TEXT_PRESETS, TextConfig, get_text_config
from sora_mini.text.embedding import TextEmbedding, TextEncoder, masked_mean, whitening
from sora_mini.text.encoders import TextEncoderConfig, TransformerTextEncoder
from sora_mini.text.extend import extend_prompt, extend_spec
from sora_mini.text.frozen import FrozenMiniLM, FrozenMiniLMConfig
from sora_mini.text.joint import JointTextConfig, JointTextEncoder
from sora_mini.text.null import NULL_KINDS, NullCondition, NullConditionConfig
from sora_mini.text.prompts import PromptError, check_prompts
from sora_mini.text.scoring import score_captions
from sora_mini.text.tokenizer import build_tokenizer, load_tokenizer

__all__ = ["NULL_KINDS", "TEXT_PRESETS", "CLIPConfig", "CaptionerConfig", "FrozenMiniLM",
           "FrozenMiniLMConfig", "JointTextConfig", "JointTextEncoder", "NullCondition", "NullConditionConfig", "PromptError", "TextConfig",
           "TextEmbedding", "TextEncoder", "TextEncoderConfig", "TransformerTextEncoder", "VideoCaptioner",
           "VideoTextCLIP", "build_tokenizer", "check_prompts", "extend_prompt", "extend_spec",
           "get_text_config", "load_tokenizer", "masked_mean", "retrieval_recall", "score_captions", "whitening"]
