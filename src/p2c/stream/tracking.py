"""Face tracking for video: MediaPipe's face mesh in tracking mode, full detection only when needed.

Per frame, each track is followed by a face mesh of its own in tracking mode
(:class:`p2c.stream.region_mesh.RegionMeshes`), on a square around its last landmarks: it seeds
the face's landmarks from the previous frame's, so no detector runs while faces stay in view, and
a small face fills that square as a large one does. While fewer faces are tracked than allowed,
a tracking mesh on the whole frame runs too, to notice faces that come into view
(``follow_regions=False`` keeps only the whole-frame mesh, the earlier way).
Faces are born only from our detector, :class:`p2c.stream.landmarks.LandmarkDetector`, the one
stills and training data use (full- and short-range boxes, tiles on large frames, a mesh per box,
human faces only). It runs

- when a tracked face was lost on this frame,
- when the tracking mesh reports a face no track follows (the mesh's own detector picked
  something up: it becomes a track only if ours confirms it, so a pet walking by does not),
- every ``detect_every`` frames while fewer faces are tracked than allowed (to find new ones),
- every ``refresh_every`` frames regardless (a sanity check; 0 turns it off).

On a frame large enough for tiles, each detection searches ``tiles_per_detection`` of them (the next
ones each time), so small faces in 4K video are found over a few detections without making any one
frame slow. A face no tracking mesh follows on a frame (turned away for a moment, or too small for
the whole-frame mesh when per-track meshes are off) is looked for again by the static mesh, with its
detector, on a square around its last landmarks. Tracks keep stable ids across frames (matched by
box IoU, then centre distance) and survive ``max_missed`` frames unseen, so a face that blinks out
for a moment comes back under its id. Landmarks are smoothed per track with a One-Euro filter in
face-size units, so the behaviour does not depend on the resolution; a new track starts from its
detected landmarks exactly, so the first frame of a clip is cropped exactly as the same image is as
a still.

``detections`` counts the frames on which our detector ran. (While it tracks fewer faces than
``max_num_faces``, MediaPipe's mesh also runs its short-range detector on every frame; with
``--max-faces`` above the number of people in view that cost is real but invisible here.)

The crop: :class:`TrackingStage` hands each track's landmarks to the aligner
(:meth:`p2c.stream.faces.FaceAligner.align_face`), which crops, segments and whitens as for a still.
The aligner passes each fresh mask through the track's mask filter: an EMA in crop coordinates,
which move with the face, so nothing smears. Segmenting a crop costs about 6 ms of CPU whatever
its size (the model's input is 256x256), so live runs segment each face every 2nd frame (more
rarely when the adaptive policy says the machine is busy) and reuse the track's last mask in
between: it is in crop coordinates, so it follows the tracked alignment; on a fast turn it lags
by at most the refresh interval (the tolerance is tested). Files segment every frame. The mask
both whitens the crop and blends the cartoon back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from p2c.stream.adaptive import LivePolicy
from p2c.stream.faces import AlignedFace, FaceAligner
from p2c.stream.frame import Frame
from p2c.stream.landmarks import box_iou, landmark_box, mesh_landmarks68
from p2c.stream.region_mesh import RegionMeshes
from p2c.stream.smoothing import MaskSmoother, OneEuroConfig, OneEuroFilter
from p2c.stream.stabilizer import FlowStabilizer, StabilizerConfig, face_motion
from p2c.stream.stage import Stage

__all__ = ["FaceTracker", "Track", "TrackerConfig", "TrackingStage"]

logger = logging.getLogger(__name__)

Box = np.ndarray  # (4,) x0, y0, x1, y1 in pixels
MeshFn = Callable[[np.ndarray], list[np.ndarray]]  # image -> 68 landmarks of each face the mesh follows
FollowFn = Callable[[np.ndarray, int, np.ndarray], np.ndarray | None]  # image, track id, box -> landmarks
DetectFn = Callable[[np.ndarray, Sequence[Box]], list[np.ndarray]]  # image, known boxes -> new faces
RefindFn = Callable[[np.ndarray, Box], np.ndarray | None]  # image, box -> landmarks of the face there


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
    lock_fraction: float = 0.003
    tiles_per_detection: int = 2
    follow_regions: bool = True
    stabilizer: StabilizerConfig | None = field(default_factory=StabilizerConfig)

    def __post_init__(self) -> None:
        for name in ("max_faces", "detect_every", "tiles_per_detection"):
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
    scale: float = 1.0
    crop_landmarks: np.ndarray | None = None  # what the current crop was cut from (see TrackingStage)
    stable: np.ndarray | None = None  # landmarks carried by the face's flow (p2c.stream.stabilizer)
    # Frames since the head mask was last segmented; None: segment on the next frame (a new
    # track, or one back after a gap). See TrackingStage.
    mask_age: int | None = None
    # Whether the track has had a cartoon since it (re)appeared: until then each frame is due one.
    has_cartoon: bool = False


class FaceTracker:
    """Follows up to ``max_faces`` faces; ``update(image, t)`` returns the visible tracks.

    The MediaPipe parts are injectable (``mesh``, ``detect``, ``refind``, ``follow``) so identity
    and detection policy can be tested with scripted faces; by default MediaPipe builds them (a
    scripted ``mesh`` without a ``follow`` means no per-track meshes).
    """

    def __init__(
        self,
        config: TrackerConfig | None = None,
        mesh: MeshFn | None = None,
        detect: DetectFn | None = None,
        refind: RefindFn | None = None,
        follow: FollowFn | None = None,
    ) -> None:
        self.config = config or TrackerConfig()
        self._owned: list[Any] = []
        self._regions: RegionMeshes | None = None
        if follow is None and mesh is None and self.config.follow_regions:
            self._regions = RegionMeshes(
                self.config.max_faces,
                self.config.min_detection_confidence,
                self.config.min_tracking_confidence,
            )
            self._owned.append(self._regions)
            follow = self._regions.follow
        self._follow = follow
        self._mesh = mesh or self._mediapipe_mesh()
        if detect is None or refind is None:
            detect, refind = self._mediapipe_detector(detect, refind)
        self._detect, self._refind = detect, refind
        self.tracks: list[Track] = []
        self.frames = 0
        self.detections = 0
        # The adaptive live policy searches for new faces this many times less often when busy.
        self.detect_factor = 1
        self.tracked_frames = 0
        self._next_id = 0
        # Boxes of faces the tracking mesh follows but our detector did not confirm (a pet, say):
        # they do not set off a detection again on every frame while they stay in view.
        self._doubtful: list[Box] = []

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

        def follow(image: np.ndarray) -> list[np.ndarray]:
            height, width = image.shape[:2]
            found = mesh.process(image).multi_face_landmarks or []
            return [mesh_landmarks68(face, width, height) for face in found]

        return follow

    def _mediapipe_detector(
        self, detect: DetectFn | None, refind: RefindFn | None
    ) -> tuple[DetectFn, RefindFn]:
        from p2c.stream.landmarks import LandmarkDetector

        detector = LandmarkDetector(self.config.min_detection_confidence, max_faces=self.config.max_faces)
        self._owned.append(detector)

        def find_new(image: np.ndarray, known: Sequence[Box]) -> list[np.ndarray]:
            tiles = self.config.tiles_per_detection
            return [face.landmarks for face in detector.detect(image, known=known, tiles=tiles)]

        return detect or find_new, refind or detector.landmarks_near

    def warm_up(self) -> None:
        """Load MediaPipe's models now (a blank image), so the first real frame is not late."""
        blank = np.full((256, 256, 3), 127, np.uint8)
        if self._regions is not None:
            self._regions.warm_up()
        self._mesh(blank)
        self._detect(blank, [])
        self._refind(blank, np.array([64.0, 64.0, 192.0, 192.0]))

    def close(self) -> None:
        for graph in self._owned:
            graph.close()
        self._owned.clear()

    # -- tracking -------------------------------------------------------------------------------

    def _needs_detection(self, lost: bool, unknown: bool) -> bool:
        """Whether our detector runs on this frame (see the module docstring)."""
        config, index, factor = self.config, self.frames, self.detect_factor
        if not self.tracks or lost or unknown:
            return True
        if len(self.tracks) < config.max_faces and index % (config.detect_every * factor) == 0:
            return True
        return bool(config.refresh_every) and index % (config.refresh_every * factor) == 0

    def update(self, image: np.ndarray, timestamp: float) -> list[Track]:
        """Track faces on RGB ``image`` taken at ``timestamp`` seconds; visible tracks, largest first."""
        image = np.ascontiguousarray(image)
        followed: dict[int, np.ndarray] = {}
        if self._follow is not None:
            for track in self.tracks:
                if track.missed == 0:
                    landmarks = self._follow(image, track.id, track.box)
                    if landmarks is not None:
                        followed[track.id] = landmarks
        # The whole-frame mesh: to follow faces (without per-track meshes), or to notice new ones.
        in_view = sum(track.missed == 0 for track in self.tracks)
        whole = self._follow is None or in_view < self.config.max_faces
        matched, unmatched = self._associate(self._mesh(image) if whole else [])
        matched.update(followed)
        # Tracks no mesh followed: look again, with the detector, in a square around where they were.
        for track in self.tracks:
            if track.id not in matched and track.missed == 0:
                landmarks = self._refind(image, track.box)
                if landmarks is not None:
                    matched[track.id] = landmarks
        lost = any(track.id not in matched and track.missed == 0 for track in self.tracks)
        unknown = any(
            all(_close(box, doubtful, self.config.match_iou) == 0 for doubtful in self._doubtful)
            for box in unmatched
        )
        if self._needs_detection(lost, unknown):
            self._add_detected(image, matched)
            self.detections += 1
        covered = [landmark_box(landmarks) for landmarks in matched.values()]
        self._doubtful = [
            box for box in unmatched if all(_close(box, c, self.config.match_iou) == 0 for c in covered)
        ]
        self._apply(matched, timestamp)
        visible = sorted((t for t in self.tracks if t.missed == 0), key=lambda t: -_box_size(t.box))
        self.frames += 1
        if visible:
            self.tracked_frames += 1
        return visible[: self.config.max_faces]

    def _associate(self, observed: list[np.ndarray]) -> tuple[dict[int, np.ndarray], list[Box]]:
        """Greedy matching of observed landmarks to tracks, best similarity first; returns the
        matches and the boxes of observations no track follows."""
        boxes = [landmark_box(landmarks) for landmarks in observed]
        pairs = []
        for i, box in enumerate(boxes):
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
        return matched, [box for i, box in enumerate(boxes) if i not in used]

    def _add_detected(self, image: np.ndarray, matched: dict[int, np.ndarray]) -> None:
        """Faces the detector finds and no track covers: revive a lost track there, or start one."""
        covered = [landmark_box(landmarks) for landmarks in matched.values()]
        for landmarks in self._detect(image, covered):
            if len(covered) >= self.config.max_faces:
                break
            box = landmark_box(landmarks)
            if any(_close(box, other, self.config.match_iou) > 0 for other in covered):
                continue
            track = self._revive(box) or self._new_track(landmarks)
            matched[track.id] = landmarks
            covered.append(box)

    def _revive(self, box: Box) -> Track | None:
        """A recently lost track where this face is, so it keeps its id."""
        candidates = [
            t for t in self.tracks if t.missed > 0 and _close(box, t.box, self.config.match_iou) > 0
        ]
        return max(candidates, key=lambda t: _close(box, t.box, self.config.match_iou), default=None)

    def _new_track(self, landmarks: np.ndarray) -> Track:
        track = Track(
            id=self._next_id,
            landmarks=landmarks,
            box=landmark_box(landmarks),
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
                track.mask_age = None  # and segment the head afresh
                track.has_cartoon = False
                track.stable = None  # and cut the crop from the fresh landmarks
                # One fixed unit per stretch of tracking: the filter works in face sizes, and a
                # per-frame unit would put the size's own jitter back into the output.
                track.scale = _box_size(landmark_box(landmarks))
                track.filter(landmarks / track.scale, timestamp)
                # The detected landmarks as they are (not divided and multiplied back), so a new
                # face's first crop is the still image's crop to the bit.
                track.landmarks = np.array(landmarks, dtype=np.float64)
            else:
                track.landmarks = track.filter(landmarks / track.scale, timestamp) * track.scale
            track.box = landmark_box(track.landmarks)
            track.missed = 0
            track.age += 1
            kept.append(track)
        self.tracks = kept


class TrackingStage(Stage):
    """Pipeline stage: track faces, then hand each track's landmarks to the aligner, which crops,
    segments (through the track's mask smoother) and whitens each one as it does for stills.

    ``aligner`` is the thread's :class:`p2c.stream.faces.FaceAligner`; its config decides the crop
    size and whether the background is whitened. ``segment_every``: a face's head mask is
    segmented on every N-th frame of its track (and on its first); in between the track's last
    mask is used as it is. The mask lives in crop coordinates, which follow the tracked alignment,
    so it moves with the head. ``policy`` (live runs): an :class:`p2c.stream.adaptive.LivePolicy`
    whose level overrides ``segment_every`` and slows the search for new faces when busy.
    """

    name = "tracker"

    def __init__(
        self,
        tracker: FaceTracker,
        aligner: FaceAligner,
        stats: Any = None,
        segment_every: int = 1,
        policy: LivePolicy | None = None,
    ) -> None:
        if segment_every < 1:
            raise ValueError(f"TrackingStage.segment_every must be >= 1, got {segment_every}")
        self.tracker = tracker
        self.aligner = aligner
        self.stats = stats
        self.segment_every = segment_every
        self.policy = policy
        self.segmentations = 0
        # The stabilizer carries each track's crop, whichever mesh (per-track, whole-frame or the
        # detector) produced its landmarks on this frame.
        config = tracker.config.stabilizer
        self.stabilizer = FlowStabilizer(config) if config is not None else None
        # The last frame, for the face flow: only the faces' surroundings of it are ever read.
        self._previous_image: np.ndarray | None = None

    def process(self, frames: list[Frame]) -> list[Frame]:
        for frame in frames:
            segment_every, cartoon_every = self.segment_every, 1
            if self.policy is not None:
                level = self.policy.level
                segment_every, self.tracker.detect_factor = level.segment_every, level.detect_factor
                cartoon_every = level.cartoon_every
            detections, segmentations = self.tracker.detections, self.segmentations
            tracks = self.tracker.update(frame.image, frame.timestamp)
            frame.faces = [self._face(frame.image, track, segment_every) for track in tracks]
            self._previous_image = frame.image
            for face, track in zip(frame.faces, tracks, strict=True):
                # Faces take turns (by track id), so each frame's engine call holds about as many.
                face.cartoon_due = (
                    not track.has_cartoon or (self.tracker.frames + track.id) % cartoon_every == 0
                )
                track.has_cartoon = True
            if self.stats is not None:
                self.stats.add(
                    faces=len(frame.faces),
                    detections=self.tracker.detections - detections,
                    tracked_frames=int(bool(tracks)),
                    segmentations=self.segmentations - segmentations,
                )
        return frames

    def _stable_landmarks(self, track: Track, image: np.ndarray) -> np.ndarray:
        """The track's landmarks carried along by the face's own motion (:mod:`p2c.stream.stabilizer`)."""
        if self.stabilizer is None:
            return track.landmarks
        motion = None
        previous = self._previous_image
        if track.stable is not None and previous is not None and previous.shape == image.shape:
            motion = face_motion(previous, image, landmark_box(track.stable), self.stabilizer.config)
        track.stable = self.stabilizer.update(track.stable, track.landmarks, motion, track.scale)
        return track.stable

    def _crop_landmarks(self, track: Track, image: np.ndarray) -> np.ndarray:
        """The landmarks to cut the crop from: the last ones again while the face has not moved.

        The smoothed landmarks of a still face still creep by hundredths of a pixel; each creep
        re-samples the crop, and the generator turns sub-pixel shifts into visible shimmer. Until
        some point has moved by ``lock_fraction`` of the face size (about half a pixel), the crop
        is cut exactly as before, so a still face gives the same crop and the same cartoon.
        """
        landmarks = self._stable_landmarks(track, image)
        locked = track.crop_landmarks
        limit = self.tracker.config.lock_fraction * track.scale
        if locked is None or locked.shape != landmarks.shape or np.abs(landmarks - locked).max() > limit:
            track.crop_landmarks = landmarks.copy()
        assert track.crop_landmarks is not None
        return track.crop_landmarks

    def _face(self, image: np.ndarray, track: Track, segment_every: int = 1) -> AlignedFace:
        landmarks = self._crop_landmarks(track, image)
        # A track's first crop is cut as a still is, to the bit; later ones at a bounded cost.
        bounded = track.age > 1
        previous = track.mask.value
        if previous is not None and track.mask_age is not None and track.mask_age + 1 < segment_every:
            track.mask_age += 1
            return self.aligner.align_face(
                image, landmarks, track_id=track.id, mask=previous, bounded=bounded
            )
        track.mask_age = 0
        self.segmentations += int(self.aligner.config.segment)
        return self.aligner.align_face(
            image, landmarks, track_id=track.id, mask_filter=track.mask, bounded=bounded
        )

    def warm_up(self) -> None:
        self.tracker.warm_up()
        self.aligner.warm_up()

    def close(self) -> None:
        self.tracker.close()
        self.aligner.close()
