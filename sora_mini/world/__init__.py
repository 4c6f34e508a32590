"""The procedural video world: scene specs, their sampling, the renderer and datasets.

``sample_spec(seed) -> SceneSpec``; ``render(spec, height, width, frames) -> (video uint8
[T, H, W, 3], Annotations)``; ``WorldDataset`` / ``FolderVideoDataset`` / ``BucketBatchSampler``
/ ``collate`` / ``export_world_samples`` from ``sora_mini.world.datasets`` (imported on first use,
so the renderer alone does not pull in torch). Captions live in ``sora_mini.world.captions``.
"""

from sora_mini.world.annotations import Annotations, Event, ObjectTrack
from sora_mini.world.render import coverage, render
from sora_mini.world.sample import sample_spec, sample_specs, spec_seed
from sora_mini.world.spec import ObjectSpec, SceneSpec, event_frame

_DATASETS = ("WorldDataset", "FolderVideoDataset", "BucketBatchSampler", "collate", "export_world_samples")

__all__ = ["Annotations", "BucketBatchSampler", "Event", "FolderVideoDataset", "ObjectSpec",
           "ObjectTrack", "SceneSpec", "WorldDataset", "collate", "coverage", "event_frame",
           "export_world_samples", "render", "sample_spec", "sample_specs", "spec_seed"]


def __getattr__(name):
    if name in _DATASETS:
        from sora_mini.world import datasets

        return getattr(datasets, name)
    raise AttributeError(f"module 'sora_mini.world' has no attribute {name!r}")
