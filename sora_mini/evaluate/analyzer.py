"""Read a video's scene back from its pixels: background, objects, shapes, sizes, tracks, motions.

``VideoAnalyzer().analyze(video uint8 [T, H, W, 3]) -> Analysis``. Nothing but the pixels and the
world's vocabulary (palette, backgrounds, the three shapes) is used: no spec, no annotations.

1. **Colours** (``pixels``): the background, then each pixel's palette colour and coverage by
   unmixing anti-aliased edges; each palette colour with solid pixels in some frame is one object.
2. **Shape** (``shapes``): each shape's template is fitted to every frame; the shape with the
   smallest misfit over the frames where the object is whole wins (a vote robust to occlusion).
   The size over time is a line fitted on those frames; with it, each frame's centre is refitted
   (Gauss-Newton over the pixels no other object covers), so partly hidden frames stay exact.
3. **Depth**: where two objects' shapes overlap, the one whose colour shows there is in front.
   A frame without an object whose place is covered by one in front of it is "hidden", not absent.
4. **Attributes**: size class from the start half-extent, start region from the start centre,
   motion, direction, speed and events from the track (``motion.analyze_motion``).
5. **Credibility** (``credible``): every colour found is reported, but only a detection that is one
   piece and fits a shape counts as an object (``Analysis.credible_objects``); colour noise does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from sora_mini.evaluate.credible import credibility
from sora_mini.evaluate.motion import MotionResult, analyze_motion
from sora_mini.evaluate.pixels import (
    NONE,
    UNKNOWN,
    core_pixels,
    drop_specks,
    estimate_background,
    largest_piece_share,
    unmix,
)
from sora_mini.evaluate.shapes import CENTROID_DY, fit_shape, refine, robust_line, visible_share
from sora_mini.world.render import coverage
from sora_mini.world.spec import PALETTE, SHAPES, SIZES

SIZE_THRESHOLD = float(np.sqrt(np.prod(list(SIZES.values()))))  # geometric mean of the two sizes


@dataclass
class ObjectAnalysis:
    """One object found by colour; per-frame arrays have the frame axis first (length T)."""

    color: str
    shape: str
    size: str
    region: str
    center: np.ndarray  # [T, 2] box centre (x, y) in pixels, nan where not measured
    half_extent: np.ndarray  # [T] pixels, nan where not measured
    half_extent_free: np.ndarray  # [T] half-extent fitted per frame on its own (for consistency)
    visible: np.ndarray  # [T] bool: drawn (at least partly) in that frame
    hidden: np.ndarray  # [T] bool: not seen, but its place is covered by another object
    color_ok: np.ndarray  # [T] bool: its pixels match its palette colour closely
    reliable: np.ndarray  # [T] bool: mostly visible, so centre and size are measured
    visible_fraction: np.ndarray  # [T] share of the fitted shape not hidden or outside the frame
    shape_error: dict[str, float]  # mean template misfit per shape (lower is better)
    frame_shapes: list[str | None]  # best shape per reliable frame (None elsewhere)
    motion: MotionResult
    fit_misfit: np.ndarray  # [T] best template's misfit per frame (nan where not drawn)
    one_piece: np.ndarray  # [T] share of its coverage in its largest connected piece

    @property
    def credibility(self) -> dict:
        """Is it an object at all (``credible.credibility``): one piece, and a shape fits."""
        return credibility(self.fit_misfit, self.one_piece, self.visible)

    @property
    def credible(self) -> bool:
        return self.credibility["credible"]

    @property
    def box(self) -> np.ndarray:
        """``[T, 4]`` (x0, y0, x1, y1) in pixels."""
        r = self.half_extent[:, None]
        return np.concatenate([self.center - r, self.center + r], axis=1)

    @property
    def centroid(self) -> np.ndarray:
        """``[T, 2]`` centre of mass of the shape (a triangle's sits r / 3 below its box centre)."""
        dy = CENTROID_DY[self.shape] * self.half_extent
        return self.center + np.stack([np.zeros_like(dy), dy], -1)

    def attributes(self) -> dict:
        """The caption-level attributes read from the pixels (``None`` = not measurable)."""
        m = self.motion
        return {
            "shape": self.shape,
            "color": self.color,
            "size": self.size,
            "region": self.region,
            "motion": m.motion,
            "direction": m.direction,
            "speed": m.speed,
            "direction2": m.direction2,
            "event_time": m.event_time,
        }

    def to_dict(self) -> dict:
        def clean(a):
            return [None if not np.isfinite(v) else round(float(v), 3) for v in np.ravel(a)]

        return {
            **self.attributes(),
            "event_frame": self.motion.event_frame,
            "center": [clean(c) for c in self.center],
            "box": [clean(b) for b in self.box],
            "half_extent": clean(self.half_extent),
            "visible": self.visible.tolist(),
            "visible_fraction": clean(self.visible_fraction),
            "shape_error": {k: round(v, 4) for k, v in self.shape_error.items()},
            "events": self.motion.events,
            "physics": self.motion.physics,
            **self.credibility,
        }


@dataclass
class Analysis:
    """What a video shows, read from its pixels."""

    height: int
    width: int
    frames: int
    background: str
    background_rgb: tuple[float, float, float]
    objects: list[ObjectAnalysis] = field(default_factory=list)

    @property
    def unit(self) -> float:
        return float(min(self.height, self.width))

    @property
    def credible_objects(self) -> list[ObjectAnalysis]:
        """The detections that pass the object floor (``sora_mini.evaluate.credible``)."""
        return [o for o in self.objects if o.credible]

    def to_dict(self) -> dict:
        return {
            "height": self.height,
            "width": self.width,
            "frames": self.frames,
            "background": self.background,
            "objects": [o.to_dict() for o in self.objects],
        }


def region_name(x: float, y: float, width: int, height: int) -> str:
    """Which third of the frame a point is in, by column and row: 'top left' ... 'bottom right'."""
    col = min(max(int(3 * x / width), 0), 2)
    row = min(max(int(3 * y / height), 0), 2)
    name = f"{('top', '', 'bottom')[row]} {('left', '', 'right')[col]}".strip()
    return name or "center"


@dataclass
class _Fit:
    """One colour's per-frame fit, before depth and motion are known."""

    color: str
    label: int
    a: np.ndarray  # [T, H, W] its coverage
    known: np.ndarray  # [T, H, W] pixels of its own colour or background
    present: np.ndarray  # [T]
    shape: str
    errors: dict
    frame_shapes: list
    r_free: np.ndarray  # [T]
    r_model: np.ndarray  # [T]
    center: np.ndarray  # [T, 2]
    vfrac: np.ndarray  # [T]
    color_ok: np.ndarray  # [T]
    misfit: np.ndarray  # [T] the best shape's misfit per frame (nan where not present)
    one_piece: np.ndarray  # [T] share of its coverage in its largest connected piece


@dataclass
class VideoAnalyzer:
    """Pixels -> ``Analysis``. Thresholds are in 0-255 colour units or fractions of the frame."""

    background_radius: float = 40.0  # pixels this close to a background colour vote for it
    residual_tolerance: float = 14.0  # largest colour misfit of a one-object pixel
    min_area: float = 0.008  # smallest object area, as a fraction of the shorter side squared
    reliable_fraction: float = 0.5  # visible share above which a frame's centre is used for motion

    def analyze(self, video) -> Analysis:
        """``video`` uint8 ``[T, H, W, 3]`` (or ``[H, W, 3]`` for an image) -> ``Analysis``."""
        video = np.asarray(video)
        if video.ndim == 3:
            video = video[None]
        if video.ndim != 4 or video.shape[-1] != 3:
            raise ValueError(f"expected a video [T, H, W, 3] (uint8), got shape {video.shape}")
        T, H, W, _ = video.shape
        px = video.astype(np.float32)
        bg_name, bg, noise = estimate_background(px, self.background_radius)
        labels, alpha, resid = unmix(px, bg, self.residual_tolerance, noise)
        # a pixel no single colour explains, far from the background, is two objects' edges mixing
        mixed = (labels == UNKNOWN) & (np.linalg.norm(px - bg, axis=-1) >= 60.0)
        fits = [
            f
            for k, name in enumerate(PALETTE)
            if (f := self._fit(name, k, labels, alpha, resid, mixed)) is not None
        ]
        front = self._depth(fits, labels)
        objects = [self._finish(f, i, fits, front, labels) for i, f in enumerate(fits)]
        return Analysis(H, W, T, bg_name, tuple(float(v) for v in bg), objects)

    def _fit(self, name: str, k: int, labels, alpha, resid, mixed) -> _Fit | None:
        T, H, W = labels.shape
        unit = float(min(H, W))
        a = np.where(labels == k, alpha, 0.0)  # [T, H, W] this colour's coverage
        area = a.sum(axis=(1, 2))
        if area.max() < self.min_area * unit**2:
            return None
        known = (labels == k) | (labels == NONE)  # pixels not taken by another object
        # an object needs solid pixels somewhere; a frame shows it if it has some there, or if its
        # pixels do not lie between two other objects (where their blended edges could fake it)
        core = core_pixels(a, known).any(axis=(1, 2))
        if not core.any():
            return None
        near = ndimage.binary_dilation(a > 0, np.ones((1, 3, 3))) & (labels >= 0) & (labels != k)
        between = np.array([len(np.unique(labels[t][near[t]])) >= 2 for t in range(T)])
        present = (area >= self.min_area * unit**2) & (core | ~between)
        if not present.any():
            return None
        a, known = drop_specks(a, known)
        fits = {s: fit_shape(s, a, known, present) for s in SHAPES}
        # the shape: vote over frames where the object is whole: it touches no other object and
        # its fit lies on comparable pixels (else the most visible frames)
        others = ((labels >= 0) & (labels != k) & (alpha >= 0.5)) | mixed  # other objects' pixels
        alone = ~(ndimage.binary_dilation(a > 0, np.ones((1, 3, 3))) & others).any(axis=(1, 2))
        vis = np.max([f[3] for f in fits.values()], axis=0)
        clean = present & alone & (vis >= 0.95)
        if not clean.any():
            clean = present & (vis >= vis.max() - 0.05)
        errors = {s: float(np.nanmean(f[2][clean])) for s, f in fits.items()}
        shape = min(errors, key=errors.get)
        per_frame = np.array([f[2] for f in fits.values()])  # [3, T]
        frame_shapes = [
            SHAPES[int(np.nanargmin(per_frame[:, t]))] if clean[t] else None for t in range(T)
        ]
        # the size over time (a line: constant, growing or shrinking) from its whole frames;
        # if it is never whole, from a joint fit of centre and size on its most visible frames
        center, r_free, _, vis_shape = fits[shape]
        whole = present & alone & (vis_shape >= 0.95)
        if whole.sum() < 2:
            whole = present & (vis_shape >= 0.95)
        if not whole.any():
            whole = present & (vis_shape >= vis_shape.max() - 0.2)
            center, r_free = refine(shape, a, known, center, r_free, whole, fit_size=True)
        t_whole = np.flatnonzero(whole)
        slope, r0 = robust_line(t_whole.astype(float), r_free[t_whole])
        r_model = r0 + slope * np.arange(T)
        center = fit_shape(shape, a, known, present, r_fixed=r_model)[0]
        partly = present & (visible_share(shape, known, center, r_model) < 0.98)
        center, _ = refine(shape, a, known, center, r_model, partly)
        vfrac = np.where(present, visible_share(shape, known, center, r_model), 0.0)
        solid = (labels == k) & (alpha >= 0.5)
        med = np.array(
            [np.median(resid[t][solid[t]]) if solid[t].any() else np.inf for t in range(T)]
        )
        return _Fit(color=name, label=k, a=a, known=known, present=present, shape=shape,
                    errors=errors, frame_shapes=frame_shapes, r_free=r_free, r_model=r_model,
                    center=center, vfrac=vfrac,
                    color_ok=present & (med <= 0.5 * self.residual_tolerance),
                    misfit=per_frame.min(axis=0), one_piece=largest_piece_share(a))

    @staticmethod
    def _depth(fits: list[_Fit], labels) -> np.ndarray:
        """``front[i, j]``: +1 if object i is in front of j, -1 behind, 0 unknown (no overlap)."""
        n = len(fits)
        front = np.zeros((n, n), dtype=int)
        _, H, W = labels.shape
        tpl = [
            coverage(f.shape, np.nan_to_num(f.center), f.r_model, H, W) * f.present[:, None, None]
            for f in fits
        ]
        for i in range(n):
            for j in range(i + 1, n):
                both = (tpl[i] > 0.5) & (tpl[j] > 0.5)
                vi = int((both & (labels == fits[i].label)).sum())
                vj = int((both & (labels == fits[j].label)).sum())
                if max(vi, vj) >= 2 and vi != vj:
                    front[i, j] = 1 if vi > vj else -1
                    front[j, i] = -front[i, j]
        return front

    def _finish(
        self, f: _Fit, i: int, fits: list[_Fit], front: np.ndarray, labels
    ) -> ObjectAnalysis:
        _, H, W = labels.shape
        unit = float(min(H, W))
        # pixels that may hide this object: unknown ones, and objects not known to be behind it
        occluders = labels == UNKNOWN
        for j, g in enumerate(fits):
            if j != i and front[i, j] <= 0:
                occluders |= labels == g.label
        hidden = ~f.present & _covered(f, occluders)
        r = np.where(f.present, f.r_model, np.nan)
        reliable = f.present & (f.vfrac >= self.reliable_fraction)
        motion = analyze_motion(f.center, r, f.present, reliable, hidden, H, W)
        r0 = (
            motion.start_half_extent
            if motion.motion in ("grow", "shrink")
            else float(np.nanmedian(r))
        )
        x0, y0 = motion.start_center
        return ObjectAnalysis(
            color=f.color,
            shape=f.shape,
            size="large" if r0 / unit > SIZE_THRESHOLD else "small",
            region=region_name(x0, y0, W, H),
            center=np.where(f.present[:, None], f.center, np.nan),
            half_extent=r,
            half_extent_free=f.r_free,
            visible=f.present,
            hidden=hidden,
            color_ok=f.color_ok,
            reliable=reliable,
            visible_fraction=f.vfrac,
            shape_error=f.errors,
            frame_shapes=f.frame_shapes,
            motion=motion,
            fit_misfit=f.misfit,
            one_piece=f.one_piece,
        )


def _covered(f: _Fit, occluders: np.ndarray) -> np.ndarray:
    """[T] bool: frames without the object where it is probably behind another object.

    Its place is guessed from the seen frames (interpolated, or extrapolated at constant
    velocity); it is hidden if nearly all of that place is covered by a possible occluder, or if
    part of it is and a sliver of the object shows there (a visible part showing nothing: gone).
    """
    T, H, W = f.a.shape
    idx = np.flatnonzero(f.present)
    t = np.arange(T, dtype=np.float64)
    guess = np.empty((T, 2))
    for ax in (0, 1):
        c = f.center[idx, ax]
        guess[:, ax] = np.interp(t, idx, c)
        if len(idx) >= 2:  # constant velocity beyond the first / last seen frame
            before, after = t < idx[0], t > idx[-1]
            guess[before, ax] = c[0] + (c[1] - c[0]) / (idx[1] - idx[0]) * (t[before] - idx[0])
            guess[after, ax] = c[-1] + (c[-1] - c[-2]) / (idx[-1] - idx[-2]) * (t[after] - idx[-1])
    tpl = coverage(f.shape, guess, f.r_model, H, W)  # [T, H, W]
    mass = np.maximum(tpl.sum(axis=(1, 2)), 1e-6)
    covered = (tpl * occluders).sum(axis=(1, 2)) / mass
    sliver = (tpl * (f.a > 0)).sum(axis=(1, 2)) / mass
    return (covered > 0.85) | ((sliver > 0.05) & (covered > 0.2))
