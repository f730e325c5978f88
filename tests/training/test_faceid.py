"""Face ID network: MobileFaceNet checkpoints, the dlib port on real faces, the loss and its errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from p2c.errors import InputNotFoundError, InvalidInputError, MissingDependencyError, WeightsError
from p2c.training.dlib_resnet import _Reader
from p2c.training.faceid import (
    DLIB_FACE_BOX,
    MOBILEFACENET_FACE_BOX,
    FaceBox,
    FaceIdNetwork,
    default_faceid_path,
    faceid_loss,
    load_faceid,
)
from p2c.training.metrics import DLIB_SAME_PERSON
from p2c.training.mobilefacenet import MobileFaceNet

# Photos of four different people: the astronaut and three from shared trainA.
_OTHER_PEOPLE = ("photo_0002.jpg", "photo_0008.jpg", "photo_0010.jpg")


def _randomised_mobilefacenet() -> MobileFaceNet:
    """A MobileFaceNet whose batch-norm statistics are not the defaults, so loading must copy them."""
    torch.manual_seed(0)
    model = MobileFaceNet()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture(scope="module")
def mobilefacenet_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, MobileFaceNet]:
    # photo2cartoon's model_mobilefacenet.pth is a bare state dict saved with torch.save.
    model = _randomised_mobilefacenet()
    path = tmp_path_factory.mktemp("faceid") / "model_mobilefacenet.pth"
    torch.save(model.state_dict(), path)
    return path, model


def test_mobilefacenet_checkpoint_round_trip_gives_identical_embeddings(mobilefacenet_file) -> None:
    path, original = mobilefacenet_file
    network = load_faceid(path)
    images = torch.rand(2, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        expected = original(MOBILEFACENET_FACE_BOX.cut(images))
        embeddings = network(images)
    assert network.name == "mobilefacenet"
    assert embeddings.shape == (2, 512)
    torch.testing.assert_close(embeddings, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(2))


def test_mobilefacenet_crop_matches_photo2cartoon_on_a_256_crop() -> None:
    # face_features.py: top 57, bottom 219, left 47, right 209 on 256 x 256.
    assert MOBILEFACENET_FACE_BOX.pixels(256, 256) == (57, 219, 47, 209)


def test_mobilefacenet_accepts_other_input_sizes(mobilefacenet_file) -> None:
    network = load_faceid(mobilefacenet_file[0])
    with torch.no_grad():
        embeddings = network(torch.zeros(1, 3, 180, 200))
    assert embeddings.shape == (1, 512)


def test_state_dict_with_a_missing_key_is_a_weights_error(mobilefacenet_file, tmp_path: Path) -> None:
    state = torch.load(mobilefacenet_file[0], weights_only=True)
    del state["linear.weight"]
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"model_mobilefacenet\.pth"):
        load_faceid(path)


def test_a_file_that_is_no_checkpoint_is_a_weights_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.pth"
    path.write_text("not a checkpoint")
    with pytest.raises(WeightsError, match=r"model_mobilefacenet\.pth"):
        load_faceid(path)


def test_a_missing_file_is_an_input_not_found_error(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="do not exist"):
        load_faceid(tmp_path / "absent.pth")


def test_without_face_recognition_models_the_default_says_what_to_install(monkeypatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args, **kwargs):
        return None if name == "face_recognition_models" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(MissingDependencyError, match="pip install face_recognition_models"):
        load_faceid(None)


def test_faceid_loss_is_mean_one_minus_cosine() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    assert faceid_loss(a, b).item() == pytest.approx(0.5)


def test_face_box_rejects_bad_fractions() -> None:
    with pytest.raises(ValueError, match="top"):
        FaceBox(top=0.6, bottom=0.4, centre_x=0.5, size=112)


def test_dlib_integer_and_float_encodings_read_as_dlib_wrote_them() -> None:
    # Bytes from dlib_face_recognition_resnet_model_v1.dat: the loss margin 0.04, the input's mean
    # red 122.782, the stem's parameter count 32*3*7*7 + 32, and a negative integer.
    reader = _Reader(
        b"\x03\x0a\xd7\xa3\x81\x1c" + b"\x03\x62\x90\xf5\x81\x11" + b"\x02\x80\x12" + b"\x81\x05"
    )
    assert reader.float_() == pytest.approx(0.04, rel=1e-7)
    assert reader.float_() == pytest.approx(122.782, rel=1e-7)
    assert reader.int_() == 4736
    assert reader.int_() == -5


# ---------------------------------------------------------------------------------------------
# The dlib port on its own (needs face_recognition_models, ~100 MB, for the weights)


@pytest.fixture(scope="module")
def dlib_faceid() -> FaceIdNetwork:
    return load_faceid(None)  # face_recognition_models is a dev dependency: its absence is a failure


def _aligned_crop(image: np.ndarray) -> np.ndarray:
    """Our 256 aligned crop from MediaPipe FaceMesh landmarks (FaceAligner without segmentation)."""
    import mediapipe as mp

    from p2c.stream.alignment import crop_transform, landmarks68_from_mesh, warp_to_crop

    height, width = image.shape[:2]
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as mesh:
        result = mesh.process(image)
    assert result.multi_face_landmarks, "no face found in a test photo"
    points = np.array([[p.x * width, p.y * height] for p in result.multi_face_landmarks[0].landmark])
    return warp_to_crop(image, crop_transform(landmarks68_from_mesh(points)))


@pytest.fixture(scope="module")
def people_crops(shared_photos: Path, astronaut: np.ndarray) -> torch.Tensor:
    """Aligned crops of four different people as a 4 x 3 x 256 x 256 batch in [-1, 1]."""
    return _crops_tensor([astronaut, *(_read_rgb(shared_photos / name) for name in _OTHER_PEOPLE)])


def _read_rgb(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"cannot read {path}"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _crops_tensor(images: list[np.ndarray]) -> torch.Tensor:
    crops = np.stack([_aligned_crop(image) for image in images])
    return torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def test_dlib_default_is_frozen_and_stays_in_eval_mode(dlib_faceid: FaceIdNetwork) -> None:
    wrapper = torch.nn.ModuleDict({"faceid": dlib_faceid}).train()
    assert not wrapper["faceid"].training
    assert not any(p.requires_grad for p in dlib_faceid.parameters())
    assert dlib_faceid.name == "dlib" and dlib_faceid.box == DLIB_FACE_BOX


def test_dlib_same_person_is_closer_than_different_people(
    dlib_faceid: FaceIdNetwork, people_crops: torch.Tensor
) -> None:
    shifted = torch.roll(people_crops, shifts=(4, -3), dims=(2, 3))
    brighter = (people_crops * 0.9 + 0.1).clamp(-1, 1)
    with torch.no_grad():
        base, moved, lit = dlib_faceid(people_crops), dlib_faceid(shifted), dlib_faceid(brighter)
    assert base.shape == (4, 128)
    torch.testing.assert_close(base.norm(dim=1), torch.ones(4))
    same = torch.cat([1 - (base * moved).sum(1), 1 - (base * lit).sum(1)])
    between = 1 - base @ base.T
    different = between[~torch.eye(4, dtype=torch.bool)]
    # Measured: same person <= 0.007, different people >= 0.07 (dlib descriptors are not centred,
    # so cosine distances between people are small in absolute terms).
    assert same.max() < different.min() / 3


def test_dlib_descriptors_are_the_unnormalised_embeddings_on_dlibs_scale(
    dlib_faceid: FaceIdNetwork, people_crops: torch.Tensor
) -> None:
    shifted = torch.roll(people_crops, shifts=(4, -3), dims=(2, 3))
    with torch.no_grad():
        raw, moved = dlib_faceid.descriptors(people_crops), dlib_faceid.descriptors(shifted)
        torch.testing.assert_close(F.normalize(raw, dim=1), dlib_faceid(people_crops))
    # dlib's convention: under 0.6 the same person. Measured: the shifted selves 0.12-0.18 away; the
    # astronaut 0.78-0.86 from the three others; those three (young East Asian women) 0.55-0.70
    # from each other: dlib's 0.6 is loose on this population (docs/default-model.md).
    assert (raw - moved).norm(dim=1).max() < 0.25
    between = torch.cdist(raw, raw)
    assert between[0, 1:].min() > DLIB_SAME_PERSON
    others = between + torch.eye(4) * 10
    assert bool(((raw - moved).norm(dim=1) < others.min(dim=1).values / 2).all())


def test_dlib_loss_sends_gradients_to_the_input(
    dlib_faceid: FaceIdNetwork, people_crops: torch.Tensor
) -> None:
    photos = people_crops[:2].clone()
    cartoons = people_crops[2:].clone().requires_grad_(True)
    loss = faceid_loss(dlib_faceid(photos), dlib_faceid(cartoons))
    loss.backward()
    assert loss.item() > 0
    assert cartoons.grad is not None and torch.isfinite(cartoons.grad).all()
    assert cartoons.grad.abs().sum() > 0


def test_input_of_the_wrong_shape_is_rejected(dlib_faceid: FaceIdNetwork) -> None:
    with pytest.raises(InvalidInputError, match=r"\(N, 3, H, W\)"):
        dlib_faceid(torch.zeros(3, 256, 256))


def test_a_truncated_dlib_file_is_a_weights_error(dlib_faceid: FaceIdNetwork, tmp_path: Path) -> None:
    path = tmp_path / "truncated.dat"
    path.write_bytes(default_faceid_path().read_bytes()[:200_000])
    with pytest.raises(WeightsError, match="end of file"):
        load_faceid(path)
