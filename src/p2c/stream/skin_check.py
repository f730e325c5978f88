"""A third, independent opinion on a face: skin, not fur; and no black nose.

MediaPipe's mesh check and dlib's HOG check both judge the *layout* of a face: two dark eyes over
a nose over a mouth. A dog seen from the front, its face filling the frame (a Shiba Inu: dark
almond eyes, pale cheeks, a muzzle foreshortened to a dot), has that layout, and was taken for a
person by both. What neither looks at is the *surface*: a human face is skin, smooth at the scale
of a few pixels, with fur only where hair falls across it; a dog's, a monkey's or a quokka's is fur
everywhere, with a black nose at the muzzle's tip.

So :class:`SkinCheck` measures, on the face's aligned crop at the photo's own resolution (a small
face is not blown up, which would smooth the fur away), the fine detail (the mean absolute
difference from a 1-pixel Gaussian blur, in grey levels) of five patches of a face where people
have skin and no hair: both upper cheeks, the bridge of the nose and under each eye. Fur is
everywhere, so the *smoothest* patch is what counts: hair across one cheek, a beard, a face chain
leave some patch smooth. And it measures the nose's brightness against the cheeks'. A face is
refused when its smoothest patch is as rough as fur (:data:`FUR`), or when it is merely rough
(:data:`ROUGH`) and its nose is black (:data:`BLACK_NOSE`).

Over the 585 faces of the shared portraits the smoothest patch is 3.4 grey levels at most (a face
veiled by a jewelled chain; 1.5 at the 99th percentile) and no rough face has a dark nose; human
meshes laid on the dog and the quokka of ``tests/data/animals`` measure 4.8-7.5 and black noses
(docs/face-path.md). Cats' fur is finer: this check lets them through, and the other two catch them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from p2c.resources import Closeable
from p2c.stream.alignment import crop_transform, transform_points, warp_to_crop

__all__ = ["BLACK_NOSE", "FUR", "ROUGH", "SkinCheck", "SkinScore"]

logger = logging.getLogger(__name__)

# The crop's largest side: faces larger in the photo are shrunk to it (area averaging).
_MAX_SIDE = 256
_MIN_SIDE = 64
# Patch radius, as a share of half the distance between the outer eye corners.
_PATCH = 0.25
# A face whose smoothest patch has this much fine detail (grey levels) is fur: portraits reach 3.4.
FUR = 4.0
# ... this much, and a nose this dark against the cheeks, a furry face with a black nose.
ROUGH = 1.0
BLACK_NOSE = 0.6


@dataclass(frozen=True)
class SkinScore:
    """``smoothest``: the fine detail of the face's smoothest skin patch (grey levels); ``nose``: the
    nose's median lightness over the cheeks'."""

    smoothest: float
    nose: float

    @property
    def is_skin(self) -> bool:
        return not (self.smoothest >= FUR or (self.smoothest >= ROUGH and self.nose <= BLACK_NOSE))


def _disc(shape: tuple[int, int], centre: np.ndarray, radius: float) -> np.ndarray:
    ys, xs = np.ogrid[: shape[0], : shape[1]]
    return np.asarray((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 <= radius * radius)


def _disc_values(image: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """The pixels of ``image`` within ``radius`` of ``centre`` (cut to the disc's box first: cheap)."""
    height, width = image.shape[:2]
    x0, y0 = max(int(centre[0] - radius), 0), max(int(centre[1] - radius), 0)
    x1, y1 = min(int(centre[0] + radius) + 2, width), min(int(centre[1] + radius) + 2, height)
    if x1 <= x0 or y1 <= y0:
        return np.zeros(1, image.dtype)
    inside = _disc((y1 - y0, x1 - x0), centre - (x0, y0), radius)
    values = image[y0:y1, x0:x1][inside]
    return values if values.size else np.zeros(1, image.dtype)


def _crop_side(landmarks: np.ndarray) -> int:
    """The crop's side at the photo's own resolution (the photo's pixels across it), within bounds."""
    matrix = crop_transform(landmarks, _MAX_SIDE)
    native = _MAX_SIDE / float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    return int(min(_MAX_SIDE, max(_MIN_SIDE, round(native))))


class SkinCheck(Closeable):
    """Skin or fur, on 68 landmarks; pure OpenCV (no model), thread-safe; ``close`` is a no-op."""

    def close(self) -> None:
        return None

    def score(self, image_rgb: np.ndarray, landmarks: np.ndarray) -> SkinScore:
        points = np.asarray(landmarks, dtype=np.float64)
        side = _crop_side(points)
        matrix = crop_transform(points, side)
        crop = warp_to_crop(image_rgb, matrix, side)
        p = transform_points(matrix, points)
        shape = (side, side)
        radius = _PATCH * float(np.linalg.norm(p[45] - p[36])) / 2.0
        down = (p[29] - p[27]) * 0.9  # from the lower eyelid to the top of the cheek
        patches = [
            ((p[2] + p[31]) / 2.0, radius),  # upper cheeks
            ((p[14] + p[35]) / 2.0, radius),
            ((p[28] + p[29]) / 2.0, 0.7 * radius),  # bridge of the nose
            ((p[40] + p[41]) / 2.0 + down, 0.7 * radius),  # under the eyes
            ((p[46] + p[47]) / 2.0 + down, 0.7 * radius),
        ]
        gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
        fine = np.abs(gray - cv2.GaussianBlur(gray, (0, 0), 1.0))
        smoothest = min(float(_disc_values(fine, centre, r).mean()) for centre, r in patches)
        lightness = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB)[..., 0]
        cheeks = np.concatenate([_disc_values(lightness, *patch) for patch in patches[:2]])
        nose_mask = np.zeros(shape, np.uint8)
        cv2.fillPoly(nose_mask, [np.round(p[[31, 30, 35, 34, 33, 32]]).astype(np.int32)], (1,))
        nose = nose_mask.astype(bool) | _disc(shape, p[30], 0.7 * radius)
        ratio = float(np.median(lightness[nose])) / max(float(np.median(cheeks)), 1.0)
        return SkinScore(smoothest, ratio)

    def is_human(self, image_rgb: np.ndarray, landmarks: np.ndarray) -> bool:
        score = self.score(image_rgb, landmarks)
        if not score.is_skin:
            logger.debug("fur %.2f, nose %.2f: not a human face", score.smoothest, score.nose)
        return score.is_skin
