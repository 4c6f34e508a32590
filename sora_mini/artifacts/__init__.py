"""Get-or-train by scale: every trained part a notebook needs lives in its own folder under
``runs/<scale>/`` and is trained there, with the scale's preset, when it is missing.

One signature for every get-or-train helper (here and in the studies)::

    get_<part>(scale, *, run_root="runs", device="cpu", retrain=False, progress=True, **part_options)

A part's folder is named by what it is and a hash of its WHOLE config (architecture, training
recipe, data), e.g. ``runs/tiny/autoencoder_3d_kl-1a2b3c4d/``, so a config change trains a new
folder and never overwrites another (``store``: the folder layout, ``training_info``,
``training_log``).

``autoencoder``  ``get_autoencoder(scale, kind=...)``, ``load_autoencoder``, ``autoencoder_dir``
``text``         ``get_clip``, ``get_captioner``, ``get_text_encoder``, ``text_part_dir``
"""

from sora_mini.artifacts.autoencoder import (
    AUTOENCODER_KINDS,
    DEFAULT_AUTOENCODER,
    autoencoder_config,
    autoencoder_dir,
    autoencoder_training,
    get_autoencoder,
    load_autoencoder,
)
from sora_mini.artifacts.store import (
    LOG_NAME,
    TRAINER_NAME,
    TRAINING_NAME,
    clear_part,
    is_complete,
    part_dir,
    part_key,
    training_info,
    training_log,
    write_training_info,
)
from sora_mini.artifacts.text import get_captioner, get_clip, get_text_encoder, text_part_dir

__all__ = [
    "AUTOENCODER_KINDS", "DEFAULT_AUTOENCODER", "LOG_NAME", "TRAINER_NAME", "TRAINING_NAME",
    "autoencoder_config", "autoencoder_dir", "autoencoder_training", "clear_part", "get_autoencoder",
    "get_captioner", "get_clip", "get_text_encoder", "is_complete", "load_autoencoder", "part_dir",
    "part_key", "text_part_dir", "training_info", "training_log", "write_training_info",
]
