"""Pasting cartoons back: the face changes, nothing else does, borders are fine."""

from __future__ import annotations

import numpy as np
import pytest

from p2c.stream.alignment import CROP_SIZE
from p2c.stream.compositing import (
    available_compositors,
    cartoon_on_white,
    create_compositor,
    feather_mask,
    footprint_box,
    paste_cartoons,
)
from p2c.stream.faces import AlignedFace

BLUE = np.array([20, 40, 230], dtype=np.uint8)


def _face(
    centre: tuple[float, float], side: float, degrees: float = 0.0, size: int = CROP_SIZE
) -> AlignedFace:
    """A face whose crop is a ``side``-pixel square around ``centre``, turned by ``degrees``;
    its head mask is a disc filling most of the crop."""
    angle = np.deg2rad(degrees)
    scale = size / side
    rotation = scale * np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    transform = np.empty((2, 3))
    transform[:, :2] = rotation
    transform[:, 2] = (size - 1) / 2 - rotation @ np.asarray(centre)
    rows, cols = np.mgrid[0:size, 0:size]
    mask = ((rows - size / 2) ** 2 + (cols - size / 2) ** 2 < (0.4 * size) ** 2).astype(np.float32)
    crop = np.full((size, size, 3), 255, dtype=np.uint8)
    return AlignedFace(landmarks=np.zeros((68, 2)), transform=transform, crop=crop, mask=mask, score=1.0)


def _cartoon(size: int = CROP_SIZE) -> np.ndarray:
    return np.broadcast_to(BLUE, (size, size, 3)).copy()


@pytest.fixture
def frame(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=(360, 640, 3), dtype=np.uint8)


def test_face_changes_and_everything_far_away_stays_byte_identical(frame: np.ndarray) -> None:
    face = _face((320, 180), side=160, degrees=15)
    out = paste_cartoons(frame, [face], [_cartoon()])
    assert out.shape == frame.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(
        out[180 - 5 : 180 + 5, 320 - 5 : 320 + 5], np.broadcast_to(BLUE, (10, 10, 3))
    )
    # Further than the crop's half-diagonal from the centre, nothing may change.
    rows, cols = np.mgrid[0:360, 0:640]
    far = np.hypot(rows - 180, cols - 320) > 160 / np.sqrt(2) + 2
    np.testing.assert_array_equal(out[far], frame[far])
    # The square crop's edge never shows: the ring just inside it is still the photo.
    ring = (np.hypot(rows - 180, cols - 320) > 78) & (np.hypot(rows - 180, cols - 320) < 80)
    np.testing.assert_array_equal(out[ring], frame[ring])


def test_input_frame_is_not_modified(frame: np.ndarray) -> None:
    before = frame.copy()
    paste_cartoons(frame, [_face((320, 180), side=160)], [_cartoon()])
    np.testing.assert_array_equal(frame, before)


def test_face_half_outside_the_frame(frame: np.ndarray) -> None:
    out = paste_cartoons(frame, [_face((10, 350), side=200)], [_cartoon()])
    np.testing.assert_array_equal(out[345:355, 5:15], np.broadcast_to(BLUE, (10, 10, 3)))
    np.testing.assert_array_equal(out[:, 200:], frame[:, 200:])


def test_face_entirely_outside_the_frame_changes_nothing(frame: np.ndarray) -> None:
    out = paste_cartoons(frame, [_face((-500, -500), side=100)], [_cartoon()])
    np.testing.assert_array_equal(out, frame)


def test_several_faces_and_small_cartoons(frame: np.ndarray) -> None:
    faces = [_face((150, 150), side=180), _face((500, 200), side=40)]
    # A 64x64 cartoon (as a tiny test generator makes) for a 256x256 crop is scaled to fit.
    out = paste_cartoons(frame, faces, [_cartoon(64), _cartoon(256)])
    np.testing.assert_array_equal(out[145:155, 145:155], np.broadcast_to(BLUE, (10, 10, 3)))
    np.testing.assert_array_equal(out[198:202, 498:502], np.broadcast_to(BLUE, (4, 4, 3)))
    np.testing.assert_array_equal(out[:, 300:460], frame[:, 300:460])


def test_no_faces_returns_an_equal_copy(frame: np.ndarray) -> None:
    out = paste_cartoons(frame, [], [])
    np.testing.assert_array_equal(out, frame)
    assert out is not frame


def test_faces_and_cartoons_must_pair_up(frame: np.ndarray) -> None:
    with pytest.raises(ValueError, match="1 faces but 2 cartoons"):
        paste_cartoons(frame, [_face((100, 100), 50)], [_cartoon(), _cartoon()])


def test_feathered_mask_is_zero_at_the_crop_edge_and_one_inside() -> None:
    alpha = feather_mask(np.ones((256, 256), dtype=np.float32))
    assert alpha[0].max() == 0 and alpha[:, -1].max() == 0
    assert alpha[100:156, 100:156].min() > 0.99
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0


def test_footprint_box_is_clipped_to_the_frame() -> None:
    face = _face((10, 350), side=200)
    x0, y0, x1, y1 = footprint_box(face.transform, CROP_SIZE, (360, 640, 3))  # type: ignore[misc]
    assert (x0, y0) == (0, 250) and 110 <= x1 <= 112 and y1 == 360


def test_cartoon_on_white() -> None:
    cartoon = np.full((4, 4, 3), 100, dtype=np.uint8)
    mask = np.array([[1.0, 0.0, 0.5, 0.25]] * 4, dtype=np.float32)
    out = cartoon_on_white(cartoon, mask)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, :, 0], [100, 255, 177, 216])


def test_compositor_registry() -> None:
    assert {"cpu", "torch"} <= set(available_compositors())
    with pytest.raises(ValueError, match="cpu"):
        create_compositor("nope")
    compositor = create_compositor("cpu")
    frame = np.zeros((100, 100, 3), dtype=np.uint8)
    assert compositor.name == "cpu"
    assert compositor.paste(frame, [], []).shape == frame.shape
    compositor.close()


def _float_paste(image: np.ndarray, face: AlignedFace, cartoon: np.ndarray) -> np.ndarray:
    """The blend as it was first written (numpy float32, rounded): the reference for the one-pass one."""
    import cv2

    from p2c.stream.compositing import resize_transform

    frame = image.copy()
    alpha = feather_mask(face.mask)
    matrix = resize_transform(face.transform, face.mask.shape[0], cartoon.shape[0])
    box = footprint_box(matrix, cartoon.shape[0], frame.shape)
    assert box is not None
    x0, y0, x1, y1 = box
    shifted = matrix.copy()
    shifted[:, 2] += matrix[:, :2] @ np.array([x0, y0], dtype=np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(
        cartoon, shifted, (x1 - x0, y1 - y0), flags=flags, borderMode=cv2.BORDER_REPLICATE
    )
    weight = cv2.warpAffine(alpha, shifted, (x1 - x0, y1 - y0), flags=flags, borderMode=cv2.BORDER_CONSTANT)
    base = frame[y0:y1, x0:x1].astype(np.float32)
    blended = base + weight[..., None] * (warped.astype(np.float32) - base)
    frame[y0:y1, x0:x1] = np.rint(blended).clip(0, 255).astype(np.uint8)
    return frame


def test_the_one_pass_blend_is_within_one_level_of_the_float_formula(
    frame: np.ndarray, rng: np.random.Generator
) -> None:
    """Tolerance of the faster paste (cartoon and an 8-bit weight in one warp, cv2.blendLinear): at
    most 1 of 255 anywhere, and on almost no pixel at all; pixels the mask leaves alone are
    byte-identical."""
    face = _face((300, 170), side=210, degrees=-8)
    cartoon = rng.integers(0, 256, size=(CROP_SIZE, CROP_SIZE, 3), dtype=np.uint8)
    got = paste_cartoons(frame, [face], [cartoon]).astype(int)
    expected = _float_paste(frame, face, cartoon).astype(int)
    difference = np.abs(got - expected)
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01
    rows, cols = np.mgrid[0 : frame.shape[0], 0 : frame.shape[1]]
    outside = np.hypot(rows - 170, cols - 300) > 0.4 * 210 + 12  # the head disc, feathered: weight 0
    assert (expected[outside] == frame[outside]).all()
    np.testing.assert_array_equal(got[outside], frame[outside])
