"""photo2cartoon's face alignment as one similarity transform: level the eyes, crop, resize.

photo2cartoon rotates the whole photo so the outer eye corners are level, takes the landmark box,
expands it (0.8 of its height above, 0.3 below, 0.3 of its width left and right), makes it square
around the same centre, crops with a white border and resizes the crop to 256x256 with area
interpolation. The cartoon training data were made that way, so we do the same, but fold rotation,
crop and resize into one 2x3 matrix: warping once is cheaper, and the matrix's inverse pastes a
result back. Landmarks use dlib's 68-point order; MediaPipe's mesh is mapped onto it.

Everything here is pure numpy and OpenCV, so training data preparation, still images and video
share it without loading a model.
"""

from __future__ import annotations

import cv2
import numpy as np

from p2c.stream.downscale import shrink_region

__all__ = [
    "CROP_SIZE",
    "LANDMARKS68_FROM_MESH",
    "crop_transform",
    "eye_centres",
    "invert_transform",
    "landmarks68_from_mesh",
    "transform_points",
    "warp_to_crop",
    "warp_to_crop_bounded",
    "whiten_background",
]

CROP_SIZE = 256

# MediaPipe face-mesh vertex for each point of dlib's 68-point layout (the mapping LatentSync and
# others use): jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, outer lips 48-59, inner lips 60-67.
LANDMARKS68_FROM_MESH: tuple[int, ...] = (
    162,
    234,
    93,
    58,
    172,
    136,
    149,
    148,
    152,
    377,
    378,
    365,
    397,
    288,
    323,
    454,
    389,
    71,
    63,
    105,
    66,
    107,
    336,
    296,
    334,
    293,
    301,
    168,
    197,
    5,
    4,
    75,
    97,
    2,
    326,
    305,
    33,
    160,
    158,
    133,
    153,
    144,
    362,
    385,
    387,
    263,
    373,
    380,
    61,
    39,
    37,
    0,
    267,
    269,
    291,
    405,
    314,
    17,
    84,
    181,
    78,
    82,
    13,
    312,
    308,
    317,
    14,
    87,
)

# photo2cartoon's expansion of the landmark box, as fractions of its height / width.
_EXPAND_TOP = 0.8
_EXPAND_BOTTOM = 0.3
_EXPAND_SIDES = 0.3
_LEFT_EYE_CORNER = 36
_RIGHT_EYE_CORNER = 45
_WHITE = (255, 255, 255)


def landmarks68_from_mesh(mesh_xy: np.ndarray) -> np.ndarray:
    """Pick dlib's 68 points out of MediaPipe's 468 (or 478) face-mesh points, in pixels."""
    mesh_xy = np.asarray(mesh_xy, dtype=np.float64)
    if mesh_xy.ndim != 2 or mesh_xy.shape[0] < 468 or mesh_xy.shape[1] < 2:
        raise ValueError(f"expected face-mesh points of shape (468, 2), got {mesh_xy.shape}")
    return mesh_xy[list(LANDMARKS68_FROM_MESH), :2]


def eye_centres(landmarks68: np.ndarray) -> np.ndarray:
    """Centres of the two eyes (image-left first), each the mean of its six contour points."""
    points = np.asarray(landmarks68, dtype=np.float64)
    return np.stack([points[36:42].mean(axis=0), points[42:48].mean(axis=0)])


def _levelling_rotation(landmarks68: np.ndarray) -> np.ndarray:
    """The 2x2 rotation that makes the line through the outer eye corners horizontal."""
    left, right = landmarks68[_LEFT_EYE_CORNER], landmarks68[_RIGHT_EYE_CORNER]
    angle = np.arctan2(right[1] - left[1], right[0] - left[0])
    cos, sin = np.cos(angle), np.sin(angle)
    return np.array([[cos, sin], [-sin, cos]])


def crop_transform(landmarks68: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """The 2x3 matrix taking image pixels to pixels of photo2cartoon's ``size`` x ``size`` crop.

    Works in floating point where photo2cartoon rounds to whole pixels: sub-pixel positions keep
    video crops from jumping by a pixel between frames.
    """
    points = np.asarray(landmarks68, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"expected 68 landmarks of shape (68, 2), got {points.shape}")
    rotation = _levelling_rotation(points)
    levelled = points @ rotation.T
    left, top = levelled.min(axis=0)
    right, bottom = levelled.max(axis=0)
    height, width = bottom - top, right - left

    top -= _EXPAND_TOP * height
    bottom += _EXPAND_BOTTOM * height
    left -= _EXPAND_SIDES * width
    right += _EXPAND_SIDES * width
    # Square the box around its centre by growing the shorter side.
    side = max(bottom - top, right - left)
    left -= (side - (right - left)) / 2
    top -= (side - (bottom - top)) / 2

    # photo2cartoon crops pixels top..top+side inclusive (side + 1 of them), then resizes that
    # to ``size``; OpenCV's resize maps pixel centres: dst = (src + 0.5) * scale - 0.5.
    scale = size / (side + 1.0)
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = scale * (0.5 - np.array([left, top])) - 0.5
    return matrix


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to N x 2 points."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert_transform(matrix: np.ndarray) -> np.ndarray:
    """The 2x3 matrix that undoes ``matrix`` (crop pixels back to image pixels)."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def _rescale_output(matrix: np.ndarray, factor: float) -> np.ndarray:
    """The same warp, producing an output ``factor`` times as large (pixel centres kept)."""
    rescaled = matrix * factor
    rescaled[:, 2] += 0.5 * factor - 0.5
    return rescaled


def warp_to_crop(image: np.ndarray, matrix: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """Warp ``image`` into the ``size`` x ``size`` crop; outside the image is white.

    When the crop shrinks the face more than twofold, warp at native resolution first and
    shrink with area interpolation, as photo2cartoon does: a direct bilinear warp would alias.
    """
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale >= 0.5:
        return cv2.warpAffine(
            image,
            matrix,
            (size, size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=_WHITE,
        )
    native = int(np.ceil(size / scale))
    large = cv2.warpAffine(
        image,
        _rescale_output(matrix, native / size),
        (native, native),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=_WHITE,
    )
    return cv2.resize(large, (size, size), interpolation=cv2.INTER_AREA)


def warp_to_crop_bounded(image: np.ndarray, matrix: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """:func:`warp_to_crop` at a cost that does not grow with the face: a face shrunk more than
    twofold is box-filtered and warped once (:func:`p2c.stream.downscale.shrink_region`) instead
    of warped at its native size and area-shrunk (5.4 ms for a large face of a 720p frame against
    0.7). Other faces give :func:`warp_to_crop`'s pixels exactly; a large face's are within half a
    level of 255 on average (the shared clips: 0.3, 99 % within 4). For video after a face's first
    frame; stills and training data keep :func:`warp_to_crop`."""
    if float(np.sqrt(abs(np.linalg.det(matrix[:, :2])))) >= 0.5:
        return warp_to_crop(image, matrix, size)
    return shrink_region(image, invert_transform(matrix), (size, size), border=_WHITE)


def whiten_background(crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``crop * mask + white * (1 - mask)``, as photo2cartoon blends (mask in [0, 1], H x W)."""
    alpha = np.asarray(mask, dtype=np.float32)[..., None]
    # The same float32 operations in the same order as photo2cartoon's expression (so the same
    # bytes), in place: one temporary instead of five, on the live path's every crop.
    blended = crop.astype(np.float32)
    blended *= alpha
    blended += 255.0 * (1.0 - alpha)
    np.clip(blended, 0, 255, out=blended)
    return blended.astype(np.uint8)
