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
from sora_mini.world.spec import SceneSpec, event_frame

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


@dataclass
class ValidationReport:
    """Per attribute: how often the evaluator agrees with ground truth and with mismatched prompts."""

    n: int
    seconds: float
    truth: dict = field(default_factory=dict)  # attribute -> [agree, total]
    mismatched: dict = field(default_factory=dict)
    chance: dict = field(default_factory=dict)
    vocab: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)  # (seed, (H, W, T), attribute, want, got)

    def accuracy(self, which: str = "truth") -> dict[str, float | None]:
        table = getattr(self, which)
        return {a: (table[a][0] / table[a][1] if table.get(a) and table[a][1] else None) for a in SCORED}

    def table(self) -> str:
        truth, mism, chance = self.accuracy("truth"), self.accuracy("mismatched"), self.accuracy("chance")
        lines = [f"{'attribute':<12}{'n':>7}{'truth':>9}{'mismatch':>10}{'chance':>9}{'vocab':>8}"]
        for a in SCORED:
            if truth[a] is None:
                continue
            lines.append(f"{a:<12}{self.truth[a][1]:>7d}{truth[a]:>9.3f}{mism[a]:>10.3f}"
                         f"{chance[a]:>9.3f}{self.vocab.get(a, float('nan')):>8.3f}")
        lines.append(f"{self.n} videos in {self.seconds:.1f} s ({self.n / self.seconds:.1f} videos/s)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"n": self.n, "seconds": self.seconds, "truth": self.accuracy("truth"),
                "mismatched": self.accuracy("mismatched"), "chance": self.accuracy("chance"),
                "vocab": self.vocab, "counts": {a: self.truth[a][1] for a in self.truth},
                "failures": [list(map(str, f)) for f in self.failures]}


def _tally(table: dict, result: dict, prompt_objects: int) -> None:
    for row in result["per_object"]:
        for a, ok in row.items():
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


def validate_evaluator(n: int = 200, seed: int = 10_000, sizes=WORLD_SIZES, frames=WORLD_FRAMES,
                       analyzer: VideoAnalyzer | None = None, progress: bool = False,
                       verbose: bool = True) -> ValidationReport:
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
        video, _ = render(spec, H, W, T)
        analysis = analyzer.analyze(video)
        detected = [{**o.attributes(), "event_frame": o.motion.event_frame} for o in analysis.objects]
        res = score_adherence(detected, analysis.background, spec, T)
        _tally(report.truth, res, len(spec.objects))
        for p, row, j in zip(caption_attributes(spec).objects, res["per_object"], res["matches"]):
            for a, ok in row.items():
                if not ok:
                    got = detected[j].get(a) if j is not None else None
                    if a == "event_time" and j is not None:
                        got = (got, detected[j].get("event_frame"))
                    report.failures.append((seeds[i], (H, W, T), f"{p.color} {a}", p.stated()[a], got))
        if res["attributes"]["count"] == 0:
            report.failures.append((seeds[i], (H, W, T), "count", len(spec.objects), len(detected)))
        _tally(report.mismatched, score_adherence(detected, analysis.background, other, T), len(other.objects))
        _tally(report.chance, score_adherence(true_attributes(spec, T), spec.background, other, T),
               len(other.objects))
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
