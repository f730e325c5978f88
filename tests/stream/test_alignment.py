"""photo2cartoon's alignment on real photos: the crop follows the face however the photo is turned."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from p2c.stream import alignment
from p2c.stream.faces import AlignerConfig, FaceAligner
from p2c.stream.image_io import read_image
from p2c.stream.landmarks import LandmarkDetector

# Photos of trainA with one clear face (portrait and landscape, large and small files).
PHOTOS = ("photo_0002.jpg", "photo_0003.jpg", "photo_0005.jpg", "photo_0100.jpg")
# (degrees, scale, extra margin in pixels): rotations by +-20 degrees, shrinking, enlarging, shifts.
DISTORTIONS = (
    (20, 1.0, (30, 10)),
    (-20, 1.0, (5, 40)),
    (0, 0.7, (17, 3)),
    (0, 1.4, (0, 25)),
    (-20, 1.4, (40, 0)),
)


@pytest.fixture(scope="module")
def detector() -> Iterator[LandmarkDetector]:
    with LandmarkDetector() as detector:
        yield detector


@pytest.fixture(scope="module")
def aligner() -> Iterator[FaceAligner]:
    with FaceAligner() as aligner:
        yield aligner


@pytest.fixture(params=("astronaut", *PHOTOS))
def photo(request: pytest.FixtureRequest, shared_photos: Path, astronaut: np.ndarray) -> np.ndarray:
    if request.param == "astronaut":
        return astronaut
    return read_image(shared_photos / request.param)


def _distort(image: np.ndarray, degrees: float, scale: float, margin: tuple[int, int]) -> np.ndarray:
    """Rotate and scale about the centre, keep the whole photo, add a grey margin top-left."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, scale)
    corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], dtype=np.float64)
    moved = alignment.transform_points(matrix, corners)
    matrix[:, 2] += np.asarray(margin) - moved.min(axis=0)
    size = np.ceil(moved.max(axis=0) - moved.min(axis=0) + 2 * np.asarray(margin)).astype(int)
    return cv2.warpAffine(image, matrix, (int(size[0]), int(size[1])), borderValue=(90, 90, 90))


def _eyes_in_crop(detector: LandmarkDetector, image: np.ndarray) -> np.ndarray:
    faces = detector.detect(image)
    assert faces, "no face found"
    landmarks = faces[0].landmarks
    return alignment.transform_points(alignment.crop_transform(landmarks), alignment.eye_centres(landmarks))


def test_eyes_land_on_the_same_crop_pixels_however_the_photo_is_turned(
    detector: LandmarkDetector, photo: np.ndarray
) -> None:
    reference = _eyes_in_crop(detector, photo)
    for degrees, scale, margin in DISTORTIONS:
        eyes = _eyes_in_crop(detector, _distort(photo, degrees, scale, margin))
        error = np.abs(eyes - reference).max()
        assert error < 3.0, f"rotated {degrees} deg, scaled {scale}: eyes moved {error:.2f} px in the crop"


def test_eyes_are_level_and_where_photo2cartoon_puts_them(
    detector: LandmarkDetector, photo: np.ndarray
) -> None:
    left, right = _eyes_in_crop(detector, _distort(photo, 20, 1.0, (0, 0)))
    assert abs(left[1] - right[1]) < 1.5
    # photo2cartoon's box puts the eyes a little below the middle, left of and right of centre.
    assert 100 < left[1] < 140
    assert left[0] < 128 < right[0]


def test_crop_is_256_square_uint8_with_white_corners(aligner: FaceAligner, photo: np.ndarray) -> None:
    faces = aligner.align(photo)
    assert faces
    crop = faces[0].crop
    assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8
    # Top corners are above the head: background, whitened.
    assert crop[:8, :8].min() >= 250 and crop[:8, -8:].min() >= 250


def test_outside_the_photo_is_white(detector: LandmarkDetector, astronaut: np.ndarray) -> None:
    landmarks = detector.detect(astronaut)[0].landmarks
    face_left = int(landmarks[:, 0].min())
    cut = np.ascontiguousarray(astronaut[:, face_left - 5 :])  # the photo ends just left of the face
    with FaceAligner(AlignerConfig(segment=False)) as aligner:
        face = aligner.align(cut)[0]
    # Crop pixels that come from left of the photo's edge are pure white even without segmentation.
    rows, cols = np.mgrid[0:256, 0:256]
    pixels = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(np.float64)
    source_x = alignment.transform_points(alignment.invert_transform(face.transform), pixels)[:, 0]
    outside = (source_x < -1.0).reshape(256, 256)
    assert outside.sum() > 256 * 10
    assert (face.crop[outside] == 255).all()
    assert (face.crop[~outside] < 250).any()
    assert face.mask.min() == 1.0


def test_crops_frame_faces_like_the_cartoon_training_set(
    detector: LandmarkDetector, shared_photos: Path, shared_cartoons: Path
) -> None:
    """The generator learnt from photo2cartoon's 256x256 framing: on average our crops must put
    the eyes and the landmark box where the released cartoons (same framing, 512x512) have them."""

    def statistics(paths: list[Path], in_crop: bool) -> np.ndarray:
        rows = []
        for path in paths:
            image = read_image(path)
            faces = detector.detect(image)
            if not faces:
                continue
            landmarks = faces[0].landmarks
            if in_crop:
                landmarks = alignment.transform_points(alignment.crop_transform(landmarks), landmarks)
            else:
                landmarks = landmarks * alignment.CROP_SIZE / image.shape[0]
            eyes = alignment.eye_centres(landmarks)
            rows.append([eyes[:, 1].mean(), *np.ptp(landmarks, axis=0)])
        assert len(rows) >= len(paths) // 2
        return np.mean(rows, axis=0)

    photos = statistics(sorted(shared_photos.iterdir())[:20], in_crop=True)
    cartoons = statistics(sorted(shared_cartoons.iterdir())[:20], in_crop=False)
    # eye height, eye distance, landmark box width and height, in crop pixels
    print(photos, cartoons)
    np.testing.assert_allclose(photos, cartoons, atol=8.0)


def test_whitening_gives_photo2cartoons_bytes_exactly() -> None:
    """The in-place whitening is photo2cartoon's expression, byte for byte (training crops and
    video crops must not part), on every mask value and pixel value."""
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    mask = rng.random((64, 64), dtype=np.float32)
    mask[:8] = 0.0
    mask[-8:] = 1.0
    alpha = mask[..., None]
    expected = np.clip(crop.astype(np.float32) * alpha + 255.0 * (1.0 - alpha), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(alignment.whiten_background(crop, mask), expected)


@pytest.mark.parametrize("scale", [1.2, 0.6, 0.5])
def test_the_bounded_crop_of_a_face_not_shrunk_twofold_is_the_crop(
    astronaut: np.ndarray, scale: float
) -> None:
    turn = cv2.getRotationMatrix2D((256.0, 230.0), 8.0, scale)
    turn[:, 2] += 128.0 - turn @ np.array([256.0, 230.0, 1.0])
    assert np.array_equal(
        alignment.warp_to_crop_bounded(astronaut, turn), alignment.warp_to_crop(astronaut, turn)
    )


def test_the_bounded_crop_of_a_large_face_is_within_a_level_of_the_crop(astronaut: np.ndarray) -> None:
    large = cv2.resize(astronaut, (1536, 1536), interpolation=cv2.INTER_CUBIC)
    turn = cv2.getRotationMatrix2D((720.0, 560.0), 8.0, 0.35)
    turn[:, 2] += 128.0 - turn @ np.array([720.0, 560.0, 1.0])
    exact, bounded = alignment.warp_to_crop(large, turn), alignment.warp_to_crop_bounded(large, turn)
    assert bounded.shape == exact.shape == (256, 256, 3)
    assert np.abs(bounded.astype(int) - exact).mean() < 1.0
