"""Face tracking for video: MediaPipe's face mesh in tracking mode, full detection only when needed.

Per frame, the face mesh runs in tracking mode (``static_image_mode=False``): it seeds each
face's region from the previous frame's landmarks, so no detector runs while faces stay in view.
Our own full-range detector (MediaPipe FaceDetection, model 1: faces up to ~5 m, which the
mesh's built-in short-range detector misses) runs only

- when a tracked face was lost on this frame,
- every ``detect_every`` frames while fewer faces are tracked than allowed (to find new ones),
- every ``refresh_every`` frames regardless (a sanity check; 0 turns it off).

A detected face the mesh does not cover gets its landmarks from a static mesh on a crop around
the detection, and keeps being followed that way (a crop around its last landmarks) while the
full-frame mesh does not pick it up. Tracks keep stable ids across frames (matched by box IoU,
then centre distance) and survive ``max_missed`` frames unseen, so a face that blinks out for
a moment comes back under its id. Landmarks are smoothed per track with a One-Euro filter in
face-size units, so the behaviour does not depend on the resolution.

``detections`` counts the frames on which a detector ran, as far as we can see: ours, and the
mesh's own when it picks up a new face. (While it tracks fewer faces than ``max_num_faces``,
MediaPipe's mesh also runs its short-range detector on every frame; with ``--max-faces`` above
the number of people in view that cost is real but invisible here.)

The head mask: segmenting the 256x256 crop costs a few milliseconds, so it is done every frame,
but blended with the track's previous mask (an EMA in crop coordinates, which move with the
face, so nothing smears). Segmenting every N frames instead would save little and make the mask
lag the head on fast turns. The smoothed mask both whitens the crop and blends the cartoon back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from p2c.stream.alignment import crop_transform, landmarks68_from_mesh, warp_to_crop, whiten_background
from p2c.stream.frame import Frame, FrameFace
from p2c.stream.smoothing import MaskSmoother, OneEuroConfig, OneEuroFilter
from p2c.stream.stage import Stage

__all__ = ["FaceTracker", "Track", "TrackerConfig", "TrackingStage", "box_iou"]

logger = logging.getLogger(__name__)

Box = np.ndarray  # (4,) x0, y0, x1, y1 in pixels
MeshFn = Callable[[np.ndarray], list[np.ndarray]]  # image -> face meshes (468+, 2) in pixels
DetectFn = Callable[[np.ndarray], list[tuple[Box, float]]]  # image -> (box, score)
RoiMeshFn = Callable[[np.ndarray, Box], np.ndarray | None]  # image, box -> one mesh or None

_ROI_EXPAND = 1.8  # crop side, in face-box sizes, around a face for the static mesh
_ROI_SIZE = 256


@dataclass(frozen=True)
class TrackerConfig:
    """How faces are followed. See the module docstring for the detection policy."""

    max_faces: int = 1
    detect_every: int = 15
    refresh_every: int = 0
    max_missed: int = 10
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    match_iou: float = 0.3
    landmarks: OneEuroConfig = field(default_factory=OneEuroConfig)
    mask_new_weight: float = 0.5
    crop_size: int = 256
    lock_fraction: float = 0.003

    def __post_init__(self) -> None:
        for name in ("max_faces", "detect_every", "crop_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrackerConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("refresh_every", "max_missed"):
            if getattr(self, name) < 0:
                raise ValueError(f"TrackerConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("min_detection_confidence", "min_tracking_confidence", "match_iou"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"TrackerConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.lock_fraction < 0.1:
            raise ValueError(f"TrackerConfig.lock_fraction must be in [0, 0.1), got {self.lock_fraction}")
        if not 0 < self.mask_new_weight <= 1:
            raise ValueError(f"TrackerConfig.mask_new_weight must be in (0, 1], got {self.mask_new_weight}")


def _box(points: np.ndarray) -> Box:
    return np.array([*points.min(axis=0), *points.max(axis=0)], dtype=np.float64)


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _box_size(box: Box) -> float:
    return float(np.sqrt(max((box[2] - box[0]) * (box[3] - box[1]), 1.0)))


def _close(a: Box, b: Box, match_iou: float) -> float:
    """Similarity of two face boxes: IoU, or failing that a score for nearby centres; 0 = no match."""
    iou = box_iou(a, b)
    if iou >= match_iou:
        return 1.0 + iou
    distance = float(np.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2))
    reach = 0.5 * min(_box_size(a), _box_size(b))
    return 1.0 - distance / reach if distance < reach else 0.0


@dataclass
class Track:
    """One face followed across frames."""

    id: int
    landmarks: np.ndarray  # smoothed, (68, 2) pixels
    box: Box
    filter: OneEuroFilter
    mask: MaskSmoother
    missed: int = 0
    age: int = 0
    seen_by_mesh: bool = True
    scale: float = 1.0
    crop_landmarks: np.ndarray | None = None  # what the current crop was cut from (see TrackingStage)


class FaceTracker:
    """Follows up to ``max_faces`` faces; ``update(image, t)`` returns the visible tracks.

    The MediaPipe parts are injectable (``mesh``, ``detect``, ``roi_mesh``) so identity and
    detection policy can be tested with scripted faces; by default MediaPipe builds them.
    """

    def __init__(
        self,
        config: TrackerConfig | None = None,
        mesh: MeshFn | None = None,
        detect: DetectFn | None = None,
        roi_mesh: RoiMeshFn | None = None,
    ) -> None:
        self.config = config or TrackerConfig()
        self._owned: list[Any] = []
        self._mesh = mesh or self._mediapipe_mesh()
        self._detect = detect or self._mediapipe_detector()
        self._roi_mesh = roi_mesh or self._mediapipe_roi_mesh()
        self.tracks: list[Track] = []
        self.frames = 0
        self.detections = 0
        self.tracked_frames = 0
        self._next_id = 0

    # -- MediaPipe ------------------------------------------------------------------------------

    def _mediapipe_mesh(self) -> MeshFn:
        import mediapipe as mp

        mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False,
            max_num_faces=self.config.max_faces,
            refine_landmarks=False,
            min_detection_confidence=self.config.min_detection_confidence,
            min_tracking_confidence=self.config.min_tracking_confidence,
        )
        self._owned.append(mesh)
        return lambda image: _mesh_points(mesh.process(image), image.shape)

    def _mediapipe_detector(self) -> DetectFn:
        from p2c.stream.landmarks import FaceBoxFinder

        finder = FaceBoxFinder(self.config.min_detection_confidence)
        self._owned.append(finder)
        return finder.find

    def _mediapipe_roi_mesh(self) -> RoiMeshFn:
        import mediapipe as mp

        mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True,
            max_num_faces=1,
            refine_landmarks=False,
            min_detection_confidence=self.config.min_detection_confidence,
        )
        self._owned.append(mesh)

        def roi_mesh(image: np.ndarray, box: Box) -> np.ndarray | None:
            # Crop a square around the face, scaled so the face fills the mesh's input well.
            centre = (box[:2] + box[2:]) / 2
            side = _ROI_EXPAND * max(box[2] - box[0], box[3] - box[1], 8.0)
            scale = _ROI_SIZE / side
            matrix = np.array(
                [[scale, 0, _ROI_SIZE / 2 - scale * centre[0]], [0, scale, _ROI_SIZE / 2 - scale * centre[1]]]
            )
            crop = cv2.warpAffine(image, matrix, (_ROI_SIZE, _ROI_SIZE), borderMode=cv2.BORDER_REPLICATE)
            points = _mesh_points(mesh.process(crop), crop.shape)
            if not points:
                return None
            return (points[0] - matrix[:, 2]) / scale

        return roi_mesh

    def warm_up(self) -> None:
        """Load MediaPipe's models now (a blank image), so the first real frame is not late."""
        blank = np.full((256, 256, 3), 127, np.uint8)
        self._mesh(blank)
        self._detect(blank)
        self._roi_mesh(blank, np.array([64.0, 64.0, 192.0, 192.0]))

    def close(self) -> None:
        for graph in self._owned:
            graph.close()
        self._owned.clear()

    # -- tracking -------------------------------------------------------------------------------

    def _needs_detection(self, lost: bool) -> bool:
        """Whether our full-range detector runs on this frame (see the module docstring)."""
        config, index = self.config, self.frames
        if not self.tracks or lost:
            return True
        if len(self.tracks) < config.max_faces and index % config.detect_every == 0:
            return True
        return bool(config.refresh_every) and index % config.refresh_every == 0

    def update(self, image: np.ndarray, timestamp: float) -> list[Track]:
        """Track faces on RGB ``image`` taken at ``timestamp`` seconds; visible tracks, largest first."""
        image = np.ascontiguousarray(image)
        observed = [landmarks68_from_mesh(points) for points in self._mesh(image)]
        known = self._next_id
        matched = self._associate(observed)
        # A face the tracking mesh picked up by itself means its own detector ran: count it too.
        mesh_detected = self._next_id > known
        # Tracks the full-frame mesh lost: look again in a crop around where they were.
        for track in self.tracks:
            if track.id not in matched and track.missed == 0:
                points = self._roi_mesh(image, track.box)
                if points is not None:
                    matched[track.id] = landmarks68_from_mesh(points)
                    track.seen_by_mesh = False
        lost = any(track.id not in matched and track.missed == 0 for track in self.tracks)
        if self._needs_detection(lost):
            self._add_detected(image, matched)
            self.detections += 1
        elif mesh_detected:
            self.detections += 1
        self._apply(matched, timestamp)
        visible = sorted((t for t in self.tracks if t.missed == 0), key=lambda t: -_box_size(t.box))
        self.frames += 1
        if visible:
            self.tracked_frames += 1
        return visible[: self.config.max_faces]

    def _associate(self, observed: list[np.ndarray]) -> dict[int, np.ndarray]:
        """Greedy matching of observed landmarks to tracks, best similarity first."""
        pairs = []
        for i, landmarks in enumerate(observed):
            box = _box(landmarks)
            for track in self.tracks:
                score = _close(box, track.box, self.config.match_iou)
                if score > 0:
                    pairs.append((score, i, track))
        matched: dict[int, np.ndarray] = {}
        used: set[int] = set()
        for _score, i, track in sorted(pairs, key=lambda p: -p[0]):
            if i in used or track.id in matched:
                continue
            used.add(i)
            matched[track.id] = observed[i]
            track.seen_by_mesh = True
        for i, landmarks in enumerate(observed):
            if i not in used:
                matched[self._new_track(landmarks).id] = landmarks
        return matched

    def _add_detected(self, image: np.ndarray, matched: dict[int, np.ndarray]) -> None:
        """Faces the detector finds and no track covers: landmarks from a crop, then a new track."""
        covered = [_box(lm) for lm in matched.values()]
        for box, _score in sorted(self._detect(image), key=lambda d: -_box_size(d[0])):
            if len(covered) >= self.config.max_faces:
                break
            if any(_close(box, other, self.config.match_iou) > 0 for other in covered):
                continue
            points = self._roi_mesh(image, box)
            if points is None:
                continue
            landmarks = landmarks68_from_mesh(points)
            revived = self._revive(landmarks)
            track = revived or self._new_track(landmarks)
            track.seen_by_mesh = False
            matched[track.id] = landmarks
            covered.append(_box(landmarks))

    def _revive(self, landmarks: np.ndarray) -> Track | None:
        """A recently lost track where this face is, so it keeps its id."""
        box = _box(landmarks)
        candidates = [
            t for t in self.tracks if t.missed > 0 and _close(box, t.box, self.config.match_iou) > 0
        ]
        return max(candidates, key=lambda t: _close(box, t.box, self.config.match_iou), default=None)

    def _new_track(self, landmarks: np.ndarray) -> Track:
        track = Track(
            id=self._next_id,
            landmarks=landmarks,
            box=_box(landmarks),
            filter=OneEuroFilter(self.config.landmarks),
            mask=MaskSmoother(self.config.mask_new_weight),
        )
        self._next_id += 1
        self.tracks.append(track)
        logger.debug("new face track %d", track.id)
        return track

    def _apply(self, matched: dict[int, np.ndarray], timestamp: float) -> None:
        kept = []
        for track in self.tracks:
            landmarks = matched.get(track.id)
            if landmarks is None:
                track.missed += 1
                if track.missed <= self.config.max_missed:
                    kept.append(track)
                continue
            if track.missed > 0 or track.age == 0:
                track.filter.reset()  # back after a gap: do not glide from where it was
                # One fixed unit per stretch of tracking: the filter works in face sizes, and a
                # per-frame unit would put the size's own jitter back into the output.
                track.scale = _box_size(_box(landmarks))
            track.landmarks = track.filter(landmarks / track.scale, timestamp) * track.scale
            track.box = _box(track.landmarks)
            track.missed = 0
            track.age += 1
            kept.append(track)
        self.tracks = kept


def _mesh_points(result: Any, shape: Sequence[int]) -> list[np.ndarray]:
    height, width = shape[:2]
    faces = []
    for face in result.multi_face_landmarks or []:
        faces.append(np.array([(p.x * width, p.y * height) for p in face.landmark], dtype=np.float64))
    return faces


class TrackingStage(Stage):
    """Pipeline stage: track faces, then crop, segment (smoothed) and whiten each one.

    ``aligner`` is the thread's :class:`p2c.stream.faces.FaceAligner` (it owns the segmenter);
    ``segment=False`` skips the head mask (all ones, crop not whitened).
    """

    name = "tracker"

    def __init__(self, tracker: FaceTracker, aligner: Any, stats: Any = None, segment: bool = True) -> None:
        self.tracker = tracker
        self.aligner = aligner
        self.stats = stats
        self.segment = segment

    def process(self, frames: list[Frame]) -> list[Frame]:
        for frame in frames:
            detections = self.tracker.detections
            tracks = self.tracker.update(frame.image, frame.timestamp)
            frame.faces = [self._face(frame.image, track) for track in tracks]
            if self.stats is not None:
                self.stats.add(
                    faces=len(frame.faces),
                    detections=self.tracker.detections - detections,
                    tracked_frames=int(bool(tracks)),
                )
        return frames

    def _crop_landmarks(self, track: Track) -> np.ndarray:
        """The landmarks to cut the crop from: the last ones again while the face has not moved.

        The smoothed landmarks of a still face still creep by hundredths of a pixel; each creep
        re-samples the crop, and the generator turns sub-pixel shifts into visible shimmer. Until
        some point has moved by ``lock_fraction`` of the face size (about half a pixel), the crop
        is cut exactly as before, so a still face gives the same crop and the same cartoon.
        """
        locked = track.crop_landmarks
        limit = self.tracker.config.lock_fraction * track.scale
        if (
            locked is None
            or locked.shape != track.landmarks.shape
            or np.abs(track.landmarks - locked).max() > limit
        ):
            track.crop_landmarks = track.landmarks.copy()
        assert track.crop_landmarks is not None
        return track.crop_landmarks

    def _face(self, image: np.ndarray, track: Track) -> FrameFace:
        size = self.tracker.config.crop_size
        landmarks = self._crop_landmarks(track)
        transform = crop_transform(landmarks, size)
        crop = warp_to_crop(image, transform, size)
        if self.segment:
            mask = track.mask(self.aligner.segment(crop))
            crop = whiten_background(crop, mask)
        else:
            mask = np.ones((size, size), np.float32)
        return FrameFace(track_id=track.id, landmarks=landmarks, transform=transform, crop=crop, mask=mask)

    def warm_up(self) -> None:
        self.tracker.warm_up()
        if self.segment:
            self.aligner.segment(np.full((self.tracker.config.crop_size,) * 2 + (3,), 255, np.uint8))

    def close(self) -> None:
        self.tracker.close()
        close = getattr(self.aligner, "close", None)
        if close is not None:
            close()
