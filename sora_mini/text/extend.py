"""Prompt extension: a short user prompt -> a detailed caption in the training format.

DALL-E 3 and Sora train on detailed (re-)captions and extend short user prompts to match. Here the
grammar does it exactly: parse the prompt (``parse_caption``), keep every stated attribute, fill
each unstated one from the world's training distribution (``sora_mini.world.sample_spec`` with the
stated attributes fixed, so the placement rule of ``sora_mini.world.placement`` holds: objects
start apart and inside the frame, a moving object where it has room to move), then write
``detailed_caption``. Deterministic for a seed.

    extend_prompt("a red circle moves right and a blue square", seed=0)
    -> "a small red circle starts at the left and moves right slowly. a large blue square ..."
"""

from __future__ import annotations

from sora_mini.text.prompts import PromptError, check_prompts
from sora_mini.world.captions import CaptionError, detailed_caption, parse_caption
from sora_mini.world.placement import apart, start_box
from sora_mini.world.sample import sample_spec
from sora_mini.world.spec import MAX_OBJECTS, SceneSpec


def extend_spec(prompt: str, seed: int = 0) -> SceneSpec:
    """The scene of ``prompt`` with every unstated attribute filled (deterministic for ``seed``).

    The scene follows the world's placement rule whenever the stated attributes allow it; where
    they break it (a circle stated "at the right" that "moves right") the statement wins, as in
    ``CaptionSpec.to_scene_spec``. A prompt no scene can hold is a ``PromptError``.
    """
    (prompt,) = check_prompts([prompt])
    try:
        said = parse_caption(prompt)
    except CaptionError as e:
        raise PromptError(str(e)) from e
    n = len(said.objects)
    if not 1 <= n <= MAX_OBJECTS:
        raise PromptError(f"the prompt describes {n} objects; a world scene holds at most {MAX_OBJECTS}"
                          " (and at least 1)")
    colors = [o.color for o in said.objects if o.color]
    if len(set(colors)) != len(colors):
        raise PromptError(f"two objects share a colour ({colors}); objects of one scene have distinct colours")
    fix = [o.stated() for o in said.objects]
    try:  # the readable scene first: every object in its own region, heading away from walls
        spec = sample_spec(seed, fix=fix, min_objects=n, max_objects=n, strict=True)
    except ValueError:
        try:
            spec = said.to_scene_spec(seed)  # the statement wins over the readability rule
        except (ValueError, CaptionError) as e:
            raise PromptError(f"cannot build a scene for {prompt!r}: {e}") from e
        boxes = [start_box(o) for o in spec.objects]
        if any(not apart(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:]):
            raise PromptError(f"cannot place the objects of {prompt!r} apart from each other (two objects "
                              "in one region, or shapes too large for their regions); state other "
                              "regions or fewer objects")
    if said.background is not None:  # else the background the sampler drew
        spec.background = said.background
    return spec.validate()


def extend_prompt(prompt: str, seed: int = 0) -> str:
    """``prompt`` -> a detailed caption (every attribute stated) that keeps what ``prompt`` states."""
    return detailed_caption(extend_spec(prompt, seed))
