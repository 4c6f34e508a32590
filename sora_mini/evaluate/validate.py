"""Validate the evaluator on the world's ground truth: is every attribute read back from pixels?

``validate_evaluator(n, seed, sizes, frames) -> ValidationReport``: renders ``n`` held-out specs
(seeds from ``spec_seed(seed, i)``, cycling through every size x duration), analyses each video
and scores it (1) against its own spec, where adherence should be ~1 for every attribute, and
(2) against the next video's spec (a mismatched pair), where it should fall to chance. Two chance
levels are printed: ``chance`` scores the mismatched pairs with the *true* attributes (the same
matching, a perfect analyzer), ``vocab`` is ``sum_v p(v)^2`` over the sampled values.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from sora_mini.evaluate.analyzer import VideoAnalyzer
from sora_mini.evaluate.metrics import SCORED, score_adherence
from sora_mini.world.captions import caption_attributes
from sora_mini.world.render import render
from sora_mini.world.sample import sample_spec, spec_seed
from sora_mini.world.spec import DIRECTIONS, SPEEDS, SceneSpec, event_frame

WORLD_SIZES = ((32, 32), (32, 56), (56, 32), (32, 64), (48, 48))  # 1:1, 16:9, 9:16, 2:1
WORLD_FRAMES = (1, 5, 9, 17)


def true_attributes(spec: SceneSpec, frames: int) -> list[dict]:
    """What a perfect analyzer would report for ``spec`` rendered with ``frames`` frames."""
    out = []
    for o in caption_attributes(spec).objects:
        d = o.stated()
        d["event_frame"] = event_frame(o.event_time, frames) if o.event_time else None
        out.append(d)
    return out


def unobservable_turns(spec: SceneSpec, annotations) -> set[int]:
    """Objects whose turn no pixel shows: after its bounces the object already heads ``direction2``
    (or its mirror image, indistinguishable from a bounce), or it is hidden from the turn on.

    Read from the ground truth, only to report such cases apart: the analyzer never sees this.
    """
    out = set()
    for i, (o, tr) in enumerate(zip(spec.objects, annotations.objects)):
        if o.motion != "turn" or annotations.frames < 3:
            continue
        e = event_frame(o.event_time, annotations.frames)
        v = np.array(DIRECTIONS[o.direction])
        for ev in annotations.events_of("bounce", i):
            if ev.time <= e:
                v[0 if ev.wall in ("left", "right") else 1] *= -1
        v2 = np.array(DIRECTIONS[o.direction2])
        same = np.allclose(v, v2)
        # a mirror image of the heading next to that wall looks like a bounce
        r = tr.half_extent[e]
        size = np.array([annotations.width, annotations.height], dtype=float)
        near = (
            np.minimum(tr.center[e] - r, size - r - tr.center[e])
            <= SPEEDS[o.speed] * annotations.unit
        )
        flipped = ~np.isclose(v, v2)
        mirror = np.isclose(np.abs(v), np.abs(v2)).all() and near[flipped].all()
        seen_after = (
            (tr.visible_fraction[e + 1 :] >= 0.5).any() if e + 1 < annotations.frames else False
        )
        if same or mirror or not seen_after:
            out.add(i)
    return out


@dataclass
class ValidationReport:
    """Per attribute: how often the evaluator agrees with ground truth and mismatched prompts."""

    n: int
    seconds: float
    truth: dict = field(default_factory=dict)  # attribute -> [agree, total]
    observable: dict = field(default_factory=dict)  # the same without turns no pixel shows
    mismatched: dict = field(default_factory=dict)
    chance: dict = field(default_factory=dict)
    vocab: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)  # (seed, (H, W, T), attribute, want, got)

    def accuracy(self, which: str = "truth") -> dict[str, float | None]:
        table = getattr(self, which)
        return {
            a: (table[a][0] / table[a][1] if table.get(a) and table[a][1] else None) for a in SCORED
        }

    def table(self) -> str:
        truth, obs = self.accuracy("truth"), self.accuracy("observable")
        mism, chance = self.accuracy("mismatched"), self.accuracy("chance")
        lines = [
            (
                f"{'attribute':<12}{'n':>7}{'truth':>8}{'n obs':>7}{'obs':>8}{'mismatch':>10}"
                f"{'chance':>8}{'vocab':>8}"
            )
        ]
        for a in SCORED:
            if truth[a] is None:
                continue
            lines.append(
                f"{a:<12}{self.truth[a][1]:>7d}{truth[a]:>8.3f}{self.observable[a][1]:>7d}"
                f"{obs[a]:>8.3f}{mism[a]:>10.3f}{chance[a]:>8.3f}"
                f"{self.vocab.get(a, float('nan')):>8.3f}"
            )
        lines.append(
            f"{self.n} videos in {self.seconds:.1f} s ({self.n / self.seconds:.1f} videos/s)"
        )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "seconds": self.seconds,
            "truth": self.accuracy("truth"),
            "observable": self.accuracy("observable"),
            "mismatched": self.accuracy("mismatched"),
            "chance": self.accuracy("chance"),
            "vocab": self.vocab,
            "counts": {a: self.truth[a][1] for a in self.truth},
            "failures": [list(map(str, f)) for f in self.failures],
        }


def _tally(table: dict, result: dict, skip: set[int] = frozenset()) -> None:
    for i, row in enumerate(result["per_object"]):
        for a, ok in row.items():
            if i in skip and a in ("motion", "direction2", "event_time"):
                continue
            table.setdefault(a, [0, 0])
            table[a][0] += int(ok)
            table[a][1] += 1
    for a in ("count", "background"):
        if result["attributes"][a] is not None:
            table.setdefault(a, [0, 0])
            table[a][0] += int(result["attributes"][a])
            table[a][1] += 1


def _vocab_chance(specs: list[SceneSpec], frames: list[int]) -> dict[str, float]:
    """sum_v p(v)^2 per attribute over the sampled objects (count and background per scene)."""
    values: dict[str, Counter] = {a: Counter() for a in SCORED}
    for spec, T in zip(specs, frames):
        values["count"][len(spec.objects)] += 1
        values["background"][spec.background] += 1
        for o in caption_attributes(spec).objects:
            for a, v in o.stated().items():
                if T > 1 or a in ("shape", "color", "size", "region"):
                    values[a][v] += 1
    out = {}
    for a, c in values.items():
        total = sum(c.values())
        if total:
            out[a] = float(sum((k / total) ** 2 for k in c.values()))
    return out


def validate_evaluator(
    n: int = 200,
    seed: int = 10_000,
    sizes=WORLD_SIZES,
    frames=WORLD_FRAMES,
    analyzer: VideoAnalyzer | None = None,
    progress: bool = False,
    verbose: bool = True,
) -> ValidationReport:
    """Render ``n`` held-out scenes over every size x duration and measure the evaluator on them."""
    analyzer = analyzer or VideoAnalyzer()
    combos = [(h, w, t) for t in frames for (h, w) in sizes]
    seeds = [spec_seed(seed, i) for i in range(n)]
    specs = [sample_spec(s) for s in seeds]
    report = ValidationReport(n=n, seconds=0.0)
    it = range(n)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="validating the evaluator")
    start = time.perf_counter()
    for i in it:
        H, W, T = combos[i % len(combos)]
        spec, other = specs[i], specs[(i + 1) % n]
        video, annotations = render(spec, H, W, T)
        analysis = analyzer.analyze(video)
        detected = [  # what ``evaluate`` scores: the credible objects only
            {**o.attributes(), "event_frame": o.motion.event_frame}
            for o in analysis.credible_objects
        ]
        res = score_adherence(detected, analysis.background, spec, T)
        _tally(report.truth, res)
        hidden_turns = unobservable_turns(spec, annotations)
        _tally(report.observable, res, hidden_turns)
        for k, (p, row, j) in enumerate(
            zip(caption_attributes(spec).objects, res["per_object"], res["matches"])
        ):
            for a, ok in row.items():
                if not ok and not (
                    k in hidden_turns and a in ("motion", "direction2", "event_time")
                ):
                    got = detected[j].get(a) if j is not None else None
                    if a == "event_time" and j is not None:
                        got = (got, detected[j].get("event_frame"))
                    report.failures.append(
                        (seeds[i], (H, W, T), f"{p.color} {a}", p.stated()[a], got)
                    )
        if res["attributes"]["count"] == 0:
            report.failures.append((seeds[i], (H, W, T), "count", len(spec.objects), len(detected)))
        _tally(report.mismatched, score_adherence(detected, analysis.background, other, T))
        _tally(report.chance, score_adherence(true_attributes(spec, T), spec.background, other, T))
    report.seconds = time.perf_counter() - start
    report.vocab = _vocab_chance(specs, [combos[i % len(combos)][2] for i in range(n)])
    if verbose:
        print(report.table())
        for f in report.failures[:20]:
            print("  miss:", *f)
    return report


def main(n: int = 400) -> ValidationReport:  # pragma: no cover - a convenience for the command line
    return validate_evaluator(n=n, progress=True)


if __name__ == "__main__":  # pragma: no cover
    main()
