"""The procedural video world: scene specs, their sampling, the renderer and datasets.

``sample_spec(seed) -> SceneSpec`` (``fix={"color": "red", "motion": "move", "direction":
"right"}`` fixes attributes of the first object, ``fix=[{...}, {...}]`` of each; the rest is drawn
to match); ``render(spec, height, width, frames) -> (video uint8 [T, H, W, 3], Annotations)``;
``valid_start(motion, direction, size, region, *, seed) -> Start(region, offset)``: a start the
sampler would accept (room to move that way, inside the frame), and ``start_regions(...)`` /
``free_directions(region)`` the choices behind it. ``WorldDataset`` / ``FolderVideoDataset`` /
``BucketBatchSampler`` / ``collate`` / ``export_world_samples`` come from
``sora_mini.world.datasets`` (imported on first use, so the renderer alone does not pull in
torch). Captions live in ``sora_mini.world.captions``
(``parse_caption(text).to_scene_spec(seed)``).

The vocabulary (``VOCABULARY`` maps each attribute to its allowed values; the same tuples and
tables are exported by name):

* ``shape``: ``SHAPES`` -- circle, square, triangle
* ``color``: ``COLORS`` -- red, green, blue, yellow, purple, orange, cyan, white (RGB in ``PALETTE``)
* ``size``: ``SIZES`` -- small, large (half-extent as a fraction of the shorter side)
* ``region``: ``REGIONS`` -- the 3x3 grid: top left, top, top right, left, center, right,
  bottom left, bottom, bottom right (centre of each as fractions of the frame)
* ``motion``: ``MOTIONS`` -- still, move, fall, grow, shrink, appear, disappear, turn
* ``direction`` / ``direction2`` (move, turn): ``DIRECTIONS`` -- right, left, up, down, up right,
  up left, down right, down left (unit vectors, y down)
* ``speed`` (move, turn): ``SPEEDS`` -- slowly, quickly (shorter side per frame)
* ``event_time`` (appear, disappear, turn): ``EVENT_TIMES`` -- early, halfway through, late
* ``background``: ``BACKGROUNDS`` -- black, gray, navy

A scene has 1 to ``MAX_OBJECTS`` objects with distinct colours.
"""

from sora_mini.world.annotations import Annotations, Event, ObjectTrack
from sora_mini.world.placement import Start, free_directions, start_regions, valid_start
from sora_mini.world.render import coverage, render
from sora_mini.world.sample import check_motions, sample_spec, sample_specs, spec_seed
from sora_mini.world.spec import (
    BACKGROUNDS,
    COLORS,
    DIRECTIONS,
    EVENT_TIMES,
    MAX_OBJECTS,
    MOTIONS,
    PALETTE,
    REGIONS,
    SHAPES,
    SIZES,
    SPEEDS,
    VOCABULARY,
    ObjectSpec,
    SceneSpec,
    event_frame,
)

_DATASETS = ("WorldDataset", "FolderVideoDataset", "BucketBatchSampler", "collate", "export_world_samples")

__all__ = [
    "BACKGROUNDS",
    "COLORS",
    "DIRECTIONS",
    "EVENT_TIMES",
    "MAX_OBJECTS",
    "MOTIONS",
    "PALETTE",
    "REGIONS",
    "SHAPES",
    "SIZES",
    "SPEEDS",
    "VOCABULARY",
    "Annotations",
    "BucketBatchSampler",
    "Event",
    "FolderVideoDataset",
    "ObjectSpec",
    "ObjectTrack",
    "SceneSpec",
    "Start",
    "WorldDataset",
    "check_motions",
    "collate",
    "coverage",
    "event_frame",
    "export_world_samples",
    "free_directions",
    "render",
    "sample_spec",
    "sample_specs",
    "spec_seed",
    "start_regions",
    "valid_start",
]


def __getattr__(name):
    if name in _DATASETS:
        from sora_mini.world import datasets

        return getattr(datasets, name)
    raise AttributeError(f"module 'sora_mini.world' has no attribute {name!r}")
