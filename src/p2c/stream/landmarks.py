"""Every face in a photo as dlib-style 68-point landmarks, found with MediaPipe.

photo2cartoon used dlib's detector and 68-point predictor. MediaPipe ships both parts offline and
runs fast on a CPU: the full-range face detector finds faces of any size, then the face mesh,
run on an enlarged square around each detection, places 468 points that
:func:`p2c.stream.alignment.landmarks68_from_mesh` maps onto dlib's layout.

The mesh runs on a region around the face, not on the whole photo, because its own built-in
detector is the short-range model: it only sees faces that fill a good part of its input, so a
small face in a large photo would be missed.

The full-range detector misses some close-ups whose face fills the photo (about 1 in 25 of
photo2cartoon's training photos), which the short-range detector finds; both run and their boxes
are merged. Duplicates are removed twice: overlapping boxes, then overlapping landmark boxes
(two boxes of one face give the same mesh).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from p2c.resources import Closeable
from p2c.stream.alignment import landmarks68_from_mesh

__all__ = ["DetectedFace", "FaceBoxFinder", "LandmarkDetector", "detect_landmarks"]

logger = logging.getLogger(__name__)

# The mesh region is this many detection-box sides wide: the box covers the face from brows to
# chin, the mesh's detector wants forehead, ears and some margin too.
_REGION_SCALE = 2.2
# Regions are resized to at most this side before the mesh runs; the mesh model's input is 192
# pixels, so larger regions only cost time.
_REGION_MAX_SIDE = 512
# Two detections (or two meshes) overlapping this much are one face.
_DUPLICATE_IOU = 0.4


@dataclass(frozen=True)
class DetectedFace:
    """One face: 68 landmarks in image pixels (x, y) and the detector's confidence."""

    landmarks: np.ndarray
    score: float

    @property
    def area(self) -> float:
        """Area of the landmark box, the size photo2cartoon compares to pick the largest face."""
        width, height = self.landmarks.max(axis=0) - self.landmarks.min(axis=0)
        return float(width * height)


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _landmark_box(landmarks: np.ndarray) -> np.ndarray:
    return np.concatenate([landmarks.min(axis=0), landmarks.max(axis=0)])


def _square_region(image: np.ndarray, centre: np.ndarray, side: float) -> tuple[np.ndarray, np.ndarray]:
    """Cut a square of about ``side`` pixels around ``centre`` (black outside the photo), shrunk to
    at most ``_REGION_MAX_SIDE``; return it with the 2x3 matrix from region pixels to image pixels."""
    native = max(int(np.ceil(side)), 8)
    x0, y0 = (np.round(centre - native / 2.0)).astype(int)
    height, width = image.shape[:2]
    patch: np.ndarray = np.zeros((native, native, 3), dtype=np.uint8)
    src_x0, src_y0 = max(x0, 0), max(y0, 0)
    src_x1, src_y1 = min(x0 + native, width), min(y0 + native, height)
    if src_x1 > src_x0 and src_y1 > src_y0:
        patch[src_y0 - y0 : src_y1 - y0, src_x0 - x0 : src_x1 - x0] = image[src_y0:src_y1, src_x0:src_x1]
    out_side = min(native, _REGION_MAX_SIDE)
    if out_side != native:
        # Area averaging, so fine detail does not alias when a large face is shrunk.
        patch = cv2.resize(patch, (out_side, out_side), interpolation=cv2.INTER_AREA)
    scale = native / out_side  # image pixels per region pixel
    # OpenCV's resize maps pixel centres: image_x = x0 + (u + 0.5) * scale - 0.5.
    to_image = np.array([[scale, 0.0, x0 + 0.5 * scale - 0.5], [0.0, scale, y0 + 0.5 * scale - 0.5]])
    return patch, to_image


def _deduplicate(faces: list[DetectedFace]) -> list[DetectedFace]:
    """Keep the best-scoring face of every group of overlapping landmark boxes."""
    kept: list[DetectedFace] = []
    for face in sorted(faces, key=lambda f: f.score, reverse=True):
        box = _landmark_box(face.landmarks)
        if all(_box_iou(box, _landmark_box(other.landmarks)) < _DUPLICATE_IOU for other in kept):
            kept.append(face)
    return kept


class FaceBoxFinder:
    """Face boxes from MediaPipe's two detectors, merged: full range (faces up to 5 m away) and short
    range (close-ups within 2 m, which the full-range model alone misses when a face fills the image).
    """

    def __init__(self, min_detection_confidence: float = 0.5) -> None:
        import mediapipe as mp  # heavy: load only when a finder is built

        self._detectors: list[Any] = [
            mp.solutions.face_detection.FaceDetection(
                model_selection=selection, min_detection_confidence=min_detection_confidence
            )
            for selection in (1, 0)
        ]

    def close(self) -> None:
        for detector in self._detectors:
            detector.close()

    def find(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Boxes in pixels ``(x0, y0, x1, y1)`` with scores; a box overlapping an earlier one is dropped."""
        height, width = image.shape[:2]
        found: list[tuple[np.ndarray, float]] = []
        for detector in self._detectors:
            for detection in detector.process(image).detections or []:
                rel = detection.location_data.relative_bounding_box
                box = np.array([rel.xmin, rel.ymin, rel.xmin + rel.width, rel.ymin + rel.height])
                box *= (width, height, width, height)
                score = float(detection.score[0]) if detection.score else 0.0
                if box[2] - box[0] < 2 or box[3] - box[1] < 2:
                    continue
                if all(_box_iou(box, other) < _DUPLICATE_IOU for other, _ in found):
                    found.append((box, score))
        return found


class LandmarkDetector(Closeable):
    """MediaPipe's full-range face detector plus the static face mesh; one per thread.

    Use it as a context manager (or call :meth:`close`) so MediaPipe's graphs are released.
    """

    def __init__(self, min_detection_confidence: float = 0.5, max_faces: int = 8) -> None:
        if not 0.0 <= min_detection_confidence <= 1.0:
            raise ValueError(f"min_detection_confidence must be in [0, 1], got {min_detection_confidence!r}")
        if max_faces < 1:
            raise ValueError(f"max_faces must be at least 1, got {max_faces!r}")
        import mediapipe as mp  # heavy: load only when a detector is built

        self.max_faces = max_faces
        self._boxes = FaceBoxFinder(min_detection_confidence)
        # Two meshes per region: a neighbour's face may also be in it, and we keep the one nearest the
        # detection's centre.
        self._mesh: Any = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True,
            refine_landmarks=False,
            max_num_faces=2,
            min_detection_confidence=min_detection_confidence,
        )
        self._closed = False

    def close(self) -> None:
        """Release MediaPipe's graphs; safe to call more than once."""
        if not self._closed:
            self._closed = True
            self._boxes.close()
            self._mesh.close()

    def detect(self, image_rgb: np.ndarray, max_faces: int | None = None) -> list[DetectedFace]:
        """Every face in an RGB uint8 image, largest landmark box first ([] if none)."""
        if self._closed:
            raise RuntimeError("this LandmarkDetector is closed")
        image = _check_image(image_rgb)
        limit = self.max_faces if max_faces is None else max_faces
        boxes = self._boxes.find(image)
        faces = [face for box, score in boxes if (face := self._mesh_in_box(image, box, score)) is not None]
        faces = _deduplicate(faces)
        faces.sort(key=lambda f: f.area, reverse=True)
        logger.debug("%d detections, %d faces with landmarks", len(boxes), len(faces))
        return faces[:limit]

    def _mesh_in_box(self, image: np.ndarray, box: np.ndarray, score: float) -> DetectedFace | None:
        """Run the face mesh on a square around ``box``; the mesh nearest its centre, or None."""
        centre = (box[:2] + box[2:]) / 2.0
        side = _REGION_SCALE * float(max(box[2] - box[0], box[3] - box[1]))
        region, to_image = _square_region(image, centre, side)
        result = self._mesh.process(region)
        if not result.multi_face_landmarks:
            return None
        size = region.shape[0]
        best: np.ndarray | None = None
        best_distance = np.inf
        for mesh in result.multi_face_landmarks:
            # Normalised mesh coordinates are fractions of the region's edges; pixel centres are
            # at +0.5, so x_pixel = x_norm * size - 0.5.
            points = np.array([(p.x, p.y) for p in mesh.landmark], dtype=np.float64) * size - 0.5
            points = points @ to_image[:, :2].T + to_image[:, 2]
            distance = float(np.linalg.norm(points.mean(axis=0) - centre))
            if distance < best_distance:
                best, best_distance = points, distance
        assert best is not None
        return DetectedFace(landmarks=landmarks68_from_mesh(best), score=score)


def _check_image(image_rgb: np.ndarray) -> np.ndarray:
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image of shape (H, W, 3), got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


def detect_landmarks(
    image_rgb: np.ndarray, max_faces: int = 8, min_detection_confidence: float = 0.5
) -> list[np.ndarray]:
    """68-point landmarks (68 x 2, image pixels) of every face, largest first; builds a detector once.

    For many images keep one :class:`LandmarkDetector` open instead.
    """
    with LandmarkDetector(min_detection_confidence=min_detection_confidence, max_faces=max_faces) as detector:
        return [face.landmarks for face in detector.detect(image_rgb)]
