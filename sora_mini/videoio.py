"""Read and write videos as uint8 arrays ``[T, H, W, 3]``: GIF, MP4, NPZ, and still images.

GIF and still images go through Pillow (exact frame sizes, any size); MP4 through imageio's
ffmpeg plugin (``imageio-ffmpeg`` ships the binary). NPZ stores the array losslessly under the
key ``video``. Writes are atomic: a temporary file in the same folder, then a rename, so a crash
never leaves half a file behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

VIDEO_SUFFIXES = (".gif", ".mp4", ".npz")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
READABLE = VIDEO_SUFFIXES + IMAGE_SUFFIXES


def as_video_array(video) -> np.ndarray:
    """Any video-like input (numpy or torch; ``[T,H,W,3]``, ``[H,W,3]`` or ``[T,H,W]``) -> uint8 ``[T,H,W,3]``."""
    if hasattr(video, "detach"):
        video = video.detach().cpu().numpy()
    arr = np.asarray(video)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):  # a single image
        arr = arr[None]
    if arr.ndim == 3:  # grey frames
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 4 or arr.shape[-1] not in (3, 4):
        raise ValueError(f"expected a video [T,H,W,3] (or an image [H,W,3]), got shape {tuple(arr.shape)}")
    arr = arr[..., :3]
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and arr.max() <= 1.0 + 1e-6:
            arr = arr * 255.0
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    if arr.shape[0] == 0:
        raise ValueError("the video has no frames")
    return np.ascontiguousarray(arr)


def read_video(path: str | os.PathLike) -> np.ndarray:
    """Read a video (gif, mp4, npz) or an image (png, jpg, ...) as uint8 ``[T, H, W, 3]``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READABLE:
        raise ValueError(f"cannot read {path.name!r}: unknown format {suffix!r}; readable: {', '.join(READABLE)}")
    if not path.exists():
        raise FileNotFoundError(f"no such video file: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes)")
    try:
        if suffix == ".npz":
            with np.load(path) as data:
                if "video" not in data:
                    raise ValueError(f"{path} has no array named 'video' (found: {list(data.keys())})")
                frames = data["video"]
        elif suffix == ".mp4":
            import imageio.v3 as iio

            frames = iio.imread(path, plugin="FFMPEG")
        else:
            from PIL import Image, ImageSequence

            with Image.open(path) as im:
                frame_ms = _sora_frame_ms(im.info.get("comment", b""))
                frames, repeats = [], []
                for f in ImageSequence.Iterator(im):
                    frames.append(np.asarray(f.convert("RGB")))
                    # Pillow merges identical consecutive frames into one longer frame when it
                    # writes a GIF; our own GIFs record the frame time, so expand them back
                    dur = f.info.get("duration", frame_ms) or frame_ms
                    repeats.append(max(1, round(dur / frame_ms)) if frame_ms else 1)
                frames = np.repeat(np.stack(frames), repeats, axis=0)
    except (OSError, RuntimeError, KeyError, IndexError) as e:
        raise ValueError(f"cannot read video {path}: {e}") from e
    return as_video_array(frames)


def _atomic_target(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _sora_frame_ms(comment) -> int | None:
    text = comment.decode("ascii", "ignore") if isinstance(comment, bytes) else str(comment)
    if text.startswith("sora_mini frame_ms="):
        try:
            return int(text.split("=", 1)[1])
        except ValueError:
            return None
    return None


def gif_bytes(video, fps: float = 8) -> bytes:
    """Encode a video as GIF bytes (used for inline display and widgets)."""
    import io

    from PIL import Image

    arr = as_video_array(video)
    frames = [Image.fromarray(f) for f in arr]
    buf = io.BytesIO()
    duration = max(20, round(1000 / fps))
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=duration,
                   loop=0, optimize=False, disposal=1, comment=f"sora_mini frame_ms={duration}".encode())
    return buf.getvalue()


def write_video(path: str | os.PathLike, video, fps: float = 8) -> Path:
    """Write ``video`` (uint8 or float in [0, 1], ``[T,H,W,3]``) to gif, mp4, npz or an image; atomic."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READABLE:
        raise ValueError(f"cannot write {path.name!r}: unknown format {suffix!r}; writable: {', '.join(READABLE)}")
    arr = as_video_array(video)
    tmp = _atomic_target(path)
    try:
        if suffix == ".npz":
            with open(tmp, "wb") as f:
                np.savez_compressed(f, video=arr)
        elif suffix == ".gif":
            tmp.write_bytes(gif_bytes(arr, fps))
        elif suffix == ".mp4":
            import imageio.v3 as iio

            # yuv420p needs even sides: pad by edge replication, never resize
            h, w = arr.shape[1:3]
            padded = np.pad(arr, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            iio.imwrite(tmp, padded, plugin="FFMPEG", fps=fps, codec="libx264",
                        output_params=["-crf", "12"], macro_block_size=1)
        else:
            if arr.shape[0] != 1:
                raise ValueError(f"{path.name}: an image file holds one frame, got {arr.shape[0]}; use .gif/.mp4/.npz")
            from PIL import Image

            Image.fromarray(arr[0]).save(tmp, format=None if suffix != ".jpg" else "JPEG")
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
