"""photo2cartoon's preprocessing of a photo: find the faces, align, crop, whiten the background.

The generator was trained on crops made one way: eyes level, a fixed expansion of the landmark
box, 256x256, everything outside the person white. :class:`FaceAligner` makes exactly those crops
for still images, video frames and training data alike, and keeps each crop's transform so a
cartoon can be pasted back into the photo (:mod:`p2c.stream.compositing`).

Stills and training data call :meth:`FaceAligner.align` (find, then crop); the video tracker finds
and smooths landmarks itself and hands them to :meth:`FaceAligner.align_face` with its per-track
mask filter. Either way one :class:`AlignedFace` comes out, cut by the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from p2c.resources import Closeable
from p2c.stream.alignment import (
    CROP_SIZE,
    crop_transform,
    warp_to_crop,
    warp_to_crop_bounded,
    whiten_background,
)
from p2c.stream.landmarks import LandmarkDetector
from p2c.stream.segmentation import HeadSegmenter

__all__ = ["AlignedFace", "AlignerConfig", "FaceAligner", "MaskFilter"]

# Takes the fresh head mask of a crop, returns the mask to use (the tracker's per-track EMA).
MaskFilter = Callable[[np.ndarray], np.ndarray]


@dataclass
class AlignedFace:
    """One face ready for the generator, with what is needed to paste its cartoon back; the one
    face record of stills, video frames (``Frame.faces``) and training data.

    ``landmarks``: (68, 2) image pixels; ``transform``: (2, 3) image -> crop pixels; ``crop``:
    S x S x 3 uint8 RGB, background whitened; ``mask``: S x S float32 in [0, 1], the head mask in
    crop coordinates; ``score``: detector confidence (1.0 when landmarks came from elsewhere);
    ``track_id``: the face's identity across video frames (its rank, largest first, in a still);
    ``cartoon``: the generator's output for ``crop``, once the engine has run; ``cartoon_due``:
    False when a busy live run lets this frame reuse the track's last cartoon (the engine skips the
    face, the compositor pastes that cartoon where the face is now).
    """

    landmarks: np.ndarray
    transform: np.ndarray
    crop: np.ndarray
    mask: np.ndarray
    score: float = 1.0
    track_id: int = 0
    cartoon: np.ndarray | None = None
    cartoon_due: bool = True


@dataclass(frozen=True)
class AlignerConfig:
    """How faces are found and cropped. ``segment=False`` skips the mask (all ones, no whitening)."""

    crop_size: int = CROP_SIZE
    max_faces: int = 8
    min_detection_confidence: float = 0.5
    segment: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.crop_size, int) or self.crop_size < 16:
            raise ValueError(f"crop_size must be an integer of at least 16, got {self.crop_size!r}")
        if not isinstance(self.max_faces, int) or self.max_faces < 1:
            raise ValueError(f"max_faces must be an integer of at least 1, got {self.max_faces!r}")
        if not 0.0 <= self.min_detection_confidence <= 1.0:
            raise ValueError(
                f"min_detection_confidence must be in [0, 1], got {self.min_detection_confidence!r}"
            )


class FaceAligner(Closeable):
    """Detects, aligns and segments faces; holds MediaPipe graphs, so one per thread.

    Use it as a context manager (or call :meth:`close`).
    """

    def __init__(self, config: AlignerConfig | None = None) -> None:
        self.config = config or AlignerConfig()
        # Both built lazily: video tracking only needs the segmenter, data preparation maybe neither.
        self._detector: LandmarkDetector | None = None
        self._segmenter: HeadSegmenter | None = None
        self._closed = False

    def close(self) -> None:
        """Release MediaPipe's graphs; safe to call more than once."""
        self._closed = True
        if self._detector is not None:
            self._detector.close()
            self._detector = None
        if self._segmenter is not None:
            self._segmenter.close()
            self._segmenter = None

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this FaceAligner is closed")

    def align(self, image_rgb: np.ndarray, max_faces: int | None = None) -> list[AlignedFace]:
        """Every face of an RGB uint8 image (up to ``max_faces``), largest first; [] if none."""
        self._check_open()
        limit = self.config.max_faces if max_faces is None else max_faces
        if limit < 1:
            raise ValueError(f"max_faces must be at least 1, got {limit!r}")
        if self._detector is None:
            self._detector = LandmarkDetector(
                min_detection_confidence=self.config.min_detection_confidence, max_faces=self.config.max_faces
            )
        detected = self._detector.detect(image_rgb, max_faces=limit)
        return [
            self.align_face(image_rgb, face.landmarks, score=face.score, track_id=rank)
            for rank, face in enumerate(detected)
        ]

    def align_landmarks(self, image_rgb: np.ndarray, landmarks68s: Sequence[np.ndarray]) -> list[AlignedFace]:
        """Crop, segment and whiten faces whose landmarks were found elsewhere."""
        self._check_open()
        return [self.align_face(image_rgb, lm, track_id=rank) for rank, lm in enumerate(landmarks68s)]

    def align_face(
        self,
        image_rgb: np.ndarray,
        landmarks68: np.ndarray,
        score: float = 1.0,
        track_id: int = 0,
        mask_filter: MaskFilter | None = None,
        mask: np.ndarray | None = None,
        bounded: bool = False,
    ) -> AlignedFace:
        """Crop, segment and whiten one face given its 68 landmarks (image pixels).

        ``mask_filter`` gets the crop's fresh head mask and returns the one to whiten with and keep
        (video smooths masks per track); it is not called when segmentation is off. ``mask``: a
        head mask in crop coordinates to use instead of segmenting (video reuses a track's last
        one between refreshes); ignored when segmentation is off. ``bounded``: cut the crop at a
        cost that does not grow with the face (:func:`p2c.stream.alignment.warp_to_crop_bounded`;
        video, after a face's first frame, which is cut as a still is).
        """
        self._check_open()
        landmarks = np.asarray(landmarks68, dtype=np.float64)
        size = self.config.crop_size
        transform = crop_transform(landmarks, size)
        crop = (warp_to_crop_bounded if bounded else warp_to_crop)(image_rgb, transform, size)
        if self.config.segment and mask is not None:
            crop = whiten_background(crop, mask)
        else:
            mask = self.segment(crop)
            if self.config.segment:
                if mask_filter is not None:
                    mask = mask_filter(mask)
                crop = whiten_background(crop, mask)
        return AlignedFace(
            landmarks=landmarks, transform=transform, crop=crop, mask=mask, score=score, track_id=track_id
        )

    def warm_up(self) -> None:
        """Load the segmentation model now, so the first real face is not late."""
        self.segment(np.full((self.config.crop_size, self.config.crop_size, 3), 255, np.uint8))

    def segment(self, crop: np.ndarray) -> np.ndarray:
        """The head mask of a crop, float32 in [0, 1] (all ones when segmentation is off)."""
        self._check_open()
        if not self.config.segment:
            return np.ones(crop.shape[:2], dtype=np.float32)
        if self._segmenter is None:
            self._segmenter = HeadSegmenter()
        return self._segmenter.segment(crop)
