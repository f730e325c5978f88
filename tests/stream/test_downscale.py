"""Shrinking a region to a working size: what area interpolation gives, where it should be, at any scale."""

import cv2
import numpy as np
import pytest

from p2c.stream.alignment import crop_transform, invert_transform, warp_to_crop
from p2c.stream.downscale import box_factor, shrink_region


def _square(x0: float, y0: float, side: float, out: int) -> np.ndarray:
    """Region pixel -> image pixel of a ``side`` square at (x0, y0) shown at ``out`` pixels."""
    scale = side / out
    return np.array([[scale, 0.0, x0 + 0.5 * scale - 0.5], [0.0, scale, y0 + 0.5 * scale - 0.5]])


def _centroid(image: np.ndarray) -> np.ndarray:
    rows, cols = np.mgrid[: image.shape[0], : image.shape[1]]
    weight = image.astype(np.float64)
    return np.array([(cols * weight).sum(), (rows * weight).sum()]) / weight.sum()


def test_box_factor_leaves_the_bilinear_step_a_shrink_by_one_to_two() -> None:
    assert [box_factor(r) for r in (0.5, 1.0, 1.99, 2.0, 3.9, 4.0, 8.5)] == [1, 1, 1, 2, 2, 4, 8]


@pytest.mark.parametrize("side", [300, 464, 539, 700])
def test_a_square_shrinks_like_area_interpolation(astronaut: np.ndarray, side: int) -> None:
    image = cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_LINEAR)
    out = 256
    area = cv2.resize(image[100 : 100 + side, 50 : 50 + side], (out, out), interpolation=cv2.INTER_AREA)
    shrunk = shrink_region(image, _square(50, 100, side, out), (out, out))
    assert shrunk.shape == (out, out, 3)
    assert np.abs(shrunk.astype(int) - area).mean() < 2.0


@pytest.mark.parametrize("side", [260, 539, 700, 1000])
def test_a_shrunk_region_keeps_a_blob_where_it_was(side: int) -> None:
    image = np.zeros((1200, 1400), np.float32)
    cv2.circle(image, (701, 603), 9, 1.0, -1)
    image = cv2.GaussianBlur(image, (0, 0), 3)
    to_image = _square(701.3 - side / 2, 603.7 - side / 2, side, 256)
    shrunk = shrink_region(image, to_image, (256, 256))
    found = to_image[:, :2] @ _centroid(shrunk) + to_image[:, 2]
    assert found == pytest.approx(_centroid(image), abs=0.1)


def test_outside_the_image_is_the_border_value(astronaut: np.ndarray) -> None:
    shrunk = shrink_region(astronaut, _square(-256, -256, 1024, 256), (256, 256), border=(255, 0, 0))
    # The photo is region pixels 64 to 192 (its 512 pixels at a quarter): red all around it.
    for outside in (shrunk[:62], shrunk[194:], shrunk[:, :62], shrunk[:, 194:]):
        assert (outside == (255, 0, 0)).all()
    assert np.abs(shrunk[66:190, 66:190].astype(int) - (255, 0, 0)).sum(axis=2).min() > 0


def test_a_large_faces_crop_is_close_to_the_native_warp(astronaut: np.ndarray) -> None:
    """A turned face three times the crop's size: what the still path's warp at native size then
    area shrink gives, at a fraction of the reads."""
    image = cv2.resize(astronaut, (1536, 1536), interpolation=cv2.INTER_CUBIC)
    landmarks = np.array([[x, y] for x in np.linspace(480, 960, 17) for y in (300, 780, 800, 900)])[:68]
    turn = cv2.getRotationMatrix2D((720.0, 600.0), 12.0, 1.0)
    matrix = crop_transform(landmarks @ turn[:, :2].T + turn[:, 2], 256)
    assert np.sqrt(abs(np.linalg.det(matrix[:, :2]))) < 0.3  # the native path: warp at 900 px, shrink
    native = warp_to_crop(image, matrix, 256)
    bounded = shrink_region(image, invert_transform(matrix), (256, 256), border=(255, 255, 255))
    difference = np.abs(native.astype(int) - bounded)
    assert difference.mean() < 1.5 and np.percentile(difference, 99) <= 16  # the talking clips: 0.3, 4
