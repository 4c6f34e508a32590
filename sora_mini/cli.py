"""The ``sora-mini`` command: train and sample the text-to-video model, world videos, the
evaluator, notebooks and benchmarks.

    sora-mini plan --scale small                  # what training will cost, before it runs
    sora-mini train --scale tiny                  # train (or resume) into runs/tiny/text_to_video-<hash>
    sora-mini train --scale tiny --data my_clips  # on a folder of clips + .txt captions
    sora-mini sample "a red circle moves right" --scale tiny --frames 9 --out red.gif
    sora-mini sample "a red circle moves right" --mode i2v --image first.png      # also: extend,
        # connect, edit, loop, inpaint, long (see `sora-mini sample --help`)
    sora-mini world --seed 3 --height 36 --width 64 --frames 16 --out clip.gif
    sora-mini evaluate clip.gif --caption "a red circle moves right"
    sora-mini export-world data/my_clips --count 20
    sora-mini run-notebooks --scale tiny
    sora-mini bench [name ...]

Each command prints JSON (or a table) on stdout and exits non-zero with a one-line message on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sora_mini.modes import MODES


def _cmd_world(args) -> dict:
    from sora_mini.videoio import write_video
    from sora_mini.world import render, sample_spec
    from sora_mini.world.captions import detailed_caption, short_caption
    from sora_mini.world.spec import SceneSpec

    if args.spec:
        text = args.spec if args.spec.lstrip().startswith("{") else Path(args.spec).read_text()
        spec = SceneSpec.from_json(text)
    else:
        spec = sample_spec(args.seed)
    video, annotations = render(spec, args.height, args.width, args.frames)
    result = {
        "short_caption": short_caption(spec),
        "detailed_caption": detailed_caption(spec),
        "spec": spec.to_dict(),
        "shape": list(video.shape),
    }
    if args.out:
        write_video(args.out, video, fps=args.fps)
        result["out"] = str(args.out)
    if args.annotations:
        result["annotations"] = annotations.to_dict()
    return result


def _cmd_evaluate(args) -> dict:
    from sora_mini.evaluate import evaluate_video
    from sora_mini.videoio import read_video

    video = read_video(args.video)
    result = evaluate_video(video, args.caption)
    return {"video": str(args.video), "shape": list(video.shape), **result}


def _cmd_export(args) -> dict:
    from sora_mini.config import get_config
    from sora_mini.world.datasets import export_world_samples

    world = get_config(args.scale).world
    paths = export_world_samples(args.folder, args.count, seed=args.seed, sizes=world.sizes,
                                 frames=world.frames, fmt=args.format)
    return {"folder": str(args.folder), "written": len(paths)}


def _cmd_run_notebooks(args) -> None:
    from sora_mini.runner import NotebookFailed, run_notebooks

    try:
        run_notebooks(args.scale, only=args.only or None, seed=args.seed, run_dir_name=args.run_dir,
                      cell_timeout=args.cell_timeout)
    except NotebookFailed as e:
        print(f"sora-mini: {e}", file=sys.stderr)
        sys.exit(1)


def _cmd_bench(args) -> None:
    from sora_mini.runner import run_benchmarks

    run_benchmarks(args.names or None, quick=args.quick, run_dir_name=args.run_dir)


def _cmd_train(args) -> dict:
    import time

    from sora_mini.artifacts.stages import stage_chain
    from sora_mini.artifacts.store import TRAINER_NAME, training_info
    from sora_mini.artifacts.video import is_trained
    from sora_mini.checkpoint import checkpoint_exists
    from sora_mini.config import resolve_device
    from sora_mini.pipeline import train_pipeline, trained_dir

    options = {"run_root": args.run_root, "data_folder": args.data,
               **({"steps": args.steps} if args.steps is not None else {}),
               **({"minutes": args.minutes} if args.minutes is not None else {})}
    folder = trained_dir(args.scale, **options)
    has_checkpoint = checkpoint_exists(folder / TRAINER_NAME)
    if args.resume and not (has_checkpoint or is_trained(folder)):
        raise FileNotFoundError(f"nothing to resume: no checkpoint of these settings at {folder}; drop "
                                "--resume to start this training (a run resumes from its checkpoint anyway)")
    status = "started" if args.restart or not has_checkpoint else "resumed"
    status = "already trained" if is_trained(folder) and not args.restart else status
    t0 = time.perf_counter()
    folder = train_pipeline(args.scale, device=resolve_device(args.device), retrain=args.restart, **options)
    results = [training_info(f)["result"] for f in stage_chain(folder)]  # the stages, first to last
    stages = [{"folder": str(f), "steps": r["steps"], "train_seconds": r["train_seconds"]}
              for f, r in zip(stage_chain(folder), results)]
    return {"folder": str(folder), "status": status, "steps": sum(r["steps"] for r in results),
            "seconds": round(time.perf_counter() - t0, 1),
            "train_seconds": round(sum(r["train_seconds"] for r in results), 1),
            "data_seconds": round(sum(r["data_seconds"] for r in results), 1),
            "final_loss": results[-1]["final"].get("loss"), "stages": stages}


MODE_INFO = ("given_frames", "given_latent_frames", "direction", "overlap", "strength", "box", "seam",
             "segments", "segment_starts")  # what `sample` adds to its JSON for a mode


def _cmd_sample(args) -> dict:
    from sora_mini.config import resolve_device
    from sora_mini.pipeline import SoraMiniPipeline, resolve_pipeline_dir
    from sora_mini.videoio import VIDEO_SUFFIXES, read_video, write_video

    if Path(args.out).suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"--out {args.out}: the suffix picks the format; use one of {', '.join(VIDEO_SUFFIXES)}")
    inputs = {name: read_video(path) for name, path in (("image", args.image), ("video", args.video),
                                                         ("video2", args.video2)) if path is not None}
    folder = resolve_pipeline_dir(args.model or args.scale, run_root=args.run_root)
    pipe = SoraMiniPipeline.from_pretrained(folder, device=resolve_device(args.device))
    out = pipe.generate(args.mode, args.prompt, **inputs, box=args.box, direction=args.direction,
                        strength=args.strength, overlap=args.overlap, segments=args.segments,
                        height=args.height, width=args.width, num_frames=args.frames,
                        num_inference_steps=args.steps, guidance_scale=args.guidance, sampler=args.sampler,
                        negative_prompt=args.negative, seed=args.seed, extend=not args.no_extend,
                        guidance_interval=args.guidance_interval)
    write_video(args.out, out.video, fps=args.fps)
    i = out.info
    result = {"prompt": args.prompt, "used_prompt": i["used_prompts"][0],
              "size": [int(out.video.shape[0]), i["height"], i["width"]], "seed": i["seed"],
              "sampler": i["sampler"], "steps": i["steps"], "guidance": i["guidance_scale"],
              "guidance_interval": i["guidance_interval"], "seconds": i["seconds"], "out": str(args.out),
              "model": str(folder), "mode": args.mode}
    result.update({k: i[k] for k in MODE_INFO if k in i})
    return result


def _cmd_plan(args) -> dict | None:
    from sora_mini.artifacts.plan import plan_training
    from sora_mini.config import resolve_device

    plan = plan_training(args.scale, run_root=args.run_root, measure=not args.no_measure,
                         device=resolve_device(args.device))
    if args.json:
        return plan
    print(format_plan(plan))
    return None


def _si(n: float, unit: str = "") -> str:
    for div, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g} {prefix}{unit}"
    return f"{n:.3g} {unit}".rstrip()


def format_plan(plan: dict) -> str:
    """The human-readable form of :func:`sora_mini.artifacts.plan.plan_training`'s dict."""
    later = sorted(int(k[5:]) for k in plan if k.startswith("stage") and k[5:].isdigit())
    lines = [f"text-to-video training at scale {plan['scale']}", *_format_stage(plan, "stage 1" if later else "")]
    for k in later:
        lines += _format_stage(plan[f"stage{k}"], f"stage {k} (from stage {k - 1}'s weights)")
    every = "both stages" if len(later) == 1 else f"all {len(later) + 1} stages"
    if later:
        lines.append(f"  FLOPs, {every}  {_si(plan['flops_total'])}")
    if plan["seconds"] is not None:
        s = plan["seconds"]
        both = f" for {every}" if later else ""
        lines += [f"  peak memory   ~{plan['peak_memory_bytes'] / 2**20:.0f} MiB",
                  f"  wall time     ~{s['total']:.0f} s{both}, autoencoder {s['autoencoder']:.0f} s included"]
    return "\n".join(lines)


def _format_stage(plan: dict, name: str) -> list[str]:
    d, t = plan["data"], plan["tokens_per_example"]
    sizes = ", ".join(f"{h}x{w}" for h, w in d["sizes"])
    lines = [f"{name + ' ' if name else ''}-> {plan['folder']}",
             f"  data          {d['videos']} clips; sizes {sizes}; frames {', '.join(map(str, d['frames']))}",
             f"  tokens        per example min {t['min']}, mean {t['mean']:.1f}, max {t['max']}",
             (f"  per step      {plan['examples_per_step']:.1f} examples, {plan['tokens_per_step']:.0f} tokens "
              f"in {plan['rows_per_step']:.1f} rows of {plan['pack_length']}; {plan['steps']} steps"),
             f"  parameters    {_si(plan['parameters'])}",
             (f"  FLOPs         {_si(plan['flops_per_step'])} per step, "
              f"{_si(plan['flops_per_step'] * plan['steps'])} in the stage")]
    if plan["seconds"] is not None:
        s, m = plan["seconds"], plan["memory"]
        mib = {k: m[k] / 2**20 for k in ("peak_rss_bytes", "latent_set_bytes")}
        lines += [(f"  memory        ~{plan['peak_memory_bytes'] / 2**20:.0f} MiB: {mib['peak_rss_bytes']:.0f} MiB "
                   f"{m['method']} + the latent set {mib['latent_set_bytes']:.0f} MiB"),
                  (f"  time          data {s['data']:.0f} s + training {s['train']:.0f} s "
                   f"({s['step']:.3g} s a step, measured)")]
    return lines


STUDIES = {"compression-flicker": "sora_mini.studies.compression_flicker",
           "text-budget": "sora_mini.studies.text_budget",
           "motion-profile": "sora_mini.studies.motion_profile"}


def _cmd_study(args) -> None:
    import importlib

    importlib.import_module(STUDIES[args.name]).main(args.args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sora-mini", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    w = sub.add_parser("world", help="render one world video and print its captions and spec as JSON")
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--height", type=int, default=32)
    w.add_argument("--width", type=int, default=32)
    w.add_argument("--frames", type=int, default=16)
    w.add_argument("--fps", type=float, default=8)
    w.add_argument("--spec", help="render this scene spec (JSON text or a .json file) instead of sampling one")
    w.add_argument("--out", help="write the video here (.gif, .mp4 or .npz)")
    w.add_argument("--annotations", action="store_true", help="include per-frame boxes and events")
    w.set_defaults(func=_cmd_world)

    e = sub.add_parser("evaluate", help="analyse a video file (gif, mp4, npz) against a caption")
    e.add_argument("video")
    e.add_argument("--caption", required=True)
    e.set_defaults(func=_cmd_evaluate)

    x = sub.add_parser("export-world", help="write world samples as a folder of clips + .txt captions")
    x.add_argument("folder")
    x.add_argument("--count", type=int, default=16)
    x.add_argument("--seed", type=int, default=0)
    x.add_argument("--scale", default="tiny", help="whose size/duration mix to sample (default tiny)")
    x.add_argument("--format", default="gif", choices=["gif", "mp4", "npz"])
    x.set_defaults(func=_cmd_export)

    r = sub.add_parser("run-notebooks", help="execute every notebook in order with papermill")
    r.add_argument("--scale", default="tiny")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--only", nargs="*", help="notebook prefixes, e.g. 00 01")
    r.add_argument("--run-dir", default="runs")
    r.add_argument("--cell-timeout", type=int, default=None, help="seconds per cell (default by scale)")
    r.set_defaults(func=_cmd_run_notebooks)

    b = sub.add_parser("bench", help="run the benchmarks under benchmarks/ (figures to runs/bench/)")
    b.add_argument("names", nargs="*")
    b.add_argument("--quick", action="store_true", help="fewer repetitions")
    b.add_argument("--run-dir", default="runs")
    b.set_defaults(func=_cmd_bench)

    t = sub.add_parser("train", help="train (or resume) the text-to-video pipeline of a scale, every stage of its recipe; prints JSON")
    t.add_argument("--scale", default="tiny")
    t.add_argument("--data", help="train on this folder of clips (.mp4/.gif/.npz + same-name .txt captions), "
                                  "each center-cropped to a size the model takes, instead of world renders")
    again = t.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="require a checkpoint to resume (a run resumes from its checkpoint anyway)")
    again.add_argument("--restart", action="store_true", help="delete this training's folder and start over")
    t.add_argument("--run-root", default="runs")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    budget = t.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="optimiser steps (default: the scale's; a new folder)")
    budget.add_argument("--minutes", type=float, help="train for this many minutes instead: the steps that "
                                                      "fit are predicted from the first steps' rate (a new folder)")
    t.set_defaults(func=_cmd_train)

    g = sub.add_parser("sample", help="generate a video from a prompt with a trained pipeline; prints JSON")
    g.add_argument("prompt")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--model", help="a pipeline folder (what `sora-mini train` prints)")
    src.add_argument("--scale", default="tiny", help="the pipeline trained under --run-root, else the shipped one")
    g.add_argument("--run-root", default="runs")
    g.add_argument("--height", type=int, help="pixels (default: the pipeline's)")
    g.add_argument("--width", type=int)
    g.add_argument("--frames", type=int)
    g.add_argument("--steps", type=int, help="sampling steps")
    g.add_argument("--guidance", type=float, help="classifier-free guidance scale")
    g.add_argument("--guidance-interval", type=float, nargs=2, metavar=("LO", "HI"),
                   help="guide only while LO < t <= HI (flow time, 1 = noise); default: every step")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--sampler", help="the sampler's name (default: the pipeline's)")
    g.add_argument("--negative", help="negative prompt (default: the empty caption)")
    g.add_argument("--no-extend", action="store_true", help="use the prompt as it is, not extended to a "
                                                            "detailed caption")
    g.add_argument("--out", default="sample.gif", help="output file: .gif, .mp4 or .npz (default sample.gif)")
    g.add_argument("--fps", type=float, default=8)
    g.add_argument("--device", default="auto")
    m = g.add_argument_group("prompting modes (sora_mini.modes; an input is center-cropped to a size the model takes)")
    m.add_argument("--mode", default="t2v", choices=list(MODES), help="what to generate (default t2v): "
                   + "; ".join(f"{k}: {v[1]}" for k, v in MODES.items()))
    m.add_argument("--image", help="i2v: the first frame (png, jpg, ... or a one-frame clip)")
    m.add_argument("--video", help="extend / connect / edit / inpaint: the input clip (gif, mp4, npz)")
    m.add_argument("--video2", help="connect: the clip to end on")
    m.add_argument("--direction", choices=["forward", "backward"], help="extend: in which direction (default forward)")
    m.add_argument("--strength", type=float, help="edit: noise level in [0, 1] (0 = the input, 1 = from noise)")
    m.add_argument("--box", type=int, nargs=4, metavar=("Y0", "X0", "Y1", "X1"),
                   help="inpaint: the box to regenerate, pixels of the input (Y1, X1 exclusive)")
    m.add_argument("--segments", type=int, help="long: how many clips (default 3)")
    m.add_argument("--overlap", type=int, help="extend / connect / loop / long: latent frames of context per side")
    g.set_defaults(func=_cmd_sample)

    n = sub.add_parser("plan", help="tokens, parameters, FLOPs, memory and wall time of a training, "
                                    "before it runs (measured in seconds)")
    n.add_argument("--scale", default="tiny")
    n.add_argument("--run-root", default="runs")
    n.add_argument("--device", default="cpu", help="where to measure the steps (default cpu)")
    n.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    n.add_argument("--no-measure", action="store_true", help="counts only: no timing, no memory")
    n.set_defaults(func=_cmd_plan)

    s = sub.add_parser("study", help="rerun a study (a claim measured); its own options follow the name")
    s.add_argument("name", choices=sorted(STUDIES))
    s.add_argument("args", nargs=argparse.REMAINDER, help="the study's options (see --help after the name)")
    s.set_defaults(func=_cmd_study)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"sora-mini {args.command}: error: {e}", file=sys.stderr)
        sys.exit(2)
    if result is not None:
        print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
