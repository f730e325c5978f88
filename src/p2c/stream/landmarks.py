"""Every human face in a photo as dlib-style 68-point landmarks, found with MediaPipe.

photo2cartoon used dlib's detector and 68-point predictor. MediaPipe ships both parts offline and
runs fast on a CPU: face detectors find boxes, then the face mesh, run on an enlarged square
around each box, places 468 points that :func:`mesh_landmarks68` maps onto dlib's layout. Stills,
video tracking and training data all take their landmarks from here, so one face gives one crop.

The mesh runs on a region around the face, not on the whole photo, because its own built-in
detector is the short-range model: it only sees faces that fill a good part of its input.

Boxes come from three passes, merged (a box overlapping an earlier one is dropped):

- the full-range detector on the whole image: faces down to about a tenth of the image's long
  side (it sees its input at 192 pixels);
- the short-range detector on the whole image: close-ups whose face fills the photo, which the
  full-range model misses on about 1 in 25 of photo2cartoon's training photos;
- on a large image, the full-range detector again on overlapping tiles of about 960 pixels, so a
  face of about 100 pixels in a 4K photo is found (the whole-image pass misses faces under about
  380 pixels there). Tiles overlap by 40 %, so a face small enough to need them lies whole in
  some tile; a box cut by a tile's inner edge is left to that neighbour.

Only human faces are kept, by three independent checks. The detectors score pets as faces now and
then (skimage's chelsea, a cat, gets boxes scored 0.50-0.64, inside the 0.50-0.96 range of real
portraits), but the mesh of a real face stays where it is when the mesh runs again on a square
centred on its own landmarks (what a tracker does every frame), while a mesh forced onto something
else vanishes or jumps: a face is kept when the second mesh is found and its points lie within
``_MAX_DRIFT`` face sizes of the first. It must then also pass
:class:`p2c.stream.human_check.HogFaceCheck`, dlib's HOG face detector on the aligned crop, which
shares no model or training data with MediaPipe (a dog's face can fool one family of networks;
both at once is what the check asks); and :class:`p2c.stream.skin_check.SkinCheck`: the face is
skin, not fur, and has no black nose (a frontal dog fooled both layout checks).
``docs/face-path.md`` has the measurements behind all three.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from p2c.resources import Closeable
from p2c.stream.alignment import LANDMARKS68_FROM_MESH
from p2c.stream.downscale import shrink_region
from p2c.stream.human_check import HogFaceCheck
from p2c.stream.skin_check import SkinCheck

__all__ = [
    "DetectedFace",
    "FaceBoxFinder",
    "LandmarkDetector",
    "box_iou",
    "detect_landmarks",
    "face_region",
    "landmark_box",
    "mesh_landmarks68",
    "region_landmarks",
    "tile_grid",
    "tracking_region",
]

logger = logging.getLogger(__name__)

# The mesh region is this many box sides wide: a detection box covers the face from brows to chin
# (a landmark box about the same), the mesh's detector wants forehead, ears and some margin too.
_REGION_SCALE = 2.2
# Regions are resized to at most this side before the mesh runs; the mesh model's input is 192
# pixels, so larger regions only cost time.
_REGION_MAX_SIDE = 512
# The square a tracking mesh follows a face on has at most this side, the static mesh's: the mesh
# cuts its 192-pixel input from it, and on a smaller square its landmarks shift (measured on the
# shared clips against the whole-frame mesh: 0.03 px at 512, 0.2 at 384, 0.5 px up and left at
# 256). Shrunk at a bounded cost (tracking_region), a large face costs what a small one does.
TRACKING_REGION_SIDE = _REGION_MAX_SIDE
# Two detections (or two meshes) overlapping this much are one face.
_DUPLICATE_IOU = 0.4
# Tiles of the second pass: the full-range detector finds faces of a tenth of its input's side,
# so 960-pixel tiles find faces of about 100 pixels. Images whose long side is under 1.5 tiles
# skip the pass; above 4 tiles wide the tiles grow, so the tiles and the whole-image pass always
# cover every face size between them (tiles: 0.1-0.4 tile sides; whole image: from 0.1 long side).
_TILE_SIDE = 960
_TILE_OVERLAP = 0.4
_TILES_ACROSS = 4
_TILE_EDGE = 2.0  # pixels: a box this close to a tile's inner edge is cut by it
# The human check: mean landmark movement when the mesh runs again, in face sizes. Portraits move
# at most 0.018 (586 faces), meshes forced onto a cat 0.097 or more (docs/face-path.md).
_MAX_DRIFT = 0.05

Box = np.ndarray  # (4,) x0, y0, x1, y1 in pixels


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


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def landmark_box(landmarks: np.ndarray) -> Box:
    """The ``(x0, y0, x1, y1)`` box around landmarks."""
    points = np.asarray(landmarks, dtype=np.float64)
    return np.concatenate([points.min(axis=0), points.max(axis=0)])


def mesh_landmarks68(face_mesh: Any, width: int, height: int) -> np.ndarray:
    """dlib's 68 points, in pixels of the image the mesh ran on, from one MediaPipe face mesh.

    The mesh's coordinates are fractions of the image's edges, and pixel ``i`` covers ``[i, i+1)``
    with its centre at ``i + 0.5``; in our convention pixel centres are whole numbers (as OpenCV's
    warps use), so ``x_pixel = x * width - 0.5``. Stills and video both parse meshes here.
    """
    mesh = face_mesh.landmark
    if len(mesh) < 468:
        raise ValueError(f"expected a face mesh of 468 points, got {len(mesh)}")
    # Only the 68 points dlib's layout uses: the same numbers as picking them from all 468 after.
    points = np.array([(mesh[i].x, mesh[i].y) for i in LANDMARKS68_FROM_MESH], dtype=np.float64)
    return points * (width, height) - 0.5


def tile_grid(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """Overlapping tiles ``(x0, y0, x1, y1)`` for the second detection pass; [] for a small image."""
    long_side = max(height, width)
    side = max(_TILE_SIDE, math.ceil(long_side / _TILES_ACROSS))
    if long_side < 1.5 * side:
        return []

    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        count = math.ceil((length - side) / ((1.0 - _TILE_OVERLAP) * side)) + 1
        return [round(i * (length - side) / (count - 1)) for i in range(count)]

    xs, ys = starts(width), starts(height)
    return [(x, y, min(x + side, width), min(y + side, height)) for y in ys for x in xs]


def _cut_by_tile(box: Box, tile: tuple[int, int, int, int], height: int, width: int) -> bool:
    """Whether ``box`` (image pixels) touches an edge of ``tile`` that is not the image's edge."""
    x0, y0, x1, y1 = tile
    return bool(
        (x0 > 0 and box[0] <= x0 + _TILE_EDGE)
        or (y0 > 0 and box[1] <= y0 + _TILE_EDGE)
        or (x1 < width and box[2] >= x1 - _TILE_EDGE)
        or (y1 < height and box[3] >= y1 - _TILE_EDGE)
    )


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


def face_region(image: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """The square the face mesh runs on for a face in ``box``: ``_REGION_SCALE`` box sides around
    its centre, shrunk to at most ``_REGION_MAX_SIDE``; with its region -> image 2x3 matrix."""
    centre = (box[:2] + box[2:]) / 2.0
    return _square_region(image, centre, _REGION_SCALE * float(max(box[2] - box[0], box[3] - box[1])))


def tracking_region(
    image: np.ndarray, box: Box, side: int = TRACKING_REGION_SIDE
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`face_region`'s square, at ``side`` pixels at most (never enlarged), shrunk at a cost
    that does not grow with the face (:func:`p2c.stream.downscale.shrink_region`; the static mesh's
    area shrink took 5.4 ms for a large face), black outside the photo; with its region -> image
    2x3 matrix. What a tracking mesh follows a face on, frame after frame."""
    centre = (box[:2] + box[2:]) / 2.0
    wanted = _REGION_SCALE * float(max(box[2] - box[0], box[3] - box[1]))
    native = max(int(np.ceil(wanted)), 8)
    if native <= side:  # nothing to shrink: a copy (a warp would cost 1 ms more a face)
        return _square_region(image, centre, wanted)
    x0, y0 = np.round(centre - native / 2.0)
    scale = native / side  # image pixels per region pixel
    to_image = np.array([[scale, 0.0, x0 + 0.5 * scale - 0.5], [0.0, scale, y0 + 0.5 * scale - 0.5]])
    return shrink_region(image, to_image, (side, side)), to_image


def region_landmarks(face_mesh: Any, region: np.ndarray, to_image: np.ndarray) -> np.ndarray:
    """dlib's 68 points in image pixels of one face mesh found on a :func:`face_region`."""
    size = region.shape[0]
    return mesh_landmarks68(face_mesh, size, size) @ to_image[:, :2].T + to_image[:, 2]


def _deduplicate(faces: list[DetectedFace]) -> list[DetectedFace]:
    """Keep the best-scoring face of every group of overlapping landmark boxes."""
    kept: list[DetectedFace] = []
    for face in sorted(faces, key=lambda f: f.score, reverse=True):
        box = landmark_box(face.landmarks)
        if all(box_iou(box, landmark_box(other.landmarks)) < _DUPLICATE_IOU for other in kept):
            kept.append(face)
    return kept


class FaceBoxFinder(Closeable):
    """Face boxes from MediaPipe's two detectors, merged: full range (faces up to 5 m away) on the
    whole image and, for a large image, on tiles; short range (close-ups within 2 m, which the
    full-range model alone misses when a face fills the image) on the whole image.
    """

    def __init__(self, min_detection_confidence: float = 0.5) -> None:
        import mediapipe as mp  # heavy: load only when a finder is built

        self._detectors: list[Any] = [
            mp.solutions.face_detection.FaceDetection(
                model_selection=selection, min_detection_confidence=min_detection_confidence
            )
            for selection in (1, 0)
        ]
        self._next_tile = 0

    def close(self) -> None:
        for detector in self._detectors:
            detector.close()
        self._detectors.clear()

    def find(self, image: np.ndarray, tiles: int | None = None) -> list[tuple[Box, float]]:
        """Boxes in pixels ``(x0, y0, x1, y1)`` with scores; a box overlapping an earlier one is dropped.

        ``tiles``: how many tiles of a large image to search (None: all). The next call starts where
        this one stopped, so a video spreads the second pass over its detection frames.
        """
        height, width = image.shape[:2]
        found: list[tuple[Box, float]] = []
        for detector in self._detectors:
            self._merge(found, self._boxes(detector, image))
        for tile in self._tiles_now(tile_grid(height, width), tiles):
            x0, y0, x1, y1 = tile
            offset = np.array([x0, y0, x0, y0], dtype=np.float64)
            boxes = self._boxes(self._detectors[0], np.ascontiguousarray(image[y0:y1, x0:x1]))
            moved = [(box + offset, score) for box, score in boxes]
            self._merge(found, [(box, s) for box, s in moved if not _cut_by_tile(box, tile, height, width)])
        return found

    def _tiles_now(
        self, grid: list[tuple[int, int, int, int]], budget: int | None
    ) -> list[tuple[int, int, int, int]]:
        if budget is None or budget >= len(grid):
            return grid
        start = self._next_tile % len(grid)
        self._next_tile = start + budget
        return [grid[(start + i) % len(grid)] for i in range(budget)]

    @staticmethod
    def _boxes(detector: Any, image: np.ndarray) -> list[tuple[Box, float]]:
        height, width = image.shape[:2]
        boxes = []
        for detection in detector.process(image).detections or []:
            rel = detection.location_data.relative_bounding_box
            box = np.array([rel.xmin, rel.ymin, rel.xmin + rel.width, rel.ymin + rel.height])
            box *= (width, height, width, height)
            if box[2] - box[0] >= 2 and box[3] - box[1] >= 2:
                boxes.append((box, float(detection.score[0]) if detection.score else 0.0))
        return boxes

    @staticmethod
    def _merge(found: list[tuple[Box, float]], boxes: list[tuple[Box, float]]) -> None:
        for box, score in boxes:
            if all(box_iou(box, other) < _DUPLICATE_IOU for other, _ in found):
                found.append((box, score))


class LandmarkDetector(Closeable):
    """MediaPipe's face detectors plus the static face mesh; one per thread.

    ``human_only=False`` skips the human checks (any face MediaPipe fits a mesh to, pets included).
    Use it as a context manager (or call :meth:`close`) so MediaPipe's graphs are released.
    """

    def __init__(
        self, min_detection_confidence: float = 0.5, max_faces: int = 8, human_only: bool = True
    ) -> None:
        if not 0.0 <= min_detection_confidence <= 1.0:
            raise ValueError(f"min_detection_confidence must be in [0, 1], got {min_detection_confidence!r}")
        if max_faces < 1:
            raise ValueError(f"max_faces must be at least 1, got {max_faces!r}")
        import mediapipe as mp  # heavy: load only when a detector is built

        self.max_faces = max_faces
        self.human_only = human_only
        self._boxes = FaceBoxFinder(min_detection_confidence)
        # Two meshes per region: a neighbour's face may also be in it, and we keep the one nearest the
        # region's centre.
        self._mesh: Any = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True,
            refine_landmarks=False,
            max_num_faces=2,
            min_detection_confidence=min_detection_confidence,
        )
        self._hog: HogFaceCheck | None = HogFaceCheck() if human_only else None
        self._skin: SkinCheck | None = SkinCheck() if human_only else None
        self._closed = False

    def close(self) -> None:
        """Release MediaPipe's graphs; safe to call more than once."""
        if not self._closed:
            self._closed = True
            self._boxes.close()
            self._mesh.close()
            if self._hog is not None:
                self._hog.close()

    def detect(
        self,
        image_rgb: np.ndarray,
        max_faces: int | None = None,
        known: Sequence[Box] = (),
        tiles: int | None = None,
    ) -> list[DetectedFace]:
        """Every (human) face in an RGB uint8 image, largest landmark box first ([] if none).

        ``known``: boxes of faces found already (a tracker's); a detection centred inside one is
        skipped. ``tiles``: see :meth:`FaceBoxFinder.find`.
        """
        self._check_open()
        image = _check_image(image_rgb)
        limit = self.max_faces if max_faces is None else max_faces
        boxes = self._boxes.find(image, tiles)
        faces = []
        for box, score in boxes:
            if any(_contains(other, (box[:2] + box[2:]) / 2.0) for other in known):
                continue
            landmarks = self._mesh_near(image, box)
            if landmarks is not None:
                faces.append(DetectedFace(landmarks=landmarks, score=score))
        faces = _deduplicate(faces)
        faces.sort(key=lambda f: f.area, reverse=True)
        human: list[DetectedFace] = []
        for face in faces:
            if len(human) == limit:
                break
            if not self.human_only or self._is_human(image, face.landmarks):
                human.append(face)
            else:
                logger.debug("dropped a detection (score %.2f): not a human face", face.score)
        logger.debug("%d detections, %d human faces with landmarks", len(boxes), len(human))
        return human

    def landmarks_near(self, image_rgb: np.ndarray, box: Box) -> np.ndarray | None:
        """Landmarks of the face in a square around ``box`` (image pixels), or None.

        For a tracker that lost a face it follows: no human check, the face passed one when found.
        """
        self._check_open()
        return self._mesh_near(_check_image(image_rgb), np.asarray(box, dtype=np.float64))

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this LandmarkDetector is closed")

    def _mesh_near(self, image: np.ndarray, box: Box) -> np.ndarray | None:
        """Run the face mesh on a square around ``box``; the 68 points of the mesh nearest its centre."""
        centre = (box[:2] + box[2:]) / 2.0
        region, to_image = face_region(image, box)
        result = self._mesh.process(region)
        best: np.ndarray | None = None
        best_distance = np.inf
        for mesh in result.multi_face_landmarks or []:
            points = region_landmarks(mesh, region, to_image)
            distance = float(np.linalg.norm(points.mean(axis=0) - centre))
            if distance < best_distance:
                best, best_distance = points, distance
        return best

    def _is_human(self, image: np.ndarray, landmarks: np.ndarray) -> bool:
        """The human checks: the mesh holds still when run again, dlib's HOG detector agrees, and
        the face is skin, not fur (the cheapest first)."""
        assert self._hog is not None and self._skin is not None
        if not self._skin.is_human(image, landmarks) or not self._is_steady(image, landmarks):
            return False
        return self._hog.is_human(image, landmarks)

    def _is_steady(self, image: np.ndarray, landmarks: np.ndarray) -> bool:
        """The human check: the mesh, run again around its own landmarks, finds the same face."""
        box = landmark_box(landmarks)
        again = self._mesh_near(image, box)
        if again is None:
            return False
        size = math.sqrt(max(float((box[2] - box[0]) * (box[3] - box[1])), 1.0))
        drift = float(np.linalg.norm(again - landmarks, axis=1).mean()) / size
        return drift <= _MAX_DRIFT


def _contains(box: Box, point: np.ndarray) -> bool:
    return bool(box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3])


def _check_image(image_rgb: np.ndarray) -> np.ndarray:
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image of shape (H, W, 3), got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


def detect_landmarks(
    image_rgb: np.ndarray, max_faces: int = 8, min_detection_confidence: float = 0.5
) -> list[np.ndarray]:
    """68-point landmarks (68 x 2, image pixels) of every human face, largest first; builds a
    detector once. For many images keep one :class:`LandmarkDetector` open instead.
    """
    with LandmarkDetector(min_detection_confidence=min_detection_confidence, max_faces=max_faces) as detector:
        return [face.landmarks for face in detector.detect(image_rgb)]
