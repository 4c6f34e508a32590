"""The ``sora-mini`` command: world videos, the evaluator, notebooks and benchmarks.

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


STUDIES = {"compression-flicker": "sora_mini.studies.compression_flicker",
           "text-budget": "sora_mini.studies.text_budget"}


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
