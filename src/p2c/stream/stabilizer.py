"""Crops that move with the face: the crop's landmarks carried along by the face's optical flow.

The generator is not exactly shift-equivariant (no CNN with strided convolutions is): when the
crop slides over the face by a pixel, the cartoon changes by more than a slid cartoon would, and
that change shows up in the video as shimmer of its own (the temporal warping error). Landmarks,
even One-Euro-filtered, slide over the face: they jitter on a still face and lag behind a moving
one (measured on the 720p shared clip: the crop moved 1 px per frame, at 256 px, on the clip's
repeated frames, where the face did not move at all).

So each frame, the previous crop landmarks are moved by the similarity transform that best explains
the motion of corner points inside the face box (pyramidal Lucas-Kanade, robust fit): the crop then
moves with the skin (only the face's surroundings are read, shrunk to a fixed working size: the cost
does not grow with the face or the frame). A small share (``gain``) of the gap to the fresh
landmarks is added every frame, so the crop cannot drift away from the face; when the gap is large
(a fast turn, a lost flow) the crop snaps to the fresh landmarks. A still face keeps its crop
exactly (the tracking stage's lock).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from p2c.stream.downscale import shrink_region

__all__ = ["FlowStabilizer", "StabilizerConfig", "face_motion"]


@dataclass(frozen=True)
class StabilizerConfig:
    """``gain``: share of the gap to the fresh landmarks closed each frame (1 = landmarks only, no
    flow); ``snap_fraction``: a gap above this fraction of the face size snaps the crop to them;
    ``still_pixels``: a face whose flow moves no landmark by this much (frame pixels) keeps its
    crop; ``max_points``: corners tracked per face; ``work_size``: the face box is tracked at about this
    many pixels across (optical flow on a 720p face costs more and tells no more)."""

    gain: float = 0.15
    still_pixels: float = 0.1
    snap_fraction: float = 0.08
    max_points: int = 80
    work_size: int = 160

    def __post_init__(self) -> None:
        if not 0 < self.gain <= 1:
            raise ValueError(f"StabilizerConfig.gain must be in (0, 1], got {self.gain}")
        if self.snap_fraction <= 0:
            raise ValueError(f"StabilizerConfig.snap_fraction must be positive, got {self.snap_fraction}")
        if self.max_points < 3 or self.work_size < 32:
            raise ValueError("StabilizerConfig needs max_points >= 3 and work_size >= 32")


def _gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image


def _small_gray(image: np.ndarray, to_image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The region ``to_image`` maps ``size`` pixels onto, shrunk (antialiased, at a cost that does
    not grow with the face: :mod:`p2c.stream.downscale`), in gray: colour converts at the small size."""
    return _gray(shrink_region(image, to_image, size))


def face_motion(
    previous: np.ndarray, current: np.ndarray, box: np.ndarray, config: StabilizerConfig
) -> np.ndarray | None:
    """The 2 x 3 similarity taking points of the face in ``previous`` to ``current`` (uint8 RGB
    frames, or gray, of one size), from corners inside ``box`` (x0, y0, x1, y1); ``None`` when it
    cannot be trusted. Only the box's surroundings are read, at ``config.work_size``."""
    height, width = previous.shape[:2]
    x0, y0 = max(int(box[0]), 0), max(int(box[1]), 0)
    x1, y1 = min(int(np.ceil(box[2])), width), min(int(np.ceil(box[3])), height)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    scale = min(1.0, config.work_size / max(x1 - x0, y1 - y0))
    # A margin around the box gives the pyramid room; the region is scaled down, not the frame.
    margin = int(0.15 * max(x1 - x0, y1 - y0))
    rx0, ry0 = max(x0 - margin, 0), max(y0 - margin, 0)
    rx1, ry1 = min(x1 + margin, width), min(y1 + margin, height)
    size = (max(round((rx1 - rx0) * scale), 8), max(round((ry1 - ry0) * scale), 8))
    # Work pixel (u, v) shows frame pixel ((u + 0.5) / scale - 0.5 + rx0, ...): corner = that at (0, 0).
    corner = np.array([rx0, ry0], np.float64) + 0.5 / scale - 0.5
    to_image = np.array([[1.0 / scale, 0.0, corner[0]], [0.0, 1.0 / scale, corner[1]]])
    before = _small_gray(previous, to_image, size)
    after = _small_gray(current, to_image, size)
    mask = np.zeros_like(before)
    mask[
        int((y0 - ry0) * scale) : int((y1 - ry0) * scale), int((x0 - rx0) * scale) : int((x1 - rx0) * scale)
    ] = 255
    corners = cv2.goodFeaturesToTrack(before, config.max_points, 0.01, 4, mask=mask)
    if corners is None or len(corners) < 6:
        return None
    # OpenCV allocates the outputs when given None; its stubs do not say so.
    lk = cv2.calcOpticalFlowPyrLK
    moved, status, _ = lk(before, after, corners, None, winSize=(15, 15), maxLevel=2)  # type: ignore[call-overload]
    back, status_back, _ = lk(after, before, moved, None, winSize=(15, 15), maxLevel=2)  # type: ignore[call-overload]
    # Forward-backward check: a point that does not come back to where it started is not trusted.
    good = (
        (status[:, 0] == 1) & (status_back[:, 0] == 1) & (np.abs(back - corners).reshape(-1, 2).max(1) < 0.5)
    )
    if good.sum() < 6:
        return None
    src, dst = corners.reshape(-1, 2)[good], moved.reshape(-1, 2)[good]
    fit, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    if fit is None or inliers is None or inliers.sum() < 6:
        return None
    # Back from work pixels to frame pixels: p -> p / s + corner on both sides.
    linear = fit[:, :2].astype(np.float64)
    shift = fit[:, 2].astype(np.float64) / scale + corner - linear @ corner
    return np.hstack([linear, shift[:, None]])


class FlowStabilizer:
    """Per face: ``update(landmarks, fresh, motion, size)`` -> the landmarks to cut the crop from."""

    def __init__(self, config: StabilizerConfig | None = None) -> None:
        self.config = config or StabilizerConfig()

    def update(
        self, carried: np.ndarray | None, fresh: np.ndarray, motion: np.ndarray | None, face_size: float
    ) -> np.ndarray:
        """``carried``: last frame's crop landmarks (``None`` for a new track); ``fresh``: this frame's
        (filtered) landmarks; ``motion``: :func:`face_motion` between the two frames."""
        if carried is None or motion is None or carried.shape != fresh.shape:
            return np.array(fresh, dtype=np.float64)
        predicted = carried @ motion[:, :2].T + motion[:, 2]
        if np.abs(predicted - carried).max() < self.config.still_pixels:
            # The picture did not move (a still, a repeated frame): neither does the crop. The
            # landmarks' own creep towards where they settle would re-sample it every frame.
            return carried
        gap = fresh - predicted
        if np.abs(gap).max() > self.config.snap_fraction * face_size:
            return np.array(fresh, dtype=np.float64)
        return predicted + self.config.gain * gap
