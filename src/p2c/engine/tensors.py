"""Conversions between uint8 RGB crops and the generator's float batches, and batch checks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from p2c.errors import InvalidInputError

__all__ = ["batch_to_images", "check_batch", "chunks", "images_to_batch"]


def images_to_batch(crops: Sequence[np.ndarray]) -> np.ndarray:
    """uint8 RGB crops H x W x 3 (all the same size) -> float32 N x 3 x H x W in [-1, 1]."""
    if len(crops) == 0:
        raise InvalidInputError("images_to_batch needs at least one crop, got none")
    first = np.asarray(crops[0])
    for index, crop in enumerate(crops):
        crop = np.asarray(crop)
        if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3 or crop.shape != first.shape:
            raise InvalidInputError(
                f"crop {index}: expected a uint8 RGB image of shape {(*first.shape[:2], 3)}, "
                f"got {crop.dtype} of shape {crop.shape}"
            )
    stacked = np.stack([np.asarray(crop) for crop in crops]).astype(np.float32)
    batch = stacked.transpose(0, 3, 1, 2) / np.float32(127.5) - np.float32(1.0)
    return np.ascontiguousarray(batch, dtype=np.float32)


def batch_to_images(batch: np.ndarray) -> list[np.ndarray]:
    """float32 N x 3 x H x W in [-1, 1] -> uint8 RGB images H x W x 3 (values clipped, then rounded)."""
    batch = np.asarray(batch)
    if batch.ndim != 4 or batch.shape[1] != 3:
        raise InvalidInputError(f"expected a batch of shape (N, 3, H, W), got {batch.shape}")
    pixels = np.clip((batch.astype(np.float32) + 1.0) * 127.5, 0.0, 255.0)
    images = np.rint(pixels).astype(np.uint8).transpose(0, 2, 3, 1)
    return [np.ascontiguousarray(image) for image in images]


def check_batch(batch: np.ndarray, size: int | None) -> np.ndarray:
    """The batch as C-contiguous float32, or InvalidInputError showing the expected and actual shape."""
    expected = f"(N, 3, {size or 'S'}, {size or 'S'})"
    if not isinstance(batch, np.ndarray):
        raise InvalidInputError(
            f"expected a numpy float32 array of shape {expected}, got {type(batch).__name__}"
        )
    square = batch.ndim == 4 and batch.shape[2] == batch.shape[3]
    if (
        not square
        or batch.shape[0] < 1
        or batch.shape[1] != 3
        or (size is not None and batch.shape[2] != size)
    ):
        raise InvalidInputError(f"expected a batch of shape {expected}, got {batch.shape}")
    if not np.issubdtype(batch.dtype, np.floating):
        raise InvalidInputError(f"expected a float32 batch in [-1, 1], got dtype {batch.dtype}")
    return np.ascontiguousarray(batch, dtype=np.float32)


def chunks(batch: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """Consecutive slices of at most ``size`` samples."""
    for start in range(0, batch.shape[0], size):
        yield batch[start : start + size]
