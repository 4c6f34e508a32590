"""The prompting modes of the pipeline: which frames each keeps, the policy for inputs of any
size, and the measurements of each mode (the maths; ``sora_mini.prompting`` runs them).

Every mode is one trained model with a different mask of given (clean) latents, the masks the
training drew (``sora_mini.train.video``): text-to-video (none), image-to-video (the first frame),
extension forward / backward (the first / last latent frames: the given clip's end / start),
connecting two clips (both ends), a seamless loop (a short clip X, then the loop connects X's end
to X's start, so its last frame leads into its first as X's frames do), spatial inpainting (everything outside a box), long videos (repeated forward
extension); SDEdit editing keeps no frame but starts from the input noised to ``strength``.

Conditioning frames are named in pixel frames and kept in latent frames of the causal
autoencoder: a latent frame is given only when every pixel frame it covers is given
(``sora_mini.patches.frames``), and the pixel frames actually kept are those of the given latent
frames. :func:`conditioning_masks` returns the three masks so a user sees what is kept.

Input policy: an image or clip of a size the model cannot take is **center-cropped** to the
largest it can (height and width down to multiples of the pipeline's ``spatial_multiple``; a clip
that is edited or inpainted whole down to its first ``1 + k n`` frames); one smaller than a single
multiple is a ``ValueError`` that names the minimum. The output has the (cropped) input's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# sora_mini.patches (and torch with it) is imported where it is used, so the command line can read
# MODES without loading torch
MODES = {  # name: (the inputs it needs, what it does)
    "t2v": ((), "text-to-video"),
    "i2v": (("image",), "image-to-video: the image is the first frame"),
    "extend": (("video",), "extend a clip forward or backward in time"),
    "connect": (("video", "video2"), "the frames that join the end of one clip to the start of another"),
    "edit": (("video",), "SDEdit: the clip noised to `strength`, denoised under the prompt"),
    "loop": ((), "a seamless loop: a short clip, then the loop that connects its end to its start"),
    "inpaint": (("video", "box"), "regenerate a box of a clip, keep the rest"),
    "long": ((), "a long video by repeated forward extension"),
}
DIRECTIONS = ("forward", "backward")
DEFAULT_OVERLAP = {"extend": 2, "connect": 1, "loop": 1, "long": 2}  # latent frames of context per side


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")
    return mode


# ----------------------------------------------------------------------------------------------
# Masks
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConditioningMasks:
    """One mode's masks, True = given: ``requested`` bool [T] (the pixel frames the inputs fill),
    ``latent`` bool [t] (the latent frames kept clean), ``kept`` bool [T] (the pixel frames of
    those: what comes back); ``note`` says what "given" means in this mode."""

    mode: str
    requested: np.ndarray
    latent: np.ndarray
    kept: np.ndarray
    note: str = ""

    @property
    def dropped(self) -> np.ndarray:
        """bool [T]: pixel frames given but generated (their latent frame is only partly given)."""
        return self.requested & ~self.kept


def _sides(mode: str, overlap: int, direction: str, k: int, context_frames) -> tuple[int, int]:
    """(head, tail) pixel frames the inputs fill."""
    from sora_mini.patches.frames import head_pixel_frames, tail_pixel_frames

    if context_frames is not None:
        head, tail = context_frames if isinstance(context_frames, tuple) else (context_frames, context_frames)
    else:
        head, tail = head_pixel_frames(overlap, k), tail_pixel_frames(overlap, k)
    if mode == "i2v":
        return 1, 0
    if mode in ("extend", "long"):
        return (head, 0) if direction == "forward" else (0, tail)
    if mode in ("connect", "loop"):
        return head, tail
    return 0, 0


def conditioning_masks(mode: str, num_frames: int, temporal_factor: int, *, overlap: int = 1,
                       direction: str = "forward", context_frames=None) -> ConditioningMasks:
    """The masks of ``mode`` for a clip of ``num_frames`` (= 1 + k n) pixel frames.

    ``overlap``: latent frames of context per given side (extend, connect, loop: the closing pass,
    long: each segment after the first). ``context_frames``: name the given pixel frames instead,
    an int or (head, tail) for connect, to see the rule at work (``dropped``).
    """
    from sora_mini.patches.frames import latent_given, pixel_given
    from sora_mini.patches.patchify import latent_frames

    check_mode(mode)
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, (int, np.integer)) or overlap < 1:
        raise ValueError(f"overlap is a number of latent frames >= 1, got {overlap!r}")
    k, T = temporal_factor, num_frames
    t = latent_frames(T, k)
    head, tail = _sides(mode, overlap, direction, k, context_frames)
    if head < 0 or tail < 0 or head + tail > T:
        raise ValueError(f"{head} + {tail} given frames do not fit a clip of {T} frames")
    requested = np.zeros(T, dtype=bool)
    requested[:head] = True
    if tail:
        requested[T - tail:] = True
    if mode == "inpaint":
        requested[:] = True
    latent = latent_given(requested, k)
    if mode == "inpaint":
        note = "every frame is given outside the box; the box is generated in all of them"
    elif mode == "edit":
        note = "no frame is kept: every frame starts from the input noised to `strength`"
    else:
        note = {"loop": "the loop: a short clip's end (head) and its start (tail)",
                "long": "each segment after the first: the previous one's end"}.get(mode, "")
        if mode not in ("t2v",) and not latent.any():
            raise ValueError(f"{mode}: {head + tail} given pixel frames fill no whole latent frame of {T} frames "
                             f"(latent frame 0 is pixel frame 0, latent frame j the {k} pixel frames "
                             f"{k}(j-1)+1 .. {k}j); give more context frames")
        if latent.all():
            raise ValueError(f"{mode}: the context leaves no latent frame to generate in {T} frames ({t} latent "
                             f"frames); give more frames (num_frames) or a smaller overlap")
    return ConditioningMasks(mode, requested, latent, pixel_given(latent, k), note)


# ----------------------------------------------------------------------------------------------
# Inputs of any size
# ----------------------------------------------------------------------------------------------
def crop_to_fit(video: np.ndarray, multiple: int, what: str, temporal_factor: int | None = None):
    """uint8 [T, H, W, 3] -> (center crop [T', H', W', 3], (dy, dx) its offset): H and W down to
    multiples of ``multiple``; with ``temporal_factor`` the first 1 + k n frames (else all)."""
    from sora_mini.patches.patchify import nearest_frame_counts

    T, H, W = video.shape[:3]
    if H < multiple or W < multiple:
        raise ValueError(f"the {what} is {H}x{W} pixels; this pipeline takes at least {multiple}x{multiple} "
                         f"(height and width are cropped down to multiples of {multiple})")
    h, w = H // multiple * multiple, W // multiple * multiple
    dy, dx = (H - h) // 2, (W - w) // 2
    frames = T if temporal_factor is None else nearest_frame_counts(T, temporal_factor)[0]
    return np.ascontiguousarray(video[:frames, dy:dy + h, dx:dx + w]), (dy, dx)


def hold_fill(num_frames: int, at: list[int], frames: np.ndarray) -> np.ndarray:
    """A clip [T, H, W, 3] with ``frames`` [n, H, W, 3] at positions ``at`` and every other frame
    a copy of the nearest given one before it (after it, before the first): what the causal
    encoder sees around the given frames."""
    canvas = np.empty((num_frames, *frames.shape[1:]), dtype=frames.dtype)
    order = np.argsort(at)
    at, frames = np.asarray(at)[order], frames[order]
    source = np.clip(np.searchsorted(at, np.arange(num_frames), side="right") - 1, 0, None)
    canvas[:] = frames[source]
    return canvas


def check_box(box, input_hw: tuple[int, int], offset: tuple[int, int] = (0, 0),
              cropped_hw: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
    """A box (y0, x0, y1, x1) in the input's pixels (y1, x1 exclusive) -> the same box in the
    cropped frame (shifted by the crop ``offset``, clipped to ``cropped_hw``); a ValueError when it
    is not 4 integers with 0 <= y0 < y1 <= H and 0 <= x0 < x1 <= W, or lies in the cropped margin."""
    H, W = input_hw
    h, w = cropped_hw or input_hw
    dy, dx = offset
    try:
        y0, x0, y1, x1 = (int(v) for v in box)
    except (TypeError, ValueError) as e:
        raise ValueError(f"box must be 4 integers (y0, x0, y1, x1) in pixels, got {box!r}") from e
    if not (0 <= y0 < y1 <= H and 0 <= x0 < x1 <= W):
        raise ValueError(f"box (y0={y0}, x0={x0}, y1={y1}, x1={x1}) is empty or outside the {H}x{W} frame: "
                         f"need 0 <= y0 < y1 <= {H} and 0 <= x0 < x1 <= {W} (y1, x1 exclusive)")
    y0, y1 = max(0, y0 - dy), min(h, y1 - dy)
    x0, x1 = max(0, x0 - dx), min(w, x1 - dx)
    if y0 >= y1 or x0 >= x1:
        raise ValueError(f"box {tuple(box)} lies in the margin cropped away to fit the model (the "
                         f"{h}x{w} pixels from ({dy}, {dx}) are kept)")
    return y0, x0, y1, x1


def box_given_latents(box, latent_shape: tuple[int, int, int], spatial_factor: int,
                      patch: tuple[int, int, int]) -> np.ndarray:
    """bool [t, h, w] latent positions given (True) for inpainting a pixel ``box``: a token (a
    patch of ph x pw latent positions, ph s x pw s pixels) is generated when it touches the box."""
    t, h, w = latent_shape
    _, ph, pw = patch
    y0, x0, y1, x1 = box
    ty = np.arange(h // ph) * ph * spatial_factor  # the pixel rows where each token row starts
    tx = np.arange(w // pw) * pw * spatial_factor
    rows = (ty < y1) & (ty + ph * spatial_factor > y0)
    cols = (tx < x1) & (tx + pw * spatial_factor > x0)
    touched = np.repeat(np.repeat(rows[:, None] & cols[None, :], ph, 0), pw, 1)  # [h, w]
    return np.broadcast_to(~touched, (t, h, w)).copy()


def check_strength(strength) -> float:
    if isinstance(strength, bool) or not isinstance(strength, (int, float, np.floating)) \
            or not 0.0 <= float(strength) <= 1.0:
        raise ValueError(f"strength must be a number in [0, 1] (0 = the input unchanged, 1 = from pure "
                         f"noise), got {strength!r}")
    return float(strength)


# ----------------------------------------------------------------------------------------------
# Measurements
# ----------------------------------------------------------------------------------------------
def frame_steps(video: np.ndarray) -> np.ndarray:
    """Mean absolute change between consecutive frames, uint8 levels: [T, H, W, 3] -> [T - 1]."""
    v = np.asarray(video, dtype=np.float64)
    return np.abs(np.diff(v, axis=0)).mean(axis=(1, 2, 3))


def loop_seam(video: np.ndarray) -> dict:
    """How smooth a loop's seam is: the step from its last frame back to its first against its
    other frame steps (mean absolute change, uint8 levels). Target: ``ratio`` <= 1.5 at small."""
    steps = frame_steps(video)
    seam = float(np.abs(np.asarray(video[0], np.float64) - video[-1]).mean())
    median = float(np.median(steps)) if len(steps) else 0.0
    return {"seam": seam, "median_step": median, "ratio": seam / median if median > 0 else float("inf")}


def first_frame_psnr(video: np.ndarray, image: np.ndarray) -> float:
    """PSNR (dB) of a video's first frame to the image it was given (image-to-video)."""
    from sora_mini.evaluate.image_metrics import psnr

    return float(psnr(np.asarray(video)[0], np.asarray(image))[0])
