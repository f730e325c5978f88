"""The head-and-shoulders mask of an aligned face crop, with MediaPipe's selfie segmentation.

photo2cartoon segments the aligned crop (not the whole photo) and whitens everything outside the
person; the cartoon training images have that white background, so the generator expects it.
MediaPipe's general selfie model takes 256x256 input, exactly our crop, and runs offline.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from p2c.resources import Closeable

__all__ = ["HeadSegmenter"]

# The general model (0) works on 256x256, our crop; the landscape model (1) wants 144x256 video.
_MODEL_SELECTION = 0


class HeadSegmenter(Closeable):
    """Soft person mask (float32 in [0, 1]) of an RGB crop; one per thread; a context manager."""

    def __init__(self) -> None:
        import mediapipe as mp  # heavy: load only when a segmenter is built

        self._segmenter: Any = mp.solutions.selfie_segmentation.SelfieSegmentation(
            model_selection=_MODEL_SELECTION
        )
        self._closed = False

    def close(self) -> None:
        """Release MediaPipe's graph; safe to call more than once."""
        if not self._closed:
            self._closed = True
            self._segmenter.close()

    def segment(self, crop_rgb: np.ndarray) -> np.ndarray:
        """The person mask of ``crop_rgb`` (H x W x 3 uint8), H x W float32 in [0, 1]."""
        if self._closed:
            raise RuntimeError("this HeadSegmenter is closed")
        crop = np.asarray(crop_rgb)
        if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 crop of shape (H, W, 3), got {crop.dtype} {crop.shape}")
        result = self._segmenter.process(np.ascontiguousarray(crop))
        mask: np.ndarray = np.asarray(result.segmentation_mask, dtype=np.float32)
        if mask.shape != crop.shape[:2]:
            mask = cv2.resize(mask, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_LINEAR)
        return np.clip(mask, 0.0, 1.0)
