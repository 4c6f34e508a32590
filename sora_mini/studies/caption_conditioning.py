"""Notebook 05's experiments on caption conditioning, each a small text-to-IMAGE model (T = 1) of the
text-to-video recipe (``sora_mini.train.video``: latents of the causal autoencoder, Patch n' Pack,
rectified flow, the loss of ``packed_flow_loss``) trained at equal compute (same DiT, data, steps,
tokens per step and seeds) and scored by the evaluator's adherence on held-out detailed prompts.

    encoders       the frozen MiniLM, the CLIP text tower (both cached embeddings) and a
                   ``TransformerTextEncoder`` trained jointly with the DiT (captions encoded each step)
    caption_detail DALL-E 3 (Betker et al. 2023): trained on short captions vs detailed (re-captioned)
                   ones, both asked for detailed prompts, adherence per attribute; third row: the
                   short-caption model given the prompt extended (``extend_prompt``)
    null_guidance  the three null conditions (``NullCondition``: caption dropout and the unconditional
                   input of classifier-free guidance) x the guidance scale: adherence and diversity

``load_or_run(experiment, scale)`` returns the JSON-able results, cached in
``runs/<scale>/caption_<experiment>_v<N>-<hash of the config>/results.json``.
Images: uint8 [H, W, 3] lists; per-seed rows: {"seed", "adherence", "attributes", "loss", "train_s"}.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sora_mini.studies.caption_models import (  # noqa: F401  the study's parts, importable from here too
    ENCODERS,
    EXPERIMENTS,
    HELD_OUT_SEED,
    NO_MASKS,
    PRESETS,
    CaptionBatches,
    CaptionedDiT,
    CaptionStudyConfig,
    adherence,
    build_model,
    diversity,
    generate,
    held_out_prompts,
    held_out_specs,
    image_data,
    references,
    to_images,
    train_arm,
)
from sora_mini.text.null import NULL_KINDS
from sora_mini.train.video import encode_videos


# ----------------------------------------------------------------------------------------------
# The three experiments
# ----------------------------------------------------------------------------------------------
def _row(seed: int, losses: list[float], seconds: float, scores: dict) -> dict:
    return {"seed": seed, "loss": losses, "train_s": round(seconds, 2), **scores}


# what an arm's training depends on (the rest of the config only changes how it is sampled and scored)
TRAIN_FIELDS = ("size", "videos", "max_objects", "hidden_size", "depth", "num_heads", "steps", "tokens_per_step",
                "pack_length", "lr", "caption_dropout")


def fingerprint(module: nn.Module) -> str:
    """A hash of every weight and buffer of ``module`` (what a cached arm was trained with)."""
    h = hashlib.sha1()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def arm_key(cfg, autoencoder, encoder, null_kind: str, seed: int, detailed_share: float, joint: bool) -> str:
    """The key of one trained arm: its training settings, seed, null, caption share, the weights of
    the autoencoder and text encoder it was trained with, and ``RESULTS_VERSION`` (bumped when the
    training changes, so an arm of older code is never reused)."""
    what = {f: getattr(cfg, f) for f in TRAIN_FIELDS}
    what.update(version=RESULTS_VERSION, null=null_kind, seed=seed, detailed_share=detailed_share, joint=joint,
                autoencoder=fingerprint(autoencoder), encoder=fingerprint(encoder))
    return hashlib.sha1(json.dumps(what, sort_keys=True, default=list).encode()).hexdigest()[:12]


def _arm(cfg, autoencoder, encoder, null_kind, seed, data, *, joint=False, device="cpu", cache=None):
    """Encode the training images, build and train one model -> (model, losses, seconds).

    ``cache`` (a folder): an arm trained before with the same key (:func:`arm_key`) is loaded from
    ``cache/arm-<key>/`` instead (its losses and train seconds as measured then), and a new one is
    saved there; the three experiments share their common arm (MiniLM, empty null, detailed captions),
    and an exercise that changes only the sampling trains nothing."""
    from safetensors.torch import load_file, save_file

    from sora_mini.checkpoint import atomic_write

    model = build_model(cfg, autoencoder, encoder, null_kind, train_encoder=joint, seed=seed)
    folder = None if cache is None else Path(cache) / (
        "arm-" + arm_key(cfg, autoencoder, encoder, null_kind, seed, data.detailed_share, joint))
    if folder is not None and (folder / "arm.json").is_file():
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        info = json.loads((folder / "arm.json").read_text())
        return model.to(device), info["losses"], info["train_s"]
    videos = encode_videos(data, autoencoder, encoder, progress=False)
    losses, seconds = train_arm(model, videos, cfg, seed, joint=joint, device=device)
    if folder is not None:  # the weights first, then the record that marks the arm finished
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        atomic_write(folder / "model.safetensors", lambda tmp: save_file(state, tmp))
        text = json.dumps({"losses": losses, "train_s": seconds, "null": null_kind, "seed": seed,
                           "detailed_share": data.detailed_share, "joint": joint})
        atomic_write(folder / "arm.json", lambda tmp: Path(tmp).write_text(text))
    return model, losses, seconds


def run_encoders(cfg: CaptionStudyConfig, autoencoder, encoders: dict, *, device="cpu", cache=None) -> dict:
    """Experiment a: each encoder of ``encoders`` ({name: (make_encoder(seed), joint)}) conditions
    the same DiT, trained at equal compute; adherence on the held-out prompts per seed.
    -> {"config", "prompts", "arms": {name: [per-seed rows]}, "samples": {name: images}}."""
    prompts, data = held_out_prompts(cfg), image_data(cfg)
    out = {"config": dataclasses.asdict(cfg), "prompts": prompts, "arms": {}, "samples": {},
           "references": references(cfg, autoencoder)}
    for name, (make, joint) in encoders.items():
        for seed in cfg.seeds:
            model, losses, secs = _arm(cfg, autoencoder, make(seed), "empty", seed, data, joint=joint, device=device,
                                       cache=cache)
            images = generate(model, autoencoder, prompts, cfg, guidance_scale=cfg.guidance_scale, seed=seed)
            out["arms"].setdefault(name, []).append(_row(seed, losses, secs, adherence(images, prompts)))
            if seed == cfg.seeds[0]:
                out["samples"][name] = to_images(images)
    return out


def run_caption_detail(cfg: CaptionStudyConfig, autoencoder, encoder, *, device="cpu", cache=None) -> dict:
    """Experiment b (DALL-E 3): trained on short captions vs on detailed ones, equal compute, both
    asked for the detailed held-out prompts; third row: the short-caption model given each prompt
    extended (``extend_prompt``: stated attributes kept, so it can only add what was left out)."""
    from sora_mini.text import extend_prompt

    prompts = held_out_prompts(cfg)
    extended = [extend_prompt(p, seed=i) for i, p in enumerate(prompts)]
    arms = {"short captions": [], "detailed captions": [], "short + extension": []}
    out = {"config": dataclasses.asdict(cfg), "prompts": prompts, "extended": extended, "arms": arms, "samples": {},
           "references": references(cfg, autoencoder)}
    for seed in cfg.seeds:
        for name, share in (("short captions", 0.0), ("detailed captions", 1.0)):
            model, losses, secs = _arm(cfg, autoencoder, encoder, "empty", seed, image_data(cfg, share), device=device,
                                       cache=cache)
            images = generate(model, autoencoder, prompts, cfg, guidance_scale=cfg.guidance_scale, seed=seed)
            arms[name].append(_row(seed, losses, secs, adherence(images, prompts)))
            if name == "short captions":
                ext = generate(model, autoencoder, extended, cfg, guidance_scale=cfg.guidance_scale, seed=seed)
                arms["short + extension"].append(_row(seed, losses, secs, adherence(ext, prompts)))
            if seed == cfg.seeds[0]:
                out["samples"][name] = to_images(images)
    return out


def run_null_guidance(cfg: CaptionStudyConfig, autoencoder, encoder, *, device="cpu", cache=None) -> dict:
    """Experiment c: a model per null kind (caption dropout to it, and the unconditional input of
    guidance), sampled at every ``guidance_scales``: adherence on the held-out prompts and diversity
    (``diversity``: ``diversity_samples`` noise seeds for each of the first two prompts).
    -> {"config", "prompts", "arms": {kind: [per-seed {"seed", "loss", "train_s", "scales":
    [{"scale", "adherence", "attributes", "diversity"}]}]}}."""
    prompts, data = held_out_prompts(cfg), image_data(cfg)
    probe = prompts[:2]
    out = {"config": dataclasses.asdict(cfg), "prompts": prompts, "arms": {}}
    for kind in NULL_KINDS:
        for seed in cfg.seeds:
            model, losses, secs = _arm(cfg, autoencoder, encoder, kind, seed, data, device=device, cache=cache)
            scales = []
            for w in cfg.guidance_scales:
                scores = adherence(generate(model, autoencoder, prompts, cfg, guidance_scale=w, seed=seed), prompts)
                reps = [generate(model, autoencoder, probe, cfg, guidance_scale=w, seed=1000 * seed + r)
                        for r in range(cfg.diversity_samples)]  # each [len(probe), 3, 1, H, W]
                div = float(np.mean([diversity(torch.stack([r[i] for r in reps])) for i in range(len(probe))]))
                scales.append({"scale": w, **scores, "diversity": div})
            out["arms"].setdefault(kind, []).append({"seed": seed, "loss": losses, "train_s": round(secs, 2),
                                                     "scales": scales})
    return out


# ----------------------------------------------------------------------------------------------
# Reading the results
# ----------------------------------------------------------------------------------------------
def summarize(results: dict) -> list[dict]:
    """One row per arm of experiment a or b: mean and std over seeds of the adherence and of every
    attribute (None where no prompt states it), the train time."""
    rows = []
    for name, runs in results["arms"].items():
        row = {"arm": name, "seeds": len(runs)}
        for key in ("adherence", "train_s"):
            vals = [r[key] for r in runs]
            row[key], row[key + "_std"] = float(np.mean(vals)), float(np.std(vals))
        for a in runs[0]["attributes"]:
            vals = [r["attributes"][a] for r in runs if r["attributes"][a] is not None]
            row[a] = float(np.mean(vals)) if vals else None
            row[a + "_std"] = float(np.std(vals)) if vals else None
        rows.append(row)
    return rows


def guidance_curves(results: dict) -> dict:
    """Experiment c as curves: {kind: {"scale": [...], "adherence"/"diversity": mean over seeds,
    "adherence_std"/"diversity_std"}}."""
    curves = {}
    for kind, runs in results["arms"].items():
        c = {"scale": [s["scale"] for s in runs[0]["scales"]]}
        for key in ("adherence", "diversity"):
            vals = np.array([[s[key] for s in r["scales"]] for r in runs])  # [seeds, scales]
            c[key], c[key + "_std"] = vals.mean(0).tolist(), vals.std(0).tolist()
        curves[kind] = c
    return curves


def results_table(results: dict, attributes=None) -> str:
    """Experiment a or b as markdown: a row per arm, adherence and each scored attribute as mean ±
    std over seeds ("-" where no prompt states it), then the reference rows in italics (the
    rendered truth, the autoencoder round trip); ``attributes`` None: every one any arm scored."""
    rows = summarize(results)
    attrs = attributes or [a for a in rows[0] if not a.endswith("_std") and a not in
                           ("arm", "seeds", "adherence", "train_s") and any(r[a] is not None for r in rows)]
    pm = lambda r, k: "-" if r.get(k) is None else f"{r[k]:.2f} ± {r[k + '_std']:.2f}"
    lines = ["| arm | adherence | " + " | ".join(attrs) + " | train s |", "|---|---|" + "---|" * len(attrs) + "---|"]
    for r in rows:
        lines.append(f"| {r['arm']} | {pm(r, 'adherence')} | " + " | ".join(pm(r, a) for a in attrs)
                     + f" | {r['train_s']:.1f} |")
    one = lambda v: "-" if v is None else f"{v:.2f}"
    for name, ref in results.get("references", {}).items():
        lines.append(f"| *{name}* | {one(ref['adherence'])} | " + " | ".join(one(ref["attributes"][a]) for a in attrs)
                     + " | |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Get or run, by scale
# ----------------------------------------------------------------------------------------------
RESULTS_VERSION = 2  # bump when the experiments or their scores change: cached results recompute


def study_dir(experiment: str, scale="tiny", *, run_root="runs", **overrides):
    """``<run_root>/<scale>/caption_<experiment>_v<N>-<hash of the config>``."""
    from sora_mini.artifacts import part_dir

    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; choose one of {', '.join(EXPERIMENTS)}")
    cfg = CaptionStudyConfig.from_scale(scale, **overrides)
    return part_dir(run_root, getattr(scale, "name", scale), f"caption_{experiment}_v{RESULTS_VERSION}", cfg)


def encoder_factories(scale, *, run_root="runs", device="cpu", progress=False) -> dict:
    """{name: (make_encoder(seed), trained jointly)} of the three encoders at ``scale``: the frozen
    MiniLM, the trained CLIP's text tower (``get_clip``), a fresh ``TransformerTextEncoder``."""
    from sora_mini.artifacts.text import get_clip
    from sora_mini.text import FrozenMiniLM, TransformerTextEncoder
    from sora_mini.text.config import get_text_config

    minilm = FrozenMiniLM().to(device)
    clip = get_clip(getattr(scale, "name", scale), run_root=run_root, device=device, progress=progress).text

    def fresh(seed):
        torch.manual_seed(seed)
        return TransformerTextEncoder(get_text_config(getattr(scale, "name", scale)).text_encoder).to(device)

    return {"minilm": (lambda seed: minilm, False), "clip": (lambda seed: clip, False), "transformer": (fresh, True)}


def load_or_run(experiment: str, scale="tiny", *, run_root="runs", device="cpu", retrain: bool = False,
                progress: bool = False, **overrides) -> dict:
    """The results of ``experiment`` at ``scale`` (``CaptionStudyConfig.from_scale(scale, **overrides)``),
    from ``study_dir(...)/results.json`` or run on ``device`` (training the autoencoder and CLIP of
    the scale first when they are missing) and saved there atomically."""
    from pathlib import Path

    from sora_mini.artifacts.autoencoder import get_autoencoder
    from sora_mini.artifacts.video import AUTOENCODER_KIND
    from sora_mini.checkpoint import atomic_write
    from sora_mini.paths import run_dir

    path = study_dir(experiment, scale, run_root=run_root, **overrides) / "results.json"
    if path.exists() and not retrain:
        return json.loads(path.read_text())
    cfg = CaptionStudyConfig.from_scale(scale, **overrides)
    name = getattr(scale, "name", scale)
    ae = get_autoencoder(name, kind=AUTOENCODER_KIND, run_root=run_root, device=device, progress=progress).eval()
    factories = encoder_factories(scale, run_root=run_root, device=device, progress=progress)
    cache = run_dir(run_root, name, create=False) / "caption_arms"
    if experiment == "encoders":
        results = run_encoders(cfg, ae, factories, device=device, cache=cache)
    else:
        make, _ = factories[cfg.null_encoder if experiment == "null_guidance" else "minilm"]
        run = run_null_guidance if experiment == "null_guidance" else run_caption_detail
        results = run(cfg, ae, make(0), device=device, cache=cache)
    text = json.dumps(results)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return json.loads(text)  # as a cached load returns it (lists, not tuples)
