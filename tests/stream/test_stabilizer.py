"""The crop follows the face's own motion: sub-pixel shifts found, a still face keeps its crop."""

import cv2
import numpy as np
import pytest

from p2c.stream.stabilizer import FlowStabilizer, StabilizerConfig, face_motion


def _shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    move = np.float32([[1, 0, dx], [0, 1, dy]])
    size = image.shape[1::-1]
    return cv2.warpAffine(image, move, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


@pytest.fixture
def face_gray(astronaut: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)


def test_face_motion_finds_a_sub_pixel_shift(face_gray: np.ndarray) -> None:
    box = np.array([150.0, 60.0, 330.0, 260.0])  # the astronaut's face
    motion = face_motion(face_gray, _shifted(face_gray, 1.6, -0.7), box, StabilizerConfig())
    assert motion is not None
    assert np.allclose(motion[:, :2], np.eye(2), atol=0.01)
    assert motion[:, 2] == pytest.approx([1.6, -0.7], abs=0.1)


def test_face_motion_on_colour_frames_of_a_large_face(astronaut: np.ndarray) -> None:
    """What the tracker hands it: RGB frames, the face three times as large (read only around the
    face, shrunk to the working size); the shift and a slight turn found in frame pixels."""
    large = cv2.resize(astronaut, (1536, 1536), interpolation=cv2.INTER_CUBIC)
    box = np.array([450.0, 180.0, 990.0, 780.0])
    turn = cv2.getRotationMatrix2D((720.0, 480.0), 1.0, 1.0)
    turn[:, 2] += (2.4, -1.3)
    moved = cv2.warpAffine(large, turn, (1536, 1536), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    motion = face_motion(large, moved, box, StabilizerConfig())
    assert motion is not None
    points = np.array([[500.0, 250.0], [940.0, 250.0], [720.0, 740.0]])  # across the face
    found, truth = points @ motion[:, :2].T + motion[:, 2], points @ turn[:, :2].T + turn[:, 2]
    assert found == pytest.approx(truth, abs=0.3)


def test_face_motion_gives_up_on_a_blank_region() -> None:
    blank = np.full((200, 200), 128, np.uint8)
    assert face_motion(blank, blank, np.array([50.0, 50.0, 150.0, 150.0]), StabilizerConfig()) is None


def test_the_crop_moves_with_the_face_and_closes_part_of_the_gap() -> None:
    stabilizer = FlowStabilizer(StabilizerConfig(gain=0.25, snap_fraction=0.1))
    carried = np.array([[100.0, 100.0], [140.0, 100.0]])
    shift = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]])  # the face moved 2 px right
    fresh = carried + np.array([2.0 + 4.0, 0.0])  # landmarks that overshoot by 4 px (jitter)
    out = stabilizer.update(carried, fresh, shift, face_size=100.0)
    assert out[:, 0] == pytest.approx(carried[:, 0] + 2.0 + 0.25 * 4.0)
    # A still picture keeps the crop exactly, whatever the landmarks do.
    still = stabilizer.update(carried, fresh, np.hstack([np.eye(2), np.zeros((2, 1))]), face_size=100.0)
    assert np.array_equal(still, carried)


def test_a_large_gap_or_no_flow_snaps_to_the_landmarks() -> None:
    stabilizer = FlowStabilizer(StabilizerConfig(snap_fraction=0.05))
    carried = np.array([[100.0, 100.0], [140.0, 100.0]])
    fresh = carried + 30.0  # a fast turn: 30 px on a 100 px face
    shift = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    assert np.array_equal(stabilizer.update(carried, fresh, shift, face_size=100.0), fresh)
    assert np.array_equal(stabilizer.update(carried, fresh, None, face_size=100.0), fresh)
    assert np.array_equal(stabilizer.update(None, fresh, shift, face_size=100.0), fresh)


def test_stabilizer_config_is_checked() -> None:
    with pytest.raises(ValueError, match="gain"):
        StabilizerConfig(gain=0)
