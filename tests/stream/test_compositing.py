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
    """The blend in numpy float32, rounded once: the reference for the uint8 one-warp one.

    The cartoon, its tones moved to the photo's near the crop's edges, is a drawing over white
    through the head mask: the photo takes the white's place."""
    import cv2

    from p2c.stream.compositing import resize_transform, tone_correction

    frame = image.copy()
    matrix = resize_transform(face.transform, face.mask.shape[0], cartoon.shape[0])
    toned = np.clip(cartoon.astype(np.float32) + tone_correction(image, matrix, cartoon, face.mask), 0, 255)
    mask, alpha = face.mask[..., None], feather_mask(face.mask)[..., None]
    drawn = np.maximum(toned - 255.0 * (1.0 - mask), 0.0)
    layers = np.concatenate([drawn * alpha, mask * alpha], axis=-1)
    box = footprint_box(matrix, cartoon.shape[0], frame.shape)
    assert box is not None
    x0, y0, x1, y1 = box
    shifted = matrix.copy()
    shifted[:, 2] += matrix[:, :2] @ np.array([x0, y0], dtype=np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(layers, shifted, (x1 - x0, y1 - y0), flags=flags, borderMode=cv2.BORDER_CONSTANT)
    base = frame[y0:y1, x0:x1].astype(np.float32)
    blended = base * (1.0 - warped[..., 3:]) + warped[..., :3]
    frame[y0:y1, x0:x1] = np.rint(blended).clip(0, 255).astype(np.uint8)
    return frame


def test_the_one_warp_blend_is_within_two_levels_of_the_float_formula(
    frame: np.ndarray, rng: np.random.Generator
) -> None:
    """Tolerance of the faster paste (premultiplied colour and an 8-bit weight in one warp, two
    OpenCV passes to blend): at most 2 of 255 anywhere, more than 1 on almost no pixel and any at
    all on under 1 %; pixels the mask leaves alone are byte-identical."""
    face = _face((300, 170), side=210, degrees=-8)
    cartoon = rng.integers(0, 256, size=(CROP_SIZE, CROP_SIZE, 3), dtype=np.uint8)
    got = paste_cartoons(frame, [face], [cartoon]).astype(int)
    expected = _float_paste(frame, face, cartoon).astype(int)
    difference = np.abs(got - expected)
    assert difference.max() <= 2 and (difference > 1).mean() < 1e-4 and (difference > 0).mean() < 0.01
    rows, cols = np.mgrid[0 : frame.shape[0], 0 : frame.shape[1]]
    outside = np.hypot(rows - 170, cols - 300) > 0.4 * 210 + 12  # the head disc, feathered: weight 0
    assert (expected[outside] == frame[outside]).all()
    np.testing.assert_array_equal(got[outside], frame[outside])


# ---------------------------------------------------------------------------------------------
# No halo, no seam (p2c.stream.paste_quality measures both; docs/face-path.md has the figures)

DARK = (30, 30, 30)
HAIR = (120, 90, 70)
PHOTO_SKIN = (150, 100, 80)
CARTOON_SKIN = (250, 230, 220)  # the generator's pale skin


def _drawn_on_white(drawing: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A cartoon as the generator draws one: through the soft head mask, white around it."""
    alpha = mask[..., None]
    return np.rint(drawing * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)


def _portrait(body: bool) -> tuple[np.ndarray, AlignedFace, np.ndarray]:
    """A dark 360 x 640 photo, a face whose crop is its middle 256 x 256 square at scale 1, and that
    face's cartoon: a round head of hair and, with ``body``, skin from the crop's row 150 down, on
    into the photo below the crop (the photo's skin darker than the cartoon's)."""
    import cv2

    rows, cols = np.mgrid[0:CROP_SIZE, 0:CROP_SIZE]
    person = np.hypot(rows - 110, cols - 128) < 80
    photo = np.empty((360, 640, 3), np.uint8)
    photo[...] = DARK
    drawing = np.empty((CROP_SIZE, CROP_SIZE, 3), np.float32)
    drawing[...] = HAIR
    if body:
        torso = (rows >= 150) & (np.abs(cols - 128) < 70)
        person |= torso
        drawing[rows >= 150] = CARTOON_SKIN
        frame_rows, frame_cols = np.mgrid[0:360, 0:640]
        photo[(frame_rows >= 150 + 52) & (np.abs(frame_cols - 320) < 70)] = PHOTO_SKIN
    face = _face((320, 180), side=CROP_SIZE)
    face.mask = cv2.GaussianBlur(person.astype(np.float32), (0, 0), 2.0)  # soft, as segmentation is
    return photo, face, _drawn_on_white(drawing, face.mask)


def test_a_cartoon_drawn_on_white_leaves_no_bright_ring_on_a_dark_background() -> None:
    """The paste before the fix blended the feathered mask's spill of white in: the measure found
    9.8 L* added outside the head and 61 % of that band brightened by more than 8 L*."""
    from p2c.stream.paste_quality import measure_paste

    photo, face, cartoon = _portrait(body=False)
    out = paste_cartoons(photo, [face], [cartoon])
    edges = measure_paste(photo, out, face.transform, face.mask)
    assert edges.halo_pixels > 1000
    assert edges.outside_excess_l < 1.5 and edges.glow_share == 0
    # Nowhere around the head is the photo brighter than the hair drawn there.
    rows, cols = np.mgrid[0:360, 0:640]
    ring = np.abs(np.hypot(rows - 180 + 18, cols - 320) - 80) < 8
    assert out[ring].max() <= max(HAIR)
    np.testing.assert_array_equal(out[180 - 18, 320], HAIR)  # the head itself is the cartoon's


def test_pale_cartoon_skin_turns_into_the_photos_darker_skin_without_a_step() -> None:
    """Across the crop's bottom edge the cartoon's pale skin meets the photo's darker skin (49
    CIE76 units apart). The paste before the fix turned from one to the other within its 12-pixel
    edge fade: a step of 31 units (0.63 of the gap) over 8 pixels, all of it at the crop's edge."""
    import cv2

    from p2c.stream.paste_quality import measure_paste

    photo, face, cartoon = _portrait(body=True)
    out = paste_cartoons(photo, [face], [cartoon])
    edges = measure_paste(photo, out, face.transform, face.mask)
    lab = cv2.cvtColor(np.array([[CARTOON_SKIN, PHOTO_SKIN]], np.float32) / 255.0, cv2.COLOR_RGB2Lab)[0]
    gap = float(np.linalg.norm(lab[0] - lab[1]))
    assert edges.seam_profiles > 100
    assert edges.handover_step < 0.35 * gap and edges.edge_step < 0.3 * gap
    # Far enough inside, the skin is the cartoon's own; at the crop's edge, the photo's.
    np.testing.assert_allclose(out[180 + 60, 320], CARTOON_SKIN, atol=2)
    assert np.abs(out[180 + 125, 300:340].astype(int) - PHOTO_SKIN).max() <= 3
