"""Sample grids: one row per photo, columns photo | cartoon (A->B) | cycle (A->B->A)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from p2c.errors import OutputError
from p2c.files import atomic_write, require_folder

__all__ = ["grid_image", "tensor_to_rgb", "write_png"]


def tensor_to_rgb(batch: torch.Tensor) -> np.ndarray:
    """N x 3 x H x W in [-1, 1] -> N x H x W x 3 uint8."""
    array = ((batch.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round()
    return array.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def grid_image(columns: list[torch.Tensor]) -> np.ndarray:
    """Tile same-shaped N x 3 x H x W batches side by side: row i holds sample i of every column."""
    images = [tensor_to_rgb(column) for column in columns]
    rows = [np.concatenate([column[i] for column in images], axis=1) for i in range(images[0].shape[0])]
    return np.concatenate(rows, axis=0)


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write atomically (:func:`p2c.files.atomic_write`) so a viewer never sees half a PNG."""
    require_folder(path, "sample")
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OutputError(f"cannot encode {path} as PNG")
    with atomic_write(path, "wb") as stream:
        stream.write(encoded.tobytes())
