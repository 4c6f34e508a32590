"""Every prompting mode on the one trained model: image-to-video, extension forward and backward,
connecting two clips, SDEdit editing, a seamless loop, spatial inpainting and long videos.

    pipe = SoraMiniPipeline.from_pretrained("small")
    pipe.image_to_video("a red circle moves right", image)              # uint8 [H, W, 3]
    pipe.extend(prompt, clip, direction="backward", overlap=2)          # uint8 [T, H, W, 3]
    pipe.connect(prompt, clip_a, clip_b); pipe.edit(prompt, clip, strength=0.6)
    pipe.loop(prompt); pipe.inpaint(prompt, clip, box=(8, 8, 24, 24)); pipe.long_video(prompt, segments=3)
    pipe.generate("extend", prompt, video=clip, direction="forward")    # by name (the CLI's way)

Each takes the sampling options of ``pipe(...)`` (num_frames, steps, guidance, seed, ...) and
returns a ``PipelineOutput`` whose ``info`` adds the mode, the pixel frames kept
(``given_frames``) and the latent frames kept (``given_latent_frames``).

How the inputs enter: the given pixel frames are laid on a canvas of the output's length (the
other frames hold the nearest given frame, :func:`sora_mini.modes.hold_fill`), the canvas is
encoded, and the latent frames that are wholly given (:func:`sora_mini.modes.conditioning_masks`)
are kept clean at every step: the transformer reads them as clean tokens with timestep 0
(``frame_cond="in_place"``, as trained) and they are put back exactly at the end. A given frame
comes back as the autoencoder's reconstruction of the canvas: at the head of a clip the causal
decoder gives it anyway; at the tail (extension backward, connect, loop) decoding would mix in the
generated frames before it (measured at small: connect's last frames 2.6 dB below the
reconstruction), so the reconstruction's frames replace the decoded ones there; the step into
them was 2.55 x the median frame step pasted, 2.48 x decoded in context. Inpainting keeps every
latent token that does not touch the box and pastes the input's pixels back outside the box, so a
clip is exactly unchanged there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from sora_mini.modes import (
    DEFAULT_OVERLAP,
    MODES,
    box_given_latents,
    check_box,
    check_mode,
    check_strength,
    conditioning_masks,
    crop_to_fit,
    hold_fill,
    loop_seam,
)


@dataclass(frozen=True, eq=False)
class GivenLatents:
    """What a generation starts from besides noise: ``known`` [1 or B, C, t, h, w] clean latents,
    read where ``mask`` bool [t, h, w] is True (None: nowhere), and SDEdit's ``strength`` in
    [0, 1] (None: none; 0 = the known latents as they are)."""

    known: torch.Tensor
    mask: torch.Tensor | None = None
    strength: float | None = None


def _clip(video, what: str) -> np.ndarray:
    from sora_mini.videoio import as_video_array

    if video is None:
        raise ValueError(f"this mode needs {what}; none was given")
    return as_video_array(video)


class PromptingModes:
    """The prompting modes of :class:`sora_mini.pipeline.SoraMiniPipeline` (a mixin; see the
    module docstring). It uses the pipeline's ``vae``, ``transformer``, ``defaults``,
    ``spatial_multiple`` and ``_generate``."""

    # -- pixels and latents ----------------------------------------------------------------------
    @torch.no_grad()
    def encode_video(self, videos) -> torch.Tensor:
        """uint8 [T, H, W, 3] or [B, T, H, W, 3] -> scaled latents [B, C, t, h, w] (float32)."""
        from sora_mini.convert import video_to_model

        return self.vae.encode(video_to_model(videos).to(self.device)).float()

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> np.ndarray:
        """Latents [B, C, t, h, w] -> uint8 [B, T, H, W, 3]."""
        from sora_mini.convert import model_to_video

        return model_to_video(self.vae.decode(latents.float()).clamp(-1, 1).cpu())

    def reconstruct(self, videos) -> np.ndarray:
        """The autoencoder's own reconstruction, uint8 [B, T, H, W, 3]: what a given frame comes
        back as (the reference of the invariance tests)."""
        return self.decode_latents(self.encode_video(videos))

    # -- inputs ----------------------------------------------------------------------------------
    def _fit(self, video: np.ndarray, what: str, options: dict, *, whole: bool = False):
        """The input center-cropped to a size the model takes (``sora_mini.modes``: the policy);
        sets the output's height and width to it (a given one that differs is an error)."""
        clip, offset = crop_to_fit(video, self.spatial_multiple, what, self.vae.temporal_factor if whole else None)
        sizes = {"height": clip.shape[1], "width": clip.shape[2]}
        if whole:
            sizes["num_frames"] = clip.shape[0]
        for name, value in sizes.items():
            if options.get(name) not in (None, value):
                raise ValueError(f"{name}={options[name]} differs from the {what}'s {value} (after cropping "
                                 f"{video.shape[0]}x{video.shape[1]}x{video.shape[2]} to fit); leave {name} out")
            options[name] = value
        return clip, offset

    def _num_frames(self, options: dict) -> int:
        T = options.get("num_frames") or self.defaults.num_frames
        self.check_size(self.spatial_multiple, self.spatial_multiple, T)
        return T

    def _conditioned(self, prompt, mode: str, masks, canvas: np.ndarray, options: dict, **info):
        """Generate with the wholly given latent frames of ``canvas`` [1 or B, T, H, W, 3] kept."""
        known = self.encode_video(canvas)
        given = torch.as_tensor(masks.latent)[:, None, None].expand(known.shape[2:]).clone()
        out = self._generate(prompt, GivenLatents(known, given), **options)
        kept = np.flatnonzero(masks.kept)  # the given frames as the autoencoder reconstructs the canvas
        out.videos[:, kept] = self.decode_latents(known)[:, kept]
        out.info.update(mode=mode, given_frames=kept.tolist(),
                        given_latent_frames=np.flatnonzero(masks.latent).tolist(), **info)
        return out

    # -- the modes -------------------------------------------------------------------------------
    def image_to_video(self, prompt, image, **options):
        """Animate ``image`` uint8 [H, W, 3] (or a one-frame clip) as the first frame."""
        image = _clip(image, "an image (uint8 [H, W, 3])")
        if image.shape[0] != 1:
            raise ValueError(f"image-to-video takes one image [H, W, 3], got {image.shape[0]} frames; "
                             f"pass clip[0], or use mode extend for a clip")
        image, _ = self._fit(image, "image", options)
        masks = conditioning_masks("i2v", self._num_frames(options), self.vae.temporal_factor)
        canvas = hold_fill(len(masks.kept), [0], image)
        return self._conditioned(prompt, "i2v", masks, canvas, options)

    def extend(self, prompt, video, *, direction: str = "forward", overlap: int = DEFAULT_OVERLAP["extend"],
               **options):
        """A clip that continues ``video`` uint8 [T, H, W, 3] forward (its first ``overlap`` latent
        frames are the clip's last 1 + (overlap - 1) k pixel frames) or backward (its last
        ``overlap`` latent frames are the clip's first overlap k)."""
        video = _clip(video, "a clip (--video)")
        video, _ = self._fit(video, "clip", options)
        k = self.vae.temporal_factor
        masks = conditioning_masks("extend", self._num_frames(options), k, overlap=overlap, direction=direction)
        need = int(masks.kept.sum())
        if len(video) < need:
            raise ValueError(f"the clip has {len(video)} frames, too short to extend {direction} with overlap "
                             f"{overlap} latent frames: that takes {need} pixel frames; give a longer clip or a "
                             f"smaller overlap")
        at = np.flatnonzero(masks.kept).tolist()
        frames = video[len(video) - need:] if direction == "forward" else video[:need]
        canvas = hold_fill(len(masks.kept), at, frames)
        return self._conditioned(prompt, "extend", masks, canvas, options, direction=direction, overlap=overlap)

    def connect(self, prompt, video, video2, *, overlap: int = DEFAULT_OVERLAP["connect"], **options):
        """The frames that join the end of ``video`` to the start of ``video2`` (uint8 [T, H, W, 3]
        each, one size): the output starts on the first's last frames and ends on the second's first."""
        a, b = _clip(video, "a first clip (--video)"), _clip(video2, "a second clip (--video2)")
        a, _ = self._fit(a, "first clip", options)
        b, _ = self._fit(b, "second clip", options)
        return self._connect(prompt, a[None], b[None], overlap, options)

    def _connect(self, prompt, a: np.ndarray, b: np.ndarray, overlap: int, options: dict, mode: str = "connect"):
        """connect on batches a, b [B, T, H, W, 3] (example i joins a[i] to b[i])."""
        k = self.vae.temporal_factor
        masks = conditioning_masks(mode, self._num_frames(options), k, overlap=overlap)
        T, kept = len(masks.kept), masks.kept
        head, tail = int(np.argmax(~kept)), int(np.argmax(~kept[::-1]))  # the given runs at each end
        for name, clip in (("first", a), ("second", b)):
            if clip.shape[1] < max(head, tail):
                raise ValueError(f"the {name} clip has {clip.shape[1]} frames, too short to connect with overlap "
                                 f"{overlap} latent frames (it takes {head} frames of the first, {tail} of the second)")
        if a.shape[2:] != b.shape[2:]:
            raise ValueError(f"the clips differ in size ({a.shape[2]}x{a.shape[3]} and {b.shape[2]}x{b.shape[3]}"
                             f" after cropping); give two clips of one size")
        at = np.flatnonzero(kept).tolist()
        canvas = np.stack([hold_fill(T, at, np.concatenate([x[x.shape[0] - head:], y[:tail]]))
                           for x, y in zip(a, b)])
        return self._conditioned(prompt, mode, masks, canvas, options, overlap=overlap, head_frames=head,
                                 tail_frames=tail)

    def edit(self, prompt, video, *, strength: float = 0.6, **options):
        """SDEdit (Meng et al. 2021): ``video`` noised to ``strength`` in [0, 1], then denoised under
        the prompt; 0 returns the (cropped) input exactly, 1 is text-to-video from pure noise."""
        strength = check_strength(strength)
        video = _clip(video, "a clip to edit (--video)")
        video, _ = self._fit(video, "clip", options, whole=True)
        out = self._generate(prompt, GivenLatents(self.encode_video(video), strength=strength), **options)
        if strength == 0.0:
            out.videos = np.broadcast_to(video, out.videos.shape).copy()
        out.info.update(mode="edit", strength=strength, given_frames=[], given_latent_frames=[])
        return out

    def inpaint(self, prompt, video, box, **options):
        """Regenerate ``box`` (y0, x0, y1, x1) pixels (y1, x1 exclusive, in the input's
        coordinates) in every frame of ``video`` and keep the rest: every latent token that does
        not touch the box is kept, and the input's pixels are pasted back outside the box, so the
        output equals the input there exactly."""
        video = _clip(video, "a clip to inpaint (--video)")
        if box is None:
            raise ValueError("inpainting needs a box (y0, x0, y1, x1) in pixels; none was given")
        clip, offset = self._fit(video, "clip", options, whole=True)
        box = check_box(box, video.shape[1:3], offset, clip.shape[1:3])
        known = self.encode_video(clip)
        given = box_given_latents(box, tuple(known.shape[2:]), self.vae.spatial_factor, self.transformer.patch_size)
        out = self._generate(prompt, GivenLatents(known, torch.as_tensor(given)), **options)
        y0, x0, y1, x1 = box
        inside = np.zeros(clip.shape[1:3], dtype=bool)
        inside[y0:y1, x0:x1] = True
        out.videos = np.where(inside[None, None, :, :, None], out.videos, clip[None])
        out.info.update(mode="inpaint", box=list(box), given_frames=[], given_latent_frames=[],
                        given_tokens_share=float(given.mean()))
        return out

    def loop(self, prompt, *, overlap: int = DEFAULT_OVERLAP["loop"], **options):
        """A seamless loop of ``num_frames``: a short clip X of 1 + (2 overlap - 1) k frames
        (text-to-video), then the loop Y connects X's end (Y's head) to X's start (Y's tail). Y
        starts on X[overlap k] and ends on X[overlap k - 1], so playing Y again steps from one of
        X's frames to the next, decoded together. ``info["seam"]``: :func:`sora_mini.modes.loop_seam`
        of the first video."""
        k = self.vae.temporal_factor
        conditioning_masks("loop", self._num_frames(options), k, overlap=overlap)  # checks, before any pass
        source = self._generate(prompt, None, **{**options, "num_frames": 1 + (2 * overlap - 1) * k})
        closing = {**options, "extend": False, **self._next_seed(options, 1)}
        out = self._connect(source.info["used_prompts"], source.videos, source.videos, overlap, closing, mode="loop")
        out.info.update(prompts=source.info["prompts"], seed=source.info["seed"], source_frames=source.videos.shape[1],
                        seconds=round(source.info["seconds"] + out.info["seconds"], 3), seam=loop_seam(out.videos[0]))
        return out

    def long_video(self, prompt, *, segments: int = 3, overlap: int = DEFAULT_OVERLAP["long"], **options):
        """``segments`` clips of ``num_frames``, each after the first extending the one before it
        forward with ``overlap`` latent frames of context (its first 1 + (overlap - 1) k frames
        are the last ones so far); ``latents`` are the last segment's."""
        if isinstance(segments, bool) or not isinstance(segments, (int, np.integer)) or segments < 1:
            raise ValueError(f"segments must be an integer >= 1, got {segments!r}")
        masks = conditioning_masks("long", self._num_frames(options), self.vae.temporal_factor, overlap=overlap)
        need = int(masks.kept.sum())
        first = out = self._generate(prompt, None, **options)
        videos, starts, seconds = first.videos, [0], first.info["seconds"]
        for s in range(1, segments):
            canvas = np.stack([hold_fill(len(masks.kept), list(range(need)), v[len(v) - need:]) for v in videos])
            out = self._conditioned(first.info["used_prompts"], "long", masks, canvas,
                                    {**options, "extend": False, **self._next_seed(options, s)})
            starts.append(videos.shape[1] - need)
            videos = np.concatenate([videos, out.videos[:, need:]], axis=1)
            seconds += out.info["seconds"]
        info = {**first.info, "mode": "long", "segments": segments, "overlap": overlap, "segment_starts": starts,
                "num_frames": videos.shape[1], "seconds": round(seconds, 3),
                "given_frames": out.info.get("given_frames", []), "given_latent_frames": out.info.get(
                    "given_latent_frames", [])}
        return replace(out, videos=videos, info=info)

    @staticmethod
    def _next_seed(options: dict, step: int) -> dict:
        """A later pass's noise: the caller's generator continues, else seed + step."""
        if options.get("generator") is not None:
            return {}
        return {"seed": (options.get("seed") or 0) + step}

    # -- by name ---------------------------------------------------------------------------------
    def generate(self, mode: str, prompt, *, image=None, video=None, video2=None, box=None, direction=None,
                 strength=None, overlap=None, segments=None, **options):
        """Run ``mode`` (a name of ``sora_mini.modes.MODES``) with its inputs; an input the mode does
        not take, or one it needs and lacks, is a ValueError that says so."""
        check_mode(mode)
        given = {"image": image, "video": video, "video2": video2, "box": box, "direction": direction,
                 "strength": strength, "overlap": overlap, "segments": segments}
        takes = {"t2v": (), "i2v": ("image",), "extend": ("video", "direction", "overlap"),
                 "connect": ("video", "video2", "overlap"), "edit": ("video", "strength"), "loop": ("overlap",),
                 "inpaint": ("video", "box"), "long": ("segments", "overlap")}[mode]
        extra = [k for k, v in given.items() if v is not None and k not in takes]
        if extra:
            raise ValueError(f"mode {mode} does not take {', '.join(extra)} (it takes "
                             f"{', '.join(takes) or 'only the prompt and the sampling options'})")
        missing = [k for k in MODES[mode][0] if given[k] is None]
        if missing:
            raise ValueError(f"mode {mode} ({MODES[mode][1]}) needs {' and '.join(missing)}; none was given")
        kw = {k: given[k] for k in takes if given[k] is not None and k not in MODES[mode][0]}
        inputs = [given[k] for k in MODES[mode][0]]
        run = {"t2v": self.__call__, "i2v": self.image_to_video, "extend": self.extend, "connect": self.connect,
               "edit": self.edit, "loop": self.loop, "inpaint": self.inpaint, "long": self.long_video}[mode]
        out = run(prompt, *inputs, **kw, **options)
        out.info.setdefault("mode", mode)
        return out
