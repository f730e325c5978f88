"""The torch compositor agrees with the OpenCV one (run here on the CPU; the code is device-agnostic)."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import pytest
import torch

from p2c.stream.alignment import warp_to_crop
from p2c.stream.compositing import create_compositor, feather_mask, paste_cartoons
from p2c.stream.faces import AlignedFace
from p2c.stream.gpu_compositing import TorchCompositor, feather_masks, warp_crops


def _transform(centre: tuple[float, float], side: float, degrees: float, size: int = 256) -> np.ndarray:
    """Image -> crop matrix of a ``side``-pixel square around ``centre`` turned by ``degrees``."""
    angle = np.deg2rad(degrees)
    rotation = (size / side) * np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    matrix = np.empty((2, 3))
    matrix[:, :2] = rotation
    matrix[:, 2] = (size - 1) / 2 - rotation @ np.asarray(centre)
    return matrix


# Enlarging, mild and strong (3.5x, through the pyramid) shrinking, and a face half out of frame.
TRANSFORMS = [
    _transform((220, 160), 200, 10),
    _transform((400, 400), 60, -20),
    _transform((256, 256), 900, 5),
    _transform((20, 500), 300, 30),
]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def disc_mask() -> np.ndarray:
    rows, cols = np.mgrid[0:256, 0:256]
    return ((rows - 128) ** 2 + (cols - 120) ** 2 < 100**2).astype(np.float32)


def _smooth_cartoons(count: int, size: int = 256) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    noise = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(count)]
    return [cv2.GaussianBlur(image, (0, 0), 3) for image in noise]


def _uint8_crops(frame: np.ndarray, device: str) -> np.ndarray:
    """``warp_crops`` as N x 256 x 256 x 3 uint8 images, as the engine stage would take them."""
    crops = warp_crops(frame, TRANSFORMS, device=device)
    return crops.round().clamp(0.0, 255.0).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def test_crops_match_opencv(astronaut: np.ndarray) -> None:
    crops = _uint8_crops(astronaut, "cpu")
    assert crops.shape == (len(TRANSFORMS), 256, 256, 3) and crops.dtype == np.uint8
    for matrix, crop in zip(TRANSFORMS, crops, strict=True):
        reference = warp_to_crop(astronaut, matrix)
        assert np.abs(reference.astype(int) - crop).mean() < 1.0
    # Outside the frame is white, exactly: the last face hangs over the bottom-left corner.
    assert (crops[3][:5, :5] == 255).all() or (crops[3][-5:, :5] == 255).all()


def test_crops_stay_on_the_frames_device(astronaut: np.ndarray) -> None:
    frame = torch.as_tensor(astronaut)
    crops = warp_crops(frame, TRANSFORMS[:2], size=128)
    assert crops.shape == (2, 3, 128, 128) and crops.dtype == torch.float32 and crops.device == frame.device
    assert warp_crops(frame, []).shape == (0, 3, 256, 256)


def test_feathered_masks_match_opencv(disc_mask: np.ndarray) -> None:
    batch = torch.as_tensor(np.stack([disc_mask, disc_mask.T]))
    feathered = feather_masks(batch).numpy()
    np.testing.assert_allclose(feathered[0], feather_mask(disc_mask), atol=1e-4)
    np.testing.assert_allclose(feathered[1], feather_mask(disc_mask.T), atol=1e-4)


def _faces(transforms: list[np.ndarray], mask: np.ndarray) -> list[AlignedFace]:
    blank = np.zeros((256, 256, 3), np.uint8)
    return [AlignedFace(np.zeros((68, 2)), matrix, blank, mask, 1.0) for matrix in transforms]


def test_paste_matches_opencv(astronaut: np.ndarray, disc_mask: np.ndarray) -> None:
    faces = _faces(TRANSFORMS, disc_mask)
    cartoons = _smooth_cartoons(len(faces))
    before = astronaut.copy()
    expected = paste_cartoons(astronaut, faces, cartoons)
    compositor = create_compositor("torch", device="cpu")
    got = compositor.paste(astronaut, faces, cartoons)
    compositor.close()
    np.testing.assert_array_equal(astronaut, before)  # the input frame is untouched
    assert got.shape == astronaut.shape and got.dtype == np.uint8
    difference = np.abs(expected.astype(int) - got)
    assert difference.mean() < 0.2 and difference.max() <= 8


def test_paste_leaves_pixels_far_from_faces_alone(astronaut: np.ndarray, disc_mask: np.ndarray) -> None:
    faces = _faces(TRANSFORMS[:2], disc_mask)
    got = TorchCompositor("cpu").paste(astronaut, faces, _smooth_cartoons(len(faces)))
    # Distance of every pixel from each head's centre, in crop pixels. The disc has radius 100;
    # erosion (3) and blur (kernel radius 17) end before 118: beyond, pixels must be byte-identical.
    rows, cols = np.mgrid[0 : astronaut.shape[0], 0 : astronaut.shape[1]]
    pixels = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(np.float64)
    distance = np.full(len(pixels), np.inf)
    for face in faces:
        in_crop = pixels @ face.transform[:, :2].T + face.transform[:, 2]
        distance = np.minimum(distance, np.hypot(in_crop[:, 0] - 120, in_crop[:, 1] - 128))
    distance = distance.reshape(astronaut.shape[:2])
    np.testing.assert_array_equal(got[distance > 118], astronaut[distance > 118])
    assert (got[distance < 90] != astronaut[distance < 90]).any(axis=-1).mean() > 0.95


def test_paste_takes_the_generators_float_output(astronaut: np.ndarray, disc_mask: np.ndarray) -> None:
    faces = [AlignedFace(np.zeros((68, 2)), TRANSFORMS[0], np.zeros((64, 64, 3), np.uint8), disc_mask, 1.0)]
    (cartoon,) = _smooth_cartoons(1, size=64)  # a tiny generator's 64x64 output
    as_batch = torch.as_tensor(cartoon).permute(2, 0, 1)[None].float() / 127.5 - 1.0
    compositor = TorchCompositor("cpu")
    from_uint8 = compositor.paste(astronaut, faces, [cartoon])
    from_float = compositor.paste(astronaut, faces, as_batch)
    assert np.abs(from_uint8.astype(int) - from_float).max() <= 1
    assert np.abs(from_uint8.astype(int) - paste_cartoons(astronaut, faces, [cartoon])).mean() < 0.5


def test_no_faces_and_mismatched_lengths(astronaut: np.ndarray) -> None:
    compositor = TorchCompositor("cpu")
    np.testing.assert_array_equal(compositor.paste(astronaut, [], []), astronaut)
    with pytest.raises(ValueError, match="0 faces but 1 cartoons"):
        compositor.paste(astronaut, [], [astronaut])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu(astronaut: np.ndarray, disc_mask: np.ndarray) -> None:
    faces = _faces(TRANSFORMS, disc_mask)
    cartoons = _smooth_cartoons(len(faces))
    on_cpu = TorchCompositor("cpu").paste(astronaut, faces, cartoons)
    on_gpu = TorchCompositor("cuda").paste(astronaut, faces, cartoons)
    assert np.abs(on_cpu.astype(int) - on_gpu).max() <= 1
    crops_cpu = _uint8_crops(astronaut, "cpu")
    crops_gpu = _uint8_crops(astronaut, "cuda")
    assert np.abs(crops_cpu.astype(int) - crops_gpu).max() <= 1


def test_paste_over_the_photo_and_tone_matching_agree_with_opencv(astronaut: np.ndarray) -> None:
    """Cartoons drawn on white through a soft mask that reaches the crop's bottom edge: the torch
    paste puts the photo in place of the white and moves the tones at the crop's edges as the
    OpenCV one does."""
    rows, cols = np.mgrid[0:256, 0:256]
    person = (np.hypot(rows - 110, cols - 128) < 80) | ((rows >= 150) & (np.abs(cols - 128) < 70))
    mask = cv2.GaussianBlur(person.astype(np.float32), (0, 0), 2.0)
    faces = _faces(TRANSFORMS, mask)
    drawings = [cv2.GaussianBlur(c, (0, 0), 2) for c in _smooth_cartoons(len(faces))]
    alpha = mask[..., None]
    cartoons = [np.rint(d * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8) for d in drawings]
    expected = paste_cartoons(astronaut, faces, cartoons)
    got = TorchCompositor("cpu").paste(astronaut, faces, cartoons)
    difference = np.abs(expected.astype(int) - got)
    assert difference.mean() < 0.2 and difference.max() <= 4  # measured: 0.09 and 2
