"""A second, independent opinion on a face MediaPipe found: dlib's HOG face detector on its crop.

MediaPipe's detectors and mesh are one family of networks, trained on human faces, and they err
together: a dog's frontal face with two dark eyes above a dark nose can get a detection box, a mesh,
and a second mesh that lands where the first did (the mesh check of :mod:`p2c.stream.landmarks`).
dlib's frontal face detector shares nothing with them: a linear SVM over histograms of oriented
gradients (HOG), trained on a different set of human faces. It scores the layout of edges a human
face has at the scale of its 8-pixel cells: a dark horizontal band of brows and eyes over smooth
cheeks, the vertical ridge of the nose, the mouth's horizontal edge and the jaw's contour. A
muzzle that sticks out, eyes set wide and high above it, no chin, and fur whose short edges point
every way give a HOG pattern the SVM scores low, whatever the colours.

The detector runs on the face's aligned crop (eyes level, the photo2cartoon framing of
:func:`p2c.stream.alignment.crop_transform`) at :data:`CROP_SIDE` pixels, where every face has
the same size and upright pose, which is the detector's best case; and on its mirror image,
because dlib's templates are not symmetric: the score is the mean of the two best detections that
overlap the landmark box. Over the 585 faces of the shared portraits the lowest score is -0.30;
human meshes placed on frontal animal faces (a dog, a mandrill, a quokka, two cats; 300 fits)
score -0.79 at most, and the meshes MediaPipe fits to animals with lowered thresholds -0.59 at most
(docs/face-path.md). :data:`MIN_SCORE` sits between.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from p2c.resources import Closeable
from p2c.stream.alignment import crop_transform, transform_points, warp_to_crop

__all__ = ["CROP_SIDE", "MIN_SCORE", "HogFaceCheck"]

logger = logging.getLogger(__name__)

# The aligned crop's side for the detector: the face is then about 120 pixels, a little above the
# detector's 80-pixel window, so two to three pyramid levels see it whole.
CROP_SIDE = 224
# Human faces score -0.30 or more, animal faces -0.59 or less (docs/face-path.md).
MIN_SCORE = -0.5
# Detections are asked for down to this score; no detection at all scores it too.
_FLOOR = -1.5
# A detection is the face's when it overlaps the landmark box this much.
_MIN_OVERLAP = 0.2


def _overlap(a: np.ndarray, b: tuple[float, float, float, float]) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


class HogFaceCheck(Closeable):
    """dlib's HOG frontal face detector as a yes/no on landmarks; one per thread.

    ``score(image, landmarks)`` is the mean, over the aligned crop and its mirror, of the best HOG
    detection overlapping the landmark box (``-1.5`` where there is none); ``is_human`` compares it
    with ``min_score``.
    """

    def __init__(self, min_score: float = MIN_SCORE) -> None:
        import dlib  # a core dependency (dlib-bin); loaded only when a check is built

        self.min_score = min_score
        self._detector: Any = dlib.get_frontal_face_detector()

    def close(self) -> None:
        self._detector = None

    def score(self, image_rgb: np.ndarray, landmarks: np.ndarray) -> float:
        """How much dlib's detector sees a human face where ``landmarks`` (68 x 2, pixels) are."""
        if self._detector is None:
            raise RuntimeError("this HogFaceCheck is closed")
        points = np.asarray(landmarks, dtype=np.float64)
        transform = crop_transform(points, CROP_SIDE)
        crop = warp_to_crop(image_rgb, transform, CROP_SIDE)
        in_crop = transform_points(transform, points)
        box = np.concatenate([in_crop.min(axis=0), in_crop.max(axis=0)])
        mirrored_box = np.array([CROP_SIDE - 1 - box[2], box[1], CROP_SIDE - 1 - box[0], box[3]])
        mirrored = np.ascontiguousarray(crop[:, ::-1])
        return (self._best(crop, box) + self._best(mirrored, mirrored_box)) / 2.0

    def is_human(self, image_rgb: np.ndarray, landmarks: np.ndarray) -> bool:
        score = self.score(image_rgb, landmarks)
        if score < self.min_score:
            logger.debug("HOG face score %.2f < %.2f: not a human face", score, self.min_score)
            return False
        return True

    def _best(self, crop: np.ndarray, box: np.ndarray) -> float:
        rects, scores, _ = self._detector.run(crop, 0, _FLOOR)
        best = _FLOOR
        for rect, score in zip(rects, scores, strict=True):
            if _overlap(box, (rect.left(), rect.top(), rect.right(), rect.bottom())) > _MIN_OVERLAP:
                best = max(best, float(score))
        return best
