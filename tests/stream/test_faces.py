"""FaceAligner: every face, largest first, cropped and whitened the way photo2cartoon trained."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from p2c.stream.faces import AlignedFace, AlignerConfig, FaceAligner
from p2c.stream.image_io import read_image
from p2c.stream.landmarks import detect_landmarks


@pytest.fixture(scope="module")
def aligner() -> Iterator[FaceAligner]:
    with FaceAligner() as aligner:
        yield aligner


@pytest.fixture(scope="module")
def two_people(shared_photos: Path) -> tuple[np.ndarray, int]:
    """Astronaut (512 px tall) beside a photo shrunk to 300 px tall: two faces of different sizes.

    Returns the image and the column where the second photo starts."""
    from skimage import data

    big = data.astronaut()
    small = read_image(shared_photos / "photo_0003.jpg")
    small = cv2.resize(
        small, (round(small.shape[1] * 300 / small.shape[0]), 300), interpolation=cv2.INTER_AREA
    )
    canvas = np.full((512, 512 + 40 + small.shape[1], 3), 128, dtype=np.uint8)
    canvas[:, :512] = big
    canvas[150:450, 552:] = small
    return canvas, 552


def test_two_faces_are_found_largest_first(aligner: FaceAligner, two_people: tuple[np.ndarray, int]) -> None:
    image, split = two_people
    faces = aligner.align(image)
    assert len(faces) == 2
    centres = [face.landmarks.mean(axis=0) for face in faces]
    sizes = [np.ptp(face.landmarks, axis=0).prod() for face in faces]
    assert sizes[0] > sizes[1]
    # Which face is the larger depends on the photos; the order must follow the size either way.
    assert {bool(c[0] < split) for c in centres} == {True, False}
    assert all(isinstance(face, AlignedFace) and 0.0 < face.score <= 1.0 for face in faces)


def test_max_faces_keeps_the_largest(aligner: FaceAligner, two_people: tuple[np.ndarray, int]) -> None:
    image, _ = two_people
    everyone = aligner.align(image)
    only = aligner.align(image, max_faces=1)
    assert len(only) == 1
    np.testing.assert_allclose(only[0].landmarks, everyone[0].landmarks)


def test_blank_image_has_no_face(aligner: FaceAligner) -> None:
    assert aligner.align(np.full((480, 640, 3), 200, dtype=np.uint8)) == []


def test_align_landmarks_reproduces_align(aligner: FaceAligner, astronaut: np.ndarray) -> None:
    (found,) = aligner.align(astronaut)
    (again,) = aligner.align_landmarks(astronaut, [found.landmarks])
    np.testing.assert_allclose(again.transform, found.transform)
    np.testing.assert_array_equal(again.crop, found.crop)
    np.testing.assert_array_equal(again.mask, found.mask)


def test_mask_is_soft_and_whitening_makes_the_background_white(
    aligner: FaceAligner, astronaut: np.ndarray
) -> None:
    face = aligner.align(astronaut)[0]
    assert face.mask.shape == (256, 256) and face.mask.dtype == np.float32
    assert face.mask.min() >= 0.0 and face.mask.max() <= 1.0
    background = face.mask < 0.02
    assert background.mean() > 0.1, "the astronaut's crop has background around the head"
    assert face.crop[background].min() >= 249
    # The face itself (between the eyes, in the crop's middle) keeps its colours.
    assert face.mask[120:140, 118:138].min() > 0.9
    assert face.crop[120:140, 118:138].mean() < 230


def test_without_segmentation_nothing_is_whitened(astronaut: np.ndarray) -> None:
    with FaceAligner(AlignerConfig(segment=False)) as aligner:
        face = aligner.align(astronaut)[0]
    assert (face.mask == 1.0).all()
    # The astronaut's background is a grey wall, not white.
    assert face.crop[:10, :10].mean() < 240


def test_detect_landmarks_returns_68_points_per_face(astronaut: np.ndarray) -> None:
    (landmarks,) = detect_landmarks(astronaut)
    assert landmarks.shape == (68, 2)
    # The astronaut's face is roughly at x 170-270, y 90-220 of the 512x512 image.
    left, top = landmarks.min(axis=0)
    right, bottom = landmarks.max(axis=0)
    assert 150 < left < right < 290 and 60 < top < bottom < 240


@pytest.mark.parametrize(
    ("field", "value"), [("crop_size", 8), ("max_faces", 0), ("min_detection_confidence", 1.5)]
)
def test_config_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        AlignerConfig(**{field: value})  # type: ignore[arg-type]


def test_closed_aligner_refuses_work(astronaut: np.ndarray) -> None:
    aligner = FaceAligner()
    aligner.close()
    aligner.close()
    with pytest.raises(RuntimeError, match="closed"):
        aligner.align(astronaut)
