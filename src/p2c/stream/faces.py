"""photo2cartoon's preprocessing of a photo: find the faces, align, crop, whiten the background.

The generator was trained on crops made one way: eyes level, a fixed expansion of the landmark
box, 256x256, everything outside the person white. :class:`FaceAligner` makes exactly those crops
for still images, video frames and training data alike, and keeps each crop's transform so a
cartoon can be pasted back into the photo (:mod:`p2c.stream.compositing`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from p2c.resources import Closeable
from p2c.stream.alignment import CROP_SIZE, crop_transform, warp_to_crop, whiten_background
from p2c.stream.landmarks import LandmarkDetector
from p2c.stream.segmentation import HeadSegmenter

__all__ = ["AlignedFace", "AlignerConfig", "FaceAligner"]


@dataclass
class AlignedFace:
    """One face ready for the generator, with what is needed to paste its cartoon back.

    ``landmarks``: (68, 2) image pixels; ``transform``: (2, 3) image -> crop pixels; ``crop``:
    S x S x 3 uint8 RGB, background whitened; ``mask``: S x S float32 in [0, 1], the head mask in
    crop coordinates; ``score``: detector confidence (1.0 when landmarks came from elsewhere).
    """

    landmarks: np.ndarray
    transform: np.ndarray
    crop: np.ndarray
    mask: np.ndarray
    score: float


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
        return [self._align_one(image_rgb, face.landmarks, face.score) for face in detected]

    def align_landmarks(self, image_rgb: np.ndarray, landmarks68s: Sequence[np.ndarray]) -> list[AlignedFace]:
        """Crop, segment and whiten faces whose landmarks were found elsewhere (e.g. a tracker)."""
        self._check_open()
        return [self._align_one(image_rgb, np.asarray(lm, dtype=np.float64), 1.0) for lm in landmarks68s]

    def segment(self, crop: np.ndarray) -> np.ndarray:
        """The head mask of a crop, float32 in [0, 1] (all ones when segmentation is off)."""
        self._check_open()
        if not self.config.segment:
            return np.ones(crop.shape[:2], dtype=np.float32)
        if self._segmenter is None:
            self._segmenter = HeadSegmenter()
        return self._segmenter.segment(crop)

    def _align_one(self, image_rgb: np.ndarray, landmarks: np.ndarray, score: float) -> AlignedFace:
        transform = crop_transform(landmarks, self.config.crop_size)
        crop = warp_to_crop(image_rgb, transform, self.config.crop_size)
        mask = self.segment(crop)
        if self.config.segment:
            crop = whiten_background(crop, mask)
        return AlignedFace(landmarks=landmarks, transform=transform, crop=crop, mask=mask, score=score)
