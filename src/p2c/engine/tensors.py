"""Conversions between uint8 RGB crops and the generator's float batches, and batch checks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

import numpy as np
import torch

from p2c.errors import InvalidInputError

__all__ = [
    "backend_device",
    "batch_to_images",
    "check_batch",
    "check_tensor_batch",
    "chunks",
    "concat",
    "images_to_batch",
]

_Batch = TypeVar("_Batch", np.ndarray, torch.Tensor)


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
    if not isinstance(batch, np.ndarray):
        expected = f"(N, 3, {size or 'S'}, {size or 'S'})"
        raise InvalidInputError(
            f"expected a numpy float32 array or a torch tensor of shape {expected}, "
            f"got {type(batch).__name__}"
        )
    _check_shape(batch.shape, size)
    if not np.issubdtype(batch.dtype, np.floating):
        raise InvalidInputError(f"expected a float32 batch in [-1, 1], got dtype {batch.dtype}")
    return np.ascontiguousarray(batch, dtype=np.float32)


def _check_shape(shape: tuple[int, ...], size: int | None) -> None:
    expected = f"(N, 3, {size or 'S'}, {size or 'S'})"
    square = len(shape) == 4 and shape[2] == shape[3]
    if not square or shape[0] < 1 or shape[1] != 3 or (size is not None and shape[2] != size):
        raise InvalidInputError(f"expected a batch of shape {expected}, got {shape}")


def check_tensor_batch(batch: torch.Tensor, size: int | None, device: torch.device) -> torch.Tensor:
    """A floating-point tensor batch on ``device``, or InvalidInputError showing what was expected.

    A tensor on another device is refused rather than copied: a silent host round trip is exactly
    what the tensor path exists to avoid.
    """
    _check_shape(tuple(batch.shape), size)
    if not batch.is_floating_point():
        raise InvalidInputError(f"expected a floating-point batch in [-1, 1], got dtype {batch.dtype}")
    if batch.device != device:
        raise InvalidInputError(
            f"expected a batch on {device}, the engine's device, got one on {batch.device}"
        )
    return batch


def backend_device(device: str) -> torch.device:
    """The torch device of a backend's ``device`` text (``"cuda:0 (cuda-ep)"`` -> ``cuda:0``)."""
    return torch.device(device.split(" ", 1)[0])


def chunks(batch: _Batch, size: int) -> Iterator[_Batch]:
    """Consecutive slices of at most ``size`` samples."""
    for start in range(0, batch.shape[0], size):
        yield batch[start : start + size]


def concat(outputs: list[_Batch]) -> _Batch:
    """One batch from the per-chunk outputs (the single output itself when there is one)."""
    if len(outputs) == 1:
        return outputs[0]
    if isinstance(outputs[0], torch.Tensor):
        return torch.cat(outputs)
    return np.concatenate(outputs)
