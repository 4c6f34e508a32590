"""A folder of the user's own clips as the text-to-video training set (in place of world renders).

The folder holds ``.mp4`` / ``.gif`` / ``.npz`` clips, each with a same-name ``.txt`` caption
(:class:`sora_mini.world.FolderVideoDataset`; ``export_world_samples`` writes one).
:class:`ClipFolderData` names it by its path and a hash of its clip and caption files, so two runs
on different data never share a folder. :func:`folder_clips` reads it and **center-crops** every
clip to the nearest size the autoencoder and the patches take (never resizes): height and width
down to a multiple of ``spatial_multiple`` (spatial compression x patch size), frames down to
``1 + k n`` (the causal autoencoder's rule; the first frames are kept).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sora_mini.patches.patchify import nearest_frame_counts
from sora_mini.world.datasets import CLIP_SUFFIXES, FolderVideoDataset


@dataclass(frozen=True)
class ClipFolderData:
    """The training set of a clip folder: where it is, what it holds, and the crop rule."""

    path: str  # the folder, absolute
    files: str  # sha256 over the name and bytes of every clip and caption file (see files_digest)
    spatial_multiple: int  # H and W are cropped to a multiple of this (autoencoder factor x patch)
    temporal_factor: int  # frames are cut to 1 + temporal_factor * n
    seed: int = 0


def files_digest(folder: str | Path) -> str:
    """sha256 over the sorted names and the bytes of the clips and ``.txt`` captions in ``folder``."""
    h = hashlib.sha256()
    for path in sorted(Path(folder).iterdir()):
        if path.is_file() and path.suffix.lower() in (*CLIP_SUFFIXES, ".txt"):
            h.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def clip_folder_data(folder: str | Path, *, spatial_multiple: int, temporal_factor: int) -> ClipFolderData:
    """The :class:`ClipFolderData` of ``folder`` as it is now (its files hashed)."""
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"clip folder {folder} does not exist (or is not a folder); give a folder of "
                                f"{'/'.join(CLIP_SUFFIXES)} clips, each with a same-name .txt caption")
    return ClipFolderData(str(folder), files_digest(folder), int(spatial_multiple), int(temporal_factor))


def center_crop(video: np.ndarray, multiple: int, temporal_factor: int) -> np.ndarray | None:
    """uint8 [T, H, W, 3] -> [T', H', W', 3]: H, W center-cropped down to multiples of ``multiple``,
    the first ``T' = 1 + k n`` frames kept; None when H or W is smaller than ``multiple``."""
    t, h, w = video.shape[:3]
    if h < multiple or w < multiple:
        return None
    ch, cw = h // multiple * multiple, w // multiple * multiple
    ct = nearest_frame_counts(t, temporal_factor)[0]  # the longest valid count <= t
    y, x = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(video[:ct, y:y + ch, x:x + cw])


def folder_clips(data: ClipFolderData) -> tuple[list[np.ndarray], list[str]]:
    """(clips uint8 [T, H, W, 3], captions) of the folder, each clip center-cropped to fit (see the
    module docstring); a clip smaller than ``spatial_multiple`` is skipped with a warning, and a
    folder with no usable clip is a ``ValueError``."""
    if files_digest(data.path) != data.files:
        raise ValueError(f"the clips in {data.path} changed since this training was set up; set it up again "
                         "(video_training(..., data_folder=...)) so the new data gets its own folder")
    ds = FolderVideoDataset(data.path, output="uint8")
    m, k = data.spatial_multiple, data.temporal_factor
    clips, captions, cropped = [], [], 0
    for i in range(len(ds)):
        video = ds[i]["video"].numpy()  # uint8 [T, H, W, 3]
        clip = center_crop(video, m, k)
        if clip is None:
            warnings.warn(f"skipping {ds.paths[i]}: {video.shape[1]}x{video.shape[2]} pixels is smaller than "
                          f"{m}x{m}, the smallest size this model takes", stacklevel=2)
            continue
        cropped += clip.shape != video.shape
        clips.append(clip)
        captions.append(ds.captions[i])
    if not clips:
        raise ValueError(f"no usable clip in {data.path}: every clip is smaller than {m}x{m} pixels "
                         "(see the warnings); add clips at least that big")
    if cropped:
        warnings.warn(f"{cropped} of {len(clips)} clips in {data.path} were center-cropped to a multiple of "
                      f"{m} pixels and 1 + {k}n frames", stacklevel=2)
    return clips, captions
