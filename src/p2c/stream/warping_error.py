"""Temporal warping error (Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018).

Flicker that follows the person's motion is fine; flicker of its own is not. So, for each pair of
consecutive frames, the optical flow of the *input* (OpenCV's DIS) warps frame t+1 back onto frame t,
both for the input and for the output, and the error is the mean squared difference between frame t
and the warped frame t+1, over the pixels where the flow can be trusted:

- inside the faces (the head masks of both frames, in image coordinates);
- not occluded: forward and backward flow agree (Sundaram et al. 2010's consistency test, the one
  Lai et al. use).

The figure reported is output error over input error. The input's own error is what the flow cannot
explain (lighting, occlusions the test missed, blur); a cartoon that changes only where the person
does has a ratio near 1, and one that shimmers by itself a larger one. Values are on the 0-1 scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = ["WarpingErrorMeter", "consistent_pixels", "dis_flow", "warp_back", "warping_error"]

_MARGIN = 16  # pixels of context around the faces for the flow


def _box_around(region: np.ndarray, margin: int) -> tuple[slice, slice]:
    """Rows and columns of the bounding box of ``region``, grown by ``margin`` within the image."""
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    if rows.size == 0:
        return slice(0, 0), slice(0, 0)
    height, width = region.shape
    return (
        slice(max(rows[0] - margin, 0), min(rows[-1] + margin + 1, height)),
        slice(max(cols[0] - margin, 0), min(cols[-1] + margin + 1, width)),
    )


def _gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image


def dis_flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Dense flow ``(H, W, 2)`` from ``source`` to ``target`` (RGB or gray uint8).

    Pixel p of ``source`` is at p + flow[p] in ``target``.
    """
    dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    # OpenCV allocates the output when given None; its stubs do not say so.
    return np.asarray(dis.calc(_gray(source), _gray(target), None))  # type: ignore[call-overload]


def warp_back(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Frame t+1 sampled where the flow t -> t+1 says each pixel of frame t went."""
    height, width = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(
        image, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def consistent_pixels(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Boolean ``(H, W)``: pixels whose forward flow is undone by the backward flow (not occluded)
    and that stay inside the frame."""
    height, width = forward.shape[:2]
    back_at_target = warp_back(backward, forward)
    round_trip = forward + back_at_target
    limit = 0.01 * ((forward**2).sum(-1) + (back_at_target**2).sum(-1)) + 0.5
    xs, ys = np.meshgrid(np.arange(width), np.arange(height))
    tx, ty = xs + forward[..., 0], ys + forward[..., 1]
    inside = (tx >= 0) & (tx <= width - 1) & (ty >= 0) & (ty <= height - 1)
    return ((round_trip**2).sum(-1) < limit) & inside


def warping_error(frame: np.ndarray, next_frame: np.ndarray, flow: np.ndarray, region: np.ndarray) -> float:
    """Mean squared difference (0-1 scale) of ``frame`` and ``next_frame`` warped back, over ``region``."""
    warped = warp_back(next_frame, flow)
    difference = frame[region].astype(np.float32) - warped[region].astype(np.float32)
    return float(np.mean((difference / 255.0) ** 2))


@dataclass
class WarpingErrorMeter:
    """Accumulates the warping error of consecutive frames, output against input.

    Feed it every frame in order with :meth:`add`; a frame without a face region breaks the chain.
    """

    input_error_sum: float = 0.0
    output_error_sum: float = 0.0
    pairs: int = 0
    _previous: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def add(self, image: np.ndarray, output: np.ndarray, region: np.ndarray | None) -> None:
        """``image``: the input frame; ``output``: what the sink got for it (same size);
        ``region``: boolean face mask of this frame, or None when it has no face."""
        if region is not None and self._previous is not None and region.any() and self._previous[2].any():
            # The flow is only needed around the faces: a box around both frames' regions keeps
            # the meter cheap enough to run inside a timed pipeline.
            box = _box_around(region | self._previous[2], margin=_MARGIN)
            self._add_pair(*(array[box] for array in (*self._previous, image, output, region)))
        self._previous = None if region is None else (image, output, region)

    def _add_pair(
        self,
        before_in: np.ndarray,
        before_out: np.ndarray,
        before_region: np.ndarray,
        image: np.ndarray,
        output: np.ndarray,
        region: np.ndarray,
    ) -> None:
        forward, backward = dis_flow(before_in, image), dis_flow(image, before_in)
        # Inside the faces of frame t, at places that are faces at t+1 too and not occluded.
        lands_in_face = warp_back(region.astype(np.uint8), forward) > 0
        trusted = before_region & lands_in_face & consistent_pixels(forward, backward)
        if trusted.any():
            self.input_error_sum += warping_error(before_in, image, forward, trusted)
            self.output_error_sum += warping_error(before_out, output, forward, trusted)
            self.pairs += 1

    @property
    def ratio(self) -> float:
        """Output warping error over the input's (``nan`` before any pair was measured)."""
        return self.output_error_sum / self.input_error_sum if self.input_error_sum > 0 else float("nan")

    def summary(self) -> dict[str, float]:
        pairs = max(self.pairs, 1)
        return {
            "pairs": self.pairs,
            "input_error": self.input_error_sum / pairs,
            "output_error": self.output_error_sum / pairs,
            "ratio": self.ratio,
        }
