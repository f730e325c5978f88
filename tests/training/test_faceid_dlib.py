"""The PyTorch port of dlib's face descriptor against dlib itself.

dlib is not a p2c dependency, only a dev one (``dlib-bin``, a prebuilt wheel, in ``.[dev]``).
"""

from __future__ import annotations

from pathlib import Path

import dlib
import numpy as np
import pytest
import torch

from p2c.training.dlib_resnet import DLIB_CHIP_SIZE, DlibResNet, load_dlib_resnet
from p2c.training.faceid import DLIB_FACE_BOX, FaceIdNetwork, default_faceid_path

_PHOTOS = ("photo_0001.jpg", "photo_0002.jpg", "photo_0008.jpg", "photo_0010.jpg")


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return default_faceid_path().parent


@pytest.fixture(scope="module")
def port(model_dir: Path) -> DlibResNet:
    return load_dlib_resnet(model_dir / "dlib_face_recognition_resnet_model_v1.dat")


@pytest.fixture(scope="module")
def faces(model_dir: Path, shared_photos: Path, astronaut: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, dlib's 150x150 chip of its largest face) for the astronaut and a few shared photos."""
    import cv2

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(model_dir / "shape_predictor_5_face_landmarks.dat"))
    images = [astronaut]
    for name in _PHOTOS:
        images.append(cv2.cvtColor(cv2.imread(str(shared_photos / name)), cv2.COLOR_BGR2RGB))
    result = []
    for image in images:
        found = max(detector(image, 1), key=lambda box: box.area())  # the astronaut's badge is a "face"
        shape = predictor(image, found)
        result.append((image, dlib.get_face_chip(image, shape, size=DLIB_CHIP_SIZE, padding=0.25)))
    return result


@pytest.fixture(scope="module")
def dlib_descriptors(model_dir: Path, faces) -> np.ndarray:
    recogniser = dlib.face_recognition_model_v1(str(model_dir / "dlib_face_recognition_resnet_model_v1.dat"))
    return np.array([np.array(recogniser.compute_face_descriptor(chip)) for _, chip in faces])


def test_port_reproduces_dlib_descriptors_on_the_same_chips(
    port: DlibResNet, faces, dlib_descriptors
) -> None:
    chips = torch.from_numpy(np.stack([chip for _, chip in faces])).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        ours = port(chips).numpy()
    # Measured: max abs difference 5e-7 (float32 rounding), cosine 1.0000000.
    np.testing.assert_allclose(ours, dlib_descriptors, atol=1e-5, rtol=0)


def test_fixed_box_of_our_aligned_crop_stands_in_for_dlibs_chip(
    port: DlibResNet, faces, dlib_descriptors
) -> None:
    import mediapipe as mp

    from p2c.stream.alignment import crop_transform, landmarks68_from_mesh, warp_to_crop

    crops = []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as mesh:
        for image, _ in faces:
            height, width = image.shape[:2]
            landmarks = mesh.process(image).multi_face_landmarks[0].landmark
            points = np.array([[p.x * width, p.y * height] for p in landmarks])
            crops.append(warp_to_crop(image, crop_transform(landmarks68_from_mesh(points))))
    batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.no_grad():
        ours = FaceIdNetwork(port, DLIB_FACE_BOX, "dlib").descriptors(batch).numpy()
    # dlib calls two descriptors the same person below Euclidean distance 0.6; on 119 photos the
    # box gave 0.23 on average, 0.54 at worst. FaceIdNetwork.descriptors is on dlib's scale (not
    # normalised), so p2c-eval's and the gate's dlib distance is dlib's own measure.
    distances = np.linalg.norm(ours - dlib_descriptors, axis=1)
    assert distances.max() < 0.6
    np.testing.assert_allclose(
        np.linalg.norm(ours, axis=1), np.linalg.norm(dlib_descriptors, axis=1), rtol=0.1
    )
