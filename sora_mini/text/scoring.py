"""Scoring captions against the scenes they describe, through the caption grammar.

``score_captions(captions, specs)`` parses each caption with ``parse_caption`` and compares it
with ``caption_attributes(spec)``: per attribute, the share of true objects whose caption states
the right value (objects are matched by colour, which is unique within a scene, then by order);
``background`` and ``count`` per scene; ``unparseable``, the share of captions the grammar cannot
read (those count as wrong on every attribute).
"""

from __future__ import annotations

from sora_mini.world.captions import (
    ATTRIBUTES,
    CaptionError,
    CaptionSpec,
    caption_attributes,
    detailed_caption,
    parse_caption,
)


def _match(true: CaptionSpec, said: CaptionSpec) -> list[int | None]:
    """Per true object, the index of the caption's object describing it (colour first, then order)."""
    free = list(range(len(said.objects)))
    out: list[int | None] = [None] * len(true.objects)
    for i, t in enumerate(true.objects):
        j = next((j for j in free if said.objects[j].color == t.color), None)
        if j is not None:
            out[i] = j
            free.remove(j)
    for i in range(len(out)):
        if out[i] is None and free and i in free:
            out[i] = i
            free.remove(i)
    return out


def _same_objects(a: CaptionSpec, b: CaptionSpec) -> bool:
    """The same objects, in any order (a caption may list a scene's objects in any order)."""
    return sorted(map(repr, a.objects)) == sorted(map(repr, b.objects))


def score_captions(captions: list[str], specs, kind: str = "detailed") -> dict:
    """Attribute accuracy of ``captions`` against ``specs`` (SceneSpecs) -> a JSON-able dict:

    ``{"attributes": {name: accuracy or None}, "background", "count", "unparseable", "n",
    "exact"}``; ``exact`` is the share of captions whose parse equals the truth (objects in any order).
    """
    if len(captions) != len(specs):
        raise ValueError(f"{len(captions)} captions for {len(specs)} specs; give one caption per spec")
    if not captions:
        raise ValueError("no captions to score")
    hits = {a: [] for a in ATTRIBUTES}
    background, count, exact, bad = [], [], [], 0
    for text, spec in zip(captions, specs):
        true = caption_attributes(spec, kind)
        try:
            said = parse_caption(text)
        except CaptionError:
            said = None
            bad += 1
        matches = _match(true, said) if said is not None else [None] * len(true.objects)
        for t, j in zip(true.objects, matches):
            got = said.objects[j] if j is not None else None
            for a, want in t.stated().items():
                hits[a].append(got is not None and getattr(got, a) == want)
        if true.background is not None:
            background.append(said is not None and said.background == true.background)
        count.append(said is not None and len(said.objects) == len(true.objects))
        exact.append(said is not None and said.background == true.background and _same_objects(said, true))

    def mean(v):
        return sum(v) / len(v) if v else None

    return {"attributes": {a: mean(v) for a, v in hits.items()}, "background": mean(background),
            "count": mean(count), "exact": mean(exact), "unparseable": bad / len(captions),
            "n": len(captions)}


def caption_dataset(captioner, data, *, greedy: bool = True, seed: int = 0, batch_size: int = 32,
                    **generate_kw) -> list[str]:
    """The captioner's captions of every video of ``data`` (a ``CaptionedVideos``), in order."""
    out: list[str | None] = [None] * len(data)
    for size in data.sizes:
        idx = data.buckets[size]
        for j in range(0, len(idx), batch_size):
            part = idx[j:j + batch_size]
            texts = captioner.generate(data.items(part)["video"], greedy=greedy, seed=seed + j, **generate_kw)
            for i, t in zip(part, texts):
                out[i] = t
    return out


def evaluate_captioner(captioner, data, *, greedy: bool = True, seed: int = 0, **kw) -> dict:
    """:func:`score_captions` of the captioner's captions of ``data`` against its true specs, plus
    three examples ``(caption, truth)``, the truth in the captioner's object order."""
    captions = caption_dataset(captioner, data, greedy=greedy, seed=seed, **kw)
    scores = score_captions(captions, data.specs)
    order = getattr(getattr(captioner, "config", None), "object_order", "scene")
    scores["examples"] = [(captions[i], detailed_caption(data.specs[i], order)) for i in range(min(3, len(captions)))]
    return scores


def _movers(data):
    """Each object of ``data`` (a ``CaptionedVideos``) that moves or turns: (video index, object
    index, its motion, whether it bounces off a wall, its centre [T, 2] in pixels), from the
    renderer's annotations of the clip."""
    import numpy as np

    from sora_mini.world import render

    for i, (spec, video) in enumerate(zip(data.specs, data.videos)):
        annotations = None
        for k, obj in enumerate(spec.objects):
            if obj.motion not in ("move", "turn"):
                continue
            if annotations is None:
                frames, height, width = video.shape[:3]
                annotations = render(spec, int(height), int(width), int(frames))[1]
            bounced = any(e.kind == "bounce" and e.object == k for e in annotations.events)
            yield i, k, obj.motion, bounced, np.asarray(annotations.objects[k].center, dtype=float)


def motion_confusions(captions: list[str], data) -> dict:
    """Where a captioner's moves and turns go wrong: for every object of ``data`` (a
    ``CaptionedVideos``) that moves or turns, whether its clip shows a bounce off a wall (the
    renderer's events) and which motion the caption states (``None``: missing or unparseable)
    -> ``{(true motion, "bounce" | "no bounce", said motion): count}``.

    A bounce changes the direction as a turn does, so it is the suspect when a move is read as a
    turn; this table says whether it is."""
    from collections import Counter

    if len(captions) != len(data):
        raise ValueError(f"{len(captions)} captions for {len(data)} videos; give one caption per video")
    out: Counter = Counter()
    said: dict = {}  # video index -> what its caption says of each true object (None: not said)
    for i, k, motion, bounced, _ in _movers(data):
        if i not in said:
            said[i] = _said_objects(captions[i], data.specs[i])
        out[(motion, "bounce" if bounced else "no bounce", getattr(said[i][k], "motion", None))] += 1
    return dict(out)


def _said_objects(caption: str, spec) -> list:
    """Per object of ``spec``, the caption's object describing it (``None``: not said, or the
    caption does not parse)."""
    true = caption_attributes(spec, "detailed")
    try:
        parsed = parse_caption(caption)
    except CaptionError:
        return [None] * len(true.objects)
    return [parsed.objects[j] if j is not None else None for j in _match(true, parsed)]


def turn_readings(captions: list[str], data) -> dict:
    """Where a captioner loses the second direction of a turn: for every turning object of ``data``
    (a ``CaptionedVideos``), its event time and what the caption says of it -> ``{(event time,
    outcome): count}``, the outcome ``"right"`` (the second direction stated and true), ``"wrong"``
    (another direction), ``"move"`` (the caption calls it a plain move) or ``"other"`` (another
    motion, not said, or unparseable). A late turn leaves the fewest frames after the event."""
    from collections import Counter

    if len(captions) != len(data):
        raise ValueError(f"{len(captions)} captions for {len(data)} videos; give one caption per video")
    out: Counter = Counter()
    for caption, spec in zip(captions, data.specs):
        if not any(o.motion == "turn" for o in spec.objects):  # no caption to parse
            continue
        for obj, got in zip(spec.objects, _said_objects(caption, spec)):
            if obj.motion != "turn":
                continue
            if got is not None and got.motion == "turn":
                outcome = "right" if got.direction2 == obj.direction2 else "wrong"
            else:
                outcome = "move" if got is not None and got.motion == "move" else "other"
            out[(obj.event_time, outcome)] += 1
    return dict(out)


def direction_changes(data, degrees: float = 20.0) -> dict:
    """Is a turn visible in the clip itself? For every object of ``data`` that moves or turns,
    whether its centre's direction (the renderer's track, not a model's reading) changes by more
    than ``degrees`` between two frame steps -> ``{(true motion, "bounce" | "no bounce",
    "changed" | "straight"): count}``. A bounce reverses one component of the velocity, so a move
    that bounces changes direction as a turn does: only where it happens (at a wall) tells them apart."""
    from collections import Counter

    import numpy as np

    out: Counter = Counter()
    for _, _, motion, bounced, centre in _movers(data):
        steps = np.diff(centre, axis=0)
        a, b = steps[:-1], steps[1:]
        cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-9)
        changed = bool(len(cos)) and bool(np.degrees(np.arccos(np.clip(cos, -1, 1))).max() > degrees)
        out[(motion, "bounce" if bounced else "no bounce", "changed" if changed else "straight")] += 1
    return dict(out)
