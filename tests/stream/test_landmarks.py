"""The face path's pure parts: mesh parsing (one pixel convention), box IoU."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from p2c.stream.alignment import LANDMARKS68_FROM_MESH
from p2c.stream.landmarks import box_iou, mesh_landmarks68


def _mesh(points_xy: np.ndarray) -> SimpleNamespace:
    """A stand-in for MediaPipe's NormalizedLandmarkList: ``.landmark[i].x / .y``."""
    return SimpleNamespace(landmark=[SimpleNamespace(x=float(x), y=float(y)) for x, y in points_xy])


def test_mesh_points_at_pixel_centres_land_on_whole_pixels() -> None:
    width, height = 640, 360
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, (width, height), size=(468, 2)).astype(np.float64)
    normalised = (pixels + 0.5) / (width, height)  # MediaPipe's fractions of the image edges
    landmarks = mesh_landmarks68(_mesh(normalised), width, height)
    np.testing.assert_allclose(landmarks, pixels[list(LANDMARKS68_FROM_MESH)], atol=1e-9)


def test_box_iou() -> None:
    a = np.array([0.0, 0.0, 10.0, 10.0])
    assert box_iou(a, a) == 1.0
    assert box_iou(a, a + 20) == 0.0
    assert box_iou(a, np.array([5.0, 0.0, 15.0, 10.0])) == pytest.approx(1 / 3)
