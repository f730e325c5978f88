"""The face path's pure parts: mesh parsing (one pixel convention), box IoU, detection tiles."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from p2c.stream.alignment import LANDMARKS68_FROM_MESH
from p2c.stream.landmarks import box_iou, mesh_landmarks68, tile_grid


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


@pytest.mark.parametrize("shape", [(512, 512), (720, 1280), (1080, 1080)])
def test_small_images_need_no_tiles(shape: tuple[int, int]) -> None:
    assert tile_grid(*shape) == []


@pytest.mark.parametrize("shape", [(2160, 3840), (3840, 2160), (1080, 1920), (4320, 7680), (1600, 3000)])
def test_tiles_hold_every_face_too_small_for_the_whole_image_pass(shape: tuple[int, int]) -> None:
    height, width = shape
    tiles = tile_grid(height, width)
    sides = {max(x1 - x0, y1 - y0) for x0, y0, x1, y1 in tiles}
    assert len(sides) == 1
    side = sides.pop()
    # The full-range detector finds faces of a tenth of its input: tiles of 4K find 100-pixel faces.
    assert side <= max(960, np.ceil(max(shape) / 4))
    assert all(0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height for x0, y0, x1, y1 in tiles)
    # Any face up to 0.4 tile sides lies whole inside a tile (the whole-image pass finds larger ones,
    # from a tenth of the long side up); check every position on a 16-pixel grid.
    face = int(0.4 * side)
    for top in range(0, height - face + 1, 16):
        for left in range(0, width - face + 1, 16):
            right, bottom = left + face, top + face
            inside = [x0 <= left and right <= x1 and y0 <= top and bottom <= y1 for x0, y0, x1, y1 in tiles]
            assert any(inside), (left, top)
    assert 0.4 * side >= 0.1 * max(shape)
