"""Read a video's scene back from its pixels: background, objects, shapes, sizes, tracks and motions.

``VideoAnalyzer().analyze(video uint8 [T, H, W, 3]) -> Analysis``. Nothing but the pixels and the
world's vocabulary (palette, shapes) is used: no spec, no annotations.

1. **Background**: the vocabulary background that most pixels are near; its colour is their median.
2. **Colour unmixing**: an anti-aliased edge pixel is ``b + a (c - b)``; for every palette colour
   ``c`` the coverage ``a`` is the projection of ``p - b`` on ``c - b`` and the pixel goes to the
   colour with the smallest residual. Pixels that fit no single colour (where two objects' edges
   mix) are marked unknown. Each palette colour present in some frame is one object.
3. **Shape fit** per frame, vectorised over frames: a template of each shape (the same analytic
   coverage the renderer draws) is placed by matching the centroid and area of the observed
   coverage, iterating with the pixels of other objects masked out so a partly hidden object is
   still placed right. The shape whose template fits best, summed over the frames where the object
   is mostly visible, wins; its fits give the per-frame box (centre, half-extent).
4. Size class, start region and motion (``sora_mini.evaluate.motion``) come from the track.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from sora_mini.evaluate.motion import MotionResult, analyze_motion
from sora_mini.world.render import coverage
from sora_mini.world.spec import BACKGROUNDS, PALETTE, SHAPES, SIZES

SHAPE_AREA = {"circle": np.pi, "square": 4.0, "triangle": 2.0}  # area / half_extent^2
CENTROID_DY = {"circle": 0.0, "square": 0.0, "triangle": 1 / 3}  # (centroid - box centre).y / r
SIZE_THRESHOLD = float(np.sqrt(np.prod(list(SIZES.values()))))  # geometric mean of the two sizes
UNKNOWN = -2  # label of a pixel that mixes two objects
NONE = -1  # label of a background pixel


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

    @property
    def box(self) -> np.ndarray:
        """``[T, 4]`` (x0, y0, x1, y1) in pixels."""
        r = self.half_extent[:, None]
        return np.concatenate([self.center - r, self.center + r], axis=1)

    def attributes(self) -> dict:
        """The caption-level attributes read from the pixels (``None`` = not measurable)."""
        m = self.motion
        return {"shape": self.shape, "color": self.color, "size": self.size, "region": self.region,
                "motion": m.motion, "direction": m.direction, "speed": m.speed,
                "direction2": m.direction2, "event_time": m.event_time}

    def to_dict(self) -> dict:
        def clean(a):
            return [None if not np.isfinite(v) else round(float(v), 3) for v in np.ravel(a)]
        return {**self.attributes(), "event_frame": self.motion.event_frame,
                "center": [clean(c) for c in self.center], "half_extent": clean(self.half_extent),
                "visible": self.visible.tolist(), "visible_fraction": clean(self.visible_fraction),
                "shape_error": {k: round(v, 4) for k, v in self.shape_error.items()},
                "events": self.motion.events, "physics": self.motion.physics}


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

    def to_dict(self) -> dict:
        return {"height": self.height, "width": self.width, "frames": self.frames,
                "background": self.background, "objects": [o.to_dict() for o in self.objects]}


def _robust_line(t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares line y = r0 + slope t, refitted without points far off it -> (slope, r0)."""
    if len(t) < 2:
        return 0.0, float(y[0])
    keep = np.ones(len(t), dtype=bool)
    for _ in range(2):
        slope, r0 = np.polyfit(t[keep], y[keep], 1)
        res = np.abs(y - (r0 + slope * t))
        keep = res <= max(3 * np.median(res), 0.02 * np.median(y))
        if keep.sum() < 2:
            break
    return float(slope), float(r0)


def region_name(x: float, y: float, width: int, height: int) -> str:
    """Which third of the frame a point is in, by column and row: 'top left' ... 'bottom right'."""
    col = min(max(int(3 * x / width), 0), 2)
    row = min(max(int(3 * y / height), 0), 2)
    name = f"{('top', '', 'bottom')[row]} {('left', '', 'right')[col]}".strip()
    return name or "center"


@dataclass
class VideoAnalyzer:
    """Pixels -> ``Analysis``. Thresholds are in units of the palette distance or the frame."""

    background_radius: float = 40.0  # pixels this close to a background colour vote for it
    residual_tolerance: float = 14.0  # largest colour misfit (0-255 units) of a one-object pixel
    min_area: float = 0.008  # smallest object area, as a fraction of the shorter side squared
    reliable_fraction: float = 0.5  # visible share above which a frame's fit is trusted
    fit_iterations: int = 5

    def analyze(self, video) -> Analysis:
        """``video`` uint8 ``[T, H, W, 3]`` (or ``[H, W, 3]`` for an image) -> ``Analysis``."""
        video = np.asarray(video)
        if video.ndim == 3:
            video = video[None]
        if video.ndim != 4 or video.shape[-1] != 3:
            raise ValueError(f"expected a video [T, H, W, 3], got shape {video.shape}")
        T, H, W, _ = video.shape
        px = video.astype(np.float32)
        bg_name, bg = self._background(px)
        labels, alpha, resid = self._unmix(px, bg)
        names = list(PALETTE)
        unit = float(min(H, W))
        objects = []
        for k, name in enumerate(names):
            a = np.where(labels == k, alpha, 0.0)  # [T, H, W] this colour's coverage
            area = a.sum(axis=(1, 2))
            if area.max() < self.min_area * unit**2:
                continue
            known = (labels == k) | (labels == NONE)  # pixels not taken by another object
            # a core pixel (solid, among its own colour or background) tells an object from the
            # blend of two others' edges (red over yellow looks orange)
            core = (a >= 0.9) & ndimage.binary_erosion(known, np.ones((1, 3, 3)), border_value=1)
            present = (area >= self.min_area * unit**2) & core.any(axis=(1, 2))
            if not present.any():
                continue
            a, known = self._drop_specks(a, known)
            solid = (labels == k) & (alpha >= 0.5)
            med = np.array([np.median(resid[t][solid[t]]) if solid[t].any() else np.inf for t in range(T)])
            obj = self._object(name, a, known, present, unit)
            obj.color_ok = present & (med <= 0.5 * self.residual_tolerance)
            objects.append(obj)
        return Analysis(H, W, T, bg_name, tuple(float(v) for v in bg), objects)

    # -- pixels ---------------------------------------------------------------------------------
    def _background(self, px: np.ndarray) -> tuple[str, np.ndarray]:
        names = list(BACKGROUNDS)
        refs = np.array([BACKGROUNDS[n] for n in names], dtype=np.float32)  # [B, 3]
        sample = px.reshape(-1, 3)
        dist = np.linalg.norm(sample[:, None, :] - refs[None], axis=-1)  # [N, B]
        near = dist < self.background_radius
        best = int(np.argmax((near & (dist == dist.min(axis=1, keepdims=True))).sum(axis=0)))
        own = sample[near[:, best] & (dist[:, best] == dist.min(axis=1))]
        return names[best], (np.median(own, axis=0) if len(own) else refs[best])

    def _unmix(self, px: np.ndarray, bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per pixel: the palette index it shows (or NONE / UNKNOWN) and its coverage in [0, 1]."""
        cols = np.array(list(PALETTE.values()), dtype=np.float32) - bg  # [K, 3]
        diff = px - bg  # [T, H, W, 3]
        a = np.clip(np.einsum("thwc,kc->thwk", diff, cols) / (cols**2).sum(-1), 0.0, 1.0)  # [T,H,W,K]
        resid = np.linalg.norm(diff[..., None, :] - a[..., None] * cols, axis=-1)  # [T, H, W, K]
        best = resid.argmin(-1)  # [T, H, W]
        alpha = np.take_along_axis(a, best[..., None], -1)[..., 0]
        res = np.take_along_axis(resid, best[..., None], -1)[..., 0]
        strength = np.linalg.norm(diff, axis=-1)
        labels = np.where(res <= self.residual_tolerance + 0.05 * strength, best, UNKNOWN)
        labels = np.where(strength < 4.0, NONE, labels)  # too close to the background to say
        return labels, np.where(labels >= 0, alpha, 0.0), res

    @staticmethod
    def _drop_specks(a: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Remove blobs holding under 10% of a frame's coverage that touch no other object (noise in
        generated videos; a piece cut off by an occluder touches it and stays) -> (a, known)."""
        a, known = a.copy(), known.copy()
        for t in range(a.shape[0]):
            lab, n = ndimage.label(a[t] > 0, structure=np.ones((3, 3)))
            if n > 1:
                mass = ndimage.sum(a[t], lab, index=np.arange(1, n + 1))
                for b in np.flatnonzero(mass < 0.1 * mass.sum()) + 1:
                    blob = lab == b
                    if known[t][ndimage.binary_dilation(blob, np.ones((3, 3)))].all():
                        a[t][blob] = 0.0
                        known[t][blob] = False
        return a, known

    # -- shape fitting --------------------------------------------------------------------------
    def _fit(self, shape: str, a: np.ndarray, known: np.ndarray, present: np.ndarray, r_fixed=None,
             iterations: int | None = None):
        """Place a ``shape`` template on each frame -> (centre [T, 2], r [T], misfit [T], visible share [T]).

        The template's centroid and area over the comparable pixels (``known``) are matched to the
        observed ones; with ``r_fixed`` [T] only the centre moves (for partly hidden frames).
        """
        T, H, W = a.shape
        xs, ys = np.arange(W) + 0.5, np.arange(H) + 0.5
        mass = np.maximum(a.sum(axis=(1, 2)), 1e-6)  # [T]
        m_obs = np.stack([(a.sum(1) * xs).sum(-1), (a.sum(2) * ys).sum(-1)], -1) / mass[:, None]  # [T, 2]
        r = np.sqrt(mass / SHAPE_AREA[shape]) if r_fixed is None else np.array(r_fixed, dtype=np.float64)
        center = m_obs - np.stack([np.zeros(T), CENTROID_DY[shape] * r], -1)
        for _ in range(iterations or self.fit_iterations):
            tpl = coverage(shape, center, r, H, W) * known  # [T, H, W] the part we can compare
            t_mass = np.maximum(tpl.sum(axis=(1, 2)), 1e-6)
            m_tpl = np.stack([(tpl.sum(1) * xs).sum(-1), (tpl.sum(2) * ys).sum(-1)], -1) / t_mass[:, None]
            center = center + (m_obs - m_tpl)
            if r_fixed is None:
                r = r * np.clip(np.sqrt(mass / t_mass), 0.8, 1.25)
        tpl = coverage(shape, center, r, H, W)
        misfit = (np.abs(a - tpl) * known).sum(axis=(1, 2)) / mass  # [T]
        vis = (tpl * known).sum(axis=(1, 2)) / np.maximum(SHAPE_AREA[shape] * r**2, 1e-6)
        bad = ~present
        center[bad], r[bad], misfit[bad], vis[bad] = np.nan, np.nan, np.nan, 0.0
        return center, r, misfit, np.clip(vis, 0.0, 1.0)

    @staticmethod
    def _refine(shape, a, known, center, r, frames, steps: int = 8, h: float = 0.05):
        """Gauss-Newton on the centre of the frames ``frames`` (bool [T]): least squares of
        template - coverage over the comparable pixels (a partly hidden object) -> new centre [T, 2]."""
        sel = np.flatnonzero(frames & np.isfinite(center[:, 0]))
        if len(sel) == 0:
            return center
        T, H, W = a.shape
        c, rr, obs, k = center[sel].copy(), r[sel], a[sel], known[sel].astype(np.float32)
        for _ in range(steps):
            t0 = coverage(shape, c, rr, H, W)
            jx = (coverage(shape, c + [h, 0.0], rr, H, W) - t0) / h * k  # [n, H, W]
            jy = (coverage(shape, c + [0.0, h], rr, H, W) - t0) / h * k
            res = (obs - t0) * k
            jtj = np.array([[(jx * jx).sum((1, 2)), (jx * jy).sum((1, 2))],
                            [(jx * jy).sum((1, 2)), (jy * jy).sum((1, 2))]]).transpose(2, 0, 1)  # [n, 2, 2]
            jtr = np.stack([(jx * res).sum((1, 2)), (jy * res).sum((1, 2))], -1)  # [n, 2]
            step = np.linalg.solve(jtj + 1e-3 * np.eye(2), jtr[..., None])[..., 0]
            c = c + np.clip(step, -1.0, 1.0)
        out = center.copy()
        out[sel] = c
        return out

    def _object(self, name, a, known, present, unit: float) -> ObjectAnalysis:
        T, H, W = a.shape
        fits = {s: self._fit(s, a, known, present) for s in SHAPES}
        # vote over frames where the object is wholly visible (else the most visible ones)
        vis = np.max([f[3] for f in fits.values()], axis=0)
        clean = present & (vis >= 0.95)
        if not clean.any():
            clean = present & (vis >= vis.max() - 0.05)
        errors = {s: float(np.nanmean(f[2][clean])) for s, f in fits.items()}
        shape = min(errors, key=errors.get)
        per_frame = np.array([f[2] for f in fits.values()])  # [3, T]
        frame_shapes = [SHAPES[int(np.nanargmin(per_frame[:, t]))] if clean[t] else None
                        for t in range(T)]
        # the size over time from the clean frames (a line: constant, or growing / shrinking),
        # then every frame's centre refitted with that size so partly hidden frames stay right
        r_free, vis_shape = fits[shape][1], fits[shape][3]
        own_clean = present & (vis_shape >= 0.95)
        t_clean = np.flatnonzero(own_clean if own_clean.any() else clean)
        slope, r0 = _robust_line(t_clean.astype(float), r_free[t_clean])
        r_model = r0 + slope * np.arange(T)
        center, _, misfit, vfrac = self._fit(shape, a, known, present, r_fixed=r_model)
        center = self._refine(shape, a, known, center, r_model, present & (vfrac < 0.98))
        tpl = coverage(shape, np.nan_to_num(center), r_model, H, W)
        vfrac = np.where(present, (tpl * known).sum(axis=(1, 2)) / (SHAPE_AREA[shape] * r_model**2), 0.0)
        r = np.where(present, r_model, np.nan)
        reliable = present & (vfrac >= self.reliable_fraction)
        hidden = ~present & self._covered(a, known, center, r_model, present, shape)
        motion = analyze_motion(center, r, present, reliable, hidden, H, W)
        size = "large" if r0 / unit > SIZE_THRESHOLD else "small"
        x0, y0 = motion.start_center
        return ObjectAnalysis(color=name, shape=shape, size=size, region=region_name(x0, y0, W, H),
                              center=center, half_extent=r, half_extent_free=r_free, visible=present,
                              hidden=hidden, color_ok=present.copy(), reliable=reliable,
                              visible_fraction=vfrac, shape_error=errors, frame_shapes=frame_shapes,
                              motion=motion)

    @staticmethod
    def _covered(a, known, center, r, present, shape) -> np.ndarray:
        """[T] bool: frames without the object where it is probably behind another object.

        Its place is guessed from the seen frames (interpolated, or extrapolated at constant
        velocity); it is hidden if most of that place is covered, or a sliver of it shows there.
        """
        T, H, W = a.shape
        idx = np.flatnonzero(present)
        if len(idx) == 0:
            return np.zeros(T, dtype=bool)
        t = np.arange(T, dtype=np.float64)
        guess = np.empty((T, 2))
        for ax in (0, 1):
            c = center[idx, ax]
            guess[:, ax] = np.interp(t, idx, c)
            if len(idx) >= 2:  # constant velocity beyond the first / last seen frame
                before, after = t < idx[0], t > idx[-1]
                guess[before, ax] = c[0] + (c[1] - c[0]) / (idx[1] - idx[0]) * (t[before] - idx[0])
                guess[after, ax] = c[-1] + (c[-1] - c[-2]) / (idx[-1] - idx[-2]) * (t[after] - idx[-1])
        tpl = coverage(shape, guess, r, H, W)  # [T, H, W]
        mass = np.maximum(tpl.sum(axis=(1, 2)), 1e-6)
        covered = (tpl * ~known).sum(axis=(1, 2)) / mass
        sliver = (tpl * (a > 0)).sum(axis=(1, 2)) / mass
        return (covered > 0.5) | ((sliver > 0.05) & (covered > 0.2))
