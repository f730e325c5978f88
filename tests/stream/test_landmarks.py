"""The face path's pure parts: mesh parsing (one pixel convention), box IoU, detection tiles."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from p2c.stream.alignment import LANDMARKS68_FROM_MESH
from p2c.stream.landmarks import box_iou, face_region, mesh_landmarks68, tile_grid, tracking_region


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


@pytest.mark.parametrize("face", [100, 250, 400, 600])
def test_a_tracking_mesh_sees_the_static_meshs_square_at_a_fixed_size(
    astronaut: np.ndarray, face: int
) -> None:
    """The same square as the static mesh's, at 512 pixels at most whatever the face's size (a small
    face's exactly as it is), black outside the photo, and its matrix back to the photo."""
    image = cv2.resize(astronaut, (1536, 1536), interpolation=cv2.INTER_LINEAR)  # a near, large face
    box = np.array([768.0 - face / 2, 700.0 - face / 2, 768.0 + face / 2, 700.0 + face / 2])
    region, to_image = tracking_region(image, box)
    static, static_to_image = face_region(image, box)
    side = min(static.shape[0], 512)
    assert region.shape == (side, side, 3)
    # Both matrices put the square in the same place: their corners agree within a pixel.
    corners = np.array([[-0.5, -0.5, 1.0], [side - 0.5, side - 0.5, 1.0]])
    static_side = static.shape[0]
    static_corners = np.array([[-0.5, -0.5, 1.0], [static_side - 0.5, static_side - 0.5, 1.0]])
    assert corners @ to_image.T == pytest.approx(static_corners @ static_to_image.T, abs=1.0)
    if to_image[0, 0] == 1.0:
        assert np.array_equal(region, static)  # a small face: the same pixels
    else:
        native = round(to_image[0, 0] * side)  # the square in photo pixels, area-shrunk
        x0, y0 = (round(v) for v in to_image[:, 2] - 0.5 * to_image[0, 0] + 0.5)
        shrunk = cv2.resize(
            image[y0 : y0 + native, x0 : x0 + native], (side, side), interpolation=cv2.INTER_AREA
        )
        assert np.abs(region.astype(int) - shrunk).mean() < 2.0
    edge, _ = tracking_region(image, np.array([-100.0, -100.0, 100.0, 100.0]))
    assert (edge[:20, :20] == 0).all()  # outside the photo
