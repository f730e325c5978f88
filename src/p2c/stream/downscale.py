"""Shrinking a region of a frame to a fixed working size at about the cost of reading it once.

The video path works at fixed sizes around each face (the mesh's square, the stabilizer's face
box, the crop), but the frame's pixels there grow with the face and the frame. OpenCV's area
interpolation, the antialiased way to shrink, takes its slow general path unless it halves: on
the build machine, shrinking a large face's 540-pixel square to 512 cost 5.4 ms, more than the
face mesh that then runs on it, and an 840-pixel square by 3 cost 2.0 ms against 0.28 by 2.

:func:`shrink_region` does it in two steps: a box filter by a power of two (each output pixel the
mean of a k x k block, by halving on OpenCV's fast path), chosen so that the rest shrinks by 1
to 2; then one bilinear warp to the exact size, which also places the region
(rotation, sub-pixel offsets, parts outside the frame). Fine detail is averaged before it is
sampled, as area interpolation does, so it does not alias; the cost is about one read of the
region plus one write of the output, whatever the face's size.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["box_factor", "shrink_region"]


def box_factor(ratio: float) -> int:
    """The box filter's factor for a region ``ratio`` times its output's size: the largest power
    of two not above it (OpenCV's fast area path halves; a factor of 3 takes its slow one), so the
    bilinear step that follows shrinks by 1 to 2. (Rounding instead, so that it also enlarges up
    to 4/3, blurred a large face's crop: 1.8 levels of 255 from the still's against 0.5.)"""
    factor = 1
    while ratio >= 2 * factor:
        factor *= 2
    return factor


def _box_span(start: float, stop: float, length: int, factor: int) -> tuple[int, int]:
    """Whole pixels ``[a, b)`` of ``[0, length)`` covering ``[start, stop)`` as far as the image
    goes, ``b - a`` a multiple of ``factor`` (the fast path needs it): grown at the far end, or at
    the near end where the image ends; only a region as wide as the image may lose its last
    ``factor - 1`` pixels (it cannot grow)."""
    a, b = max(math.floor(start), 0), min(math.ceil(stop), length)
    if b <= a:
        return a, a
    blocks = math.ceil((b - a) / factor)
    b = min(a + blocks * factor, length)
    a = max(b - blocks * factor, 0)
    return a, a + (b - a) // factor * factor


def shrink_region(
    image: np.ndarray,
    to_image: np.ndarray,
    size: tuple[int, int],
    border: int | tuple[int, ...] = 0,
) -> np.ndarray:
    """The ``size`` (width, height) image whose pixel ``(u, v)`` shows ``image`` at
    ``to_image @ (u, v, 1)``: a 2x3 similarity (scale, rotation, shift) from output to image
    pixels that shrinks (a scale under 1.5 image pixels per output pixel is one bilinear warp).
    Outside the image it is ``border`` (a grey level or a colour)."""
    to_image = np.asarray(to_image, dtype=np.float64)
    factor = box_factor(float(np.sqrt(abs(np.linalg.det(to_image[:, :2])))))
    if factor > 1:
        width, height = size
        corners = np.array(
            [
                [-0.5, -0.5, 1.0],
                [width - 0.5, -0.5, 1.0],
                [-0.5, height - 0.5, 1.0],
                [width - 0.5, height - 0.5, 1.0],
            ]
        )
        reach = corners @ to_image.T  # the output's footprint on the image
        rows, cols = image.shape[:2]
        x0, x1 = _box_span(reach[:, 0].min(), reach[:, 0].max(), cols, factor)
        y0, y1 = _box_span(reach[:, 1].min(), reach[:, 1].max(), rows, factor)
        if x1 > x0 and y1 > y0:
            blocks = _halve(image[y0:y1, x0:x1], factor)
            # Block (b, c) is centred on image pixel (x0 + (b + 0.5) k - 0.5, ...): output -> block.
            to_blocks = to_image / factor
            to_blocks[:, 2] += (0.5 - np.array([x0, y0])) / factor - 0.5
            return _warp(blocks, to_blocks, size, border)
    return _warp(image, to_image, size, border)


def _halve(image: np.ndarray, factor: int) -> np.ndarray:
    """``image`` (sides multiples of ``factor``, a power of two) averaged over ``factor`` x
    ``factor`` blocks, halving it step by step: the same means as one area resize, on the fast path."""
    while factor > 1:
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
        factor //= 2
    return image


def _warp(
    image: np.ndarray, to_source: np.ndarray, size: tuple[int, int], border: int | tuple[int, ...]
) -> np.ndarray:
    value = (border,) * 4 if isinstance(border, int) else tuple(border)
    return cv2.warpAffine(
        image,
        to_source,
        size,
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=value,
    )
