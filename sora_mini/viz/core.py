"""The core pictures: inline animated videos, frame strips and grids, and the package's own source
shown in a notebook (``show_source``), with the check that every listing renders."""

from __future__ import annotations

import base64
import html
import inspect
import os

import numpy as np

from sora_mini.convert import to_uint8
from sora_mini.videoio import gif_bytes, write_video


def upscale(video: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling so that small videos are visible (no smoothing: pixels stay pixels)."""
    if scale <= 1:
        return video
    return video.repeat(scale, axis=1).repeat(scale, axis=2)


class VideoHTML:
    """An inline animated video (a GIF in an <img>); displays in Jupyter, saved with the notebook."""

    def __init__(self, html_text: str):
        self.html = html_text

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return "<VideoHTML>"


def show_video(video, fps: float = 8, scale: int = 4, titles=None, value_range=(-1.0, 1.0)) -> VideoHTML:
    """Inline animated video(s): one video or a list shown side by side, each with an optional title."""
    videos = video if isinstance(video, (list, tuple)) else [video]
    if titles is not None and not isinstance(titles, (list, tuple)):
        titles = [titles]
    cells = []
    for i, v in enumerate(videos):
        arr = upscale(to_uint8(v, value_range), scale)
        data = base64.b64encode(gif_bytes(arr, fps)).decode("ascii")
        title = html.escape(str(titles[i])) if titles is not None and i < len(titles) else ""
        cells.append(
            f'<figure style="display:inline-block;margin:4px;text-align:center">'
            f'<img src="data:image/gif;base64,{data}" style="image-rendering:pixelated"/>'
            f'<figcaption style="font-size:11px;max-width:{arr.shape[2]}px">{title}</figcaption></figure>'
        )
    return VideoHTML("<div>" + "".join(cells) + "</div>")


def frame_grid(videos, pad: int = 1, pad_value: int = 255) -> np.ndarray:
    """Videos (a list, each ``[T,H,W,3]`` of equal size) -> one image, a row per video, a column per frame."""
    arrs = [to_uint8(v) for v in (videos if isinstance(videos, (list, tuple)) else [videos])]
    t = max(a.shape[0] for a in arrs)
    h, w = arrs[0].shape[1:3]
    if any(a.shape[1:3] != (h, w) for a in arrs):
        raise ValueError("frame_grid needs videos of one size; use plot_frames per video for mixed sizes")
    grid = np.full((len(arrs) * (h + pad) - pad, t * (w + pad) - pad, 3), pad_value, np.uint8)
    for r, a in enumerate(arrs):
        for c in range(a.shape[0]):
            grid[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = a[c]
    return grid


def plot_frames(video, title: str | None = None, max_frames: int = 12, ax_width: float = 1.2, boxes=None):
    """A matplotlib figure with the frames of one video in a row (evenly spaced if there are many).

    ``boxes``: optional per-frame lists of ``(x0, y0, x1, y1)`` boxes drawn over the frames.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    arr = to_uint8(video)
    t, h, w = arr.shape[:3]
    idx = np.unique(np.linspace(0, t - 1, min(t, max_frames)).round().astype(int))
    fig, axes = plt.subplots(1, len(idx), figsize=(ax_width * len(idx) * max(1.0, w / h), ax_width * 1.25),
                             squeeze=False)
    for ax, i in zip(axes[0], idx):
        ax.imshow(arr[i], interpolation="nearest")
        ax.set_title(f"t={i}", fontsize=8)
        ax.axis("off")
        if boxes is not None:
            for (x0, y0, x1, y1) in boxes[i]:
                ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="lime", lw=1))
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


LISTING_METADATA = {"sora_mini": "listing"}  # marks a displayed listing (checked by make test)


def show_source(obj, lines: tuple[int, int] | None = None) -> None:
    """Display the package's real source of a function, class or method, syntax-highlighted.

    It displays itself (anywhere in a cell, not only as the last expression) and returns None.
    ``lines=(first, last)`` shows only those lines of it (1-based, inclusive), for a long body.
    Outside IPython the source is printed.
    """
    src = inspect.getsource(obj)
    if lines is not None:
        first, last = lines
        body = src.splitlines()
        if not 1 <= first <= last <= len(body):
            raise ValueError(f"lines={lines} is outside the {len(body)} lines of {obj.__qualname__}")
        src = "\n".join(body[first - 1:last]) + "\n"
    try:
        from IPython import get_ipython
        from IPython.display import Code, display
    except ImportError:  # IPython is not installed: plain text
        print(src)
        return
    if get_ipython() is None:
        print(src)
        return
    display(Code(src, language="python"), metadata=LISTING_METADATA)
    return


def listing_outputs(outputs) -> int:
    """How many outputs of an executed cell are listings shown by :func:`show_source`."""
    return sum(1 for o in outputs if o.get("output_type") in ("display_data", "execute_result")
               and (o.get("metadata") or {}).get("sora_mini") == "listing")


def missing_listings(cells) -> list[int]:
    """Indices of code cells that call ``show_source`` more often than they show a listing."""
    bad = []
    for i, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        calls = sum(line.count("show_source(") for line in cell.get("source", "").splitlines()
                    if not line.lstrip().startswith(("#", "def ", "from ", "import ")))
        if calls and listing_outputs(cell.get("outputs", [])) < calls:
            bad.append(i)
    return bad


def save_video(path: str | os.PathLike, video, fps: float = 8, scale: int = 1):
    """Export a video (gif, mp4 or npz by suffix), optionally upscaled for viewing."""
    return write_video(path, upscale(to_uint8(video), scale), fps=fps)


