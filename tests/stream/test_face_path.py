"""One face path: stills, video and training data cut the same crop; only human faces."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from p2c.stream.commands import image as image_command
from p2c.stream.faces import AlignerConfig, FaceAligner
from p2c.stream.image_io import read_image, write_image
from p2c.stream.landmarks import LandmarkDetector
from p2c.stream.sources import VideoFileSource
from p2c.stream.tracking import FaceTracker, TrackerConfig, TrackingStage
from p2c.training.preparation import PrepareConfig, prepare_dataset

PHOTO_WITHOUT_FACE = "photo_0539.jpg"  # the one trainA photo in which no face was ever found


@pytest.fixture(scope="module")
def detector() -> Iterator[LandmarkDetector]:
    with LandmarkDetector() as detector:
        yield detector


@pytest.fixture(scope="module")
def chelsea() -> np.ndarray:
    from skimage import data

    return np.asarray(data.chelsea())


def _write_lossless_clip(path: Path, image: np.ndarray) -> Path:
    """One frame, FFV1 (lossless), so the clip decodes to exactly ``image``."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = image.shape[1], image.shape[0], "bgr0"
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _clip_crop(clip: Path) -> np.ndarray:
    """The video pipeline's tracker and aligner (as ``p2c-video`` builds them) on the clip's first frame."""
    stage = TrackingStage(FaceTracker(TrackerConfig(max_faces=1)), FaceAligner(AlignerConfig(max_faces=1)))
    try:
        with VideoFileSource(clip) as source:
            frames = stage.process(list(source))
    finally:
        stage.close()
    assert len(frames) == 1 and len(frames[0].faces) == 1
    return frames[0].faces[0].crop


@pytest.fixture(params=["astronaut", "photo_0003.jpg"])
def portrait(request: pytest.FixtureRequest, astronaut: np.ndarray) -> np.ndarray:
    if request.param == "astronaut":
        return astronaut
    shared = request.getfixturevalue("shared_photos")
    return read_image(shared / request.param)


def test_a_still_a_one_frame_clip_and_training_data_give_identical_crops(
    portrait: np.ndarray, tmp_path: Path
) -> None:
    photo = tmp_path / "raw" / "portrait.png"
    photo.parent.mkdir()
    write_image(photo, portrait)

    assert image_command.main([str(photo), str(tmp_path / "still.png"), "--crop-only"]) == 0
    still = read_image(tmp_path / "still.png")

    clip = _write_lossless_clip(tmp_path / "portrait.mkv", portrait)
    video = _clip_crop(clip)

    prepare_dataset(PrepareConfig(raw_dir=str(photo.parent), out_dir=str(tmp_path / "data")), progress=False)
    training = read_image(tmp_path / "data" / "trainA" / "portrait.png")

    np.testing.assert_array_equal(video, still)
    np.testing.assert_array_equal(training, still)


def test_a_cat_is_no_face(tmp_path: Path, chelsea: np.ndarray, capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "chelsea.png"
    write_image(photo, chelsea)
    code = image_command.main([str(photo), str(tmp_path / "out.png"), "--crop-only"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no face" in err[0], err
    assert not (tmp_path / "out.png").exists()

    tracker = FaceTracker(TrackerConfig(max_faces=2))
    try:
        assert all(tracker.update(chelsea, i / 25) == [] for i in range(5))
    finally:
        tracker.close()


# Chelsea turned and shrunk so that, with both detectors' thresholds lowered to 0.2, MediaPipe fits a
# human face mesh to the cat: (scale, mirrored, degrees) found by a sweep over 126 such variants.
PROVOKED = [(0.4, True, -12), (0.5, True, -12), (0.7, True, 12), (1.4, True, -12)]


def _variant(image: np.ndarray, scale: float, mirrored: bool, degrees: float) -> np.ndarray:
    out = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    if mirrored:
        out = out[:, ::-1]
    matrix = cv2.getRotationMatrix2D((out.shape[1] / 2, out.shape[0] / 2), degrees, 1.0)
    return cv2.warpAffine(
        np.ascontiguousarray(out), matrix, (out.shape[1], out.shape[0]), borderMode=cv2.BORDER_REFLECT
    )


def test_a_face_mesh_forced_onto_a_cat_fails_the_human_check(chelsea: np.ndarray) -> None:
    variants = [_variant(chelsea, *params) for params in PROVOKED]
    with LandmarkDetector(min_detection_confidence=0.2, human_only=False) as anything:
        assert sum(bool(anything.detect(image)) for image in variants) >= 2
    with LandmarkDetector(min_detection_confidence=0.2) as human:
        assert all(human.detect(image) == [] for image in variants)


@pytest.mark.slow
def test_every_shared_portrait_with_a_face_keeps_it(shared_photos: Path, detector: LandmarkDetector) -> None:
    """The human check must not cost a portrait: all 586 photos but the faceless one have a face."""
    missing = []
    for path in sorted(shared_photos.iterdir()):
        if not detector.detect(read_image(path), max_faces=1):
            missing.append(path.name)
    assert set(missing) <= {PHOTO_WITHOUT_FACE}, missing
