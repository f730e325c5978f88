"""A whole frame on the engine's device: upload once, crops, generator on tensors, paste, download once.

Run here on the CPU (the code is device-agnostic) against the host path the tracker and compositor
take today; the ``gpu`` tests run the same on CUDA.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from p2c.engine import EngineConfig, batch_to_images, create_engine, images_to_batch
from p2c.stream.alignment import warp_to_crop, whiten_background
from p2c.stream.compositing import paste_cartoons
from p2c.stream.faces import AlignedFace
from p2c.stream.gpu_compositing import (
    FrameTransfer,
    batch_to_pixels,
    cartoonize_on_device,
    engine_inputs,
    masks_tensor,
)


def _transform(centre: tuple[float, float], side: float, degrees: float, size: int = 256) -> np.ndarray:
    angle = np.deg2rad(degrees)
    rotation = (size / side) * np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    matrix = np.empty((2, 3))
    matrix[:, :2] = rotation
    matrix[:, 2] = (size - 1) / 2 - rotation @ np.asarray(centre)
    return matrix


TRANSFORMS = [_transform((200, 170), 220, 8), _transform((470, 300), 120, -15)]


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    """A smooth synthetic 640x480 RGB frame (blurred noise: detail at every scale, no media needed)."""
    noise = np.random.default_rng(3).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 2.5)


@pytest.fixture(scope="module")
def masks() -> np.ndarray:
    rows, cols = np.mgrid[0:256, 0:256]
    disc = ((rows - 128) ** 2 + (cols - 124) ** 2 < 95**2).astype(np.float32)
    soft = cv2.GaussianBlur(disc, (0, 0), 3)
    return np.stack([soft, soft.T])


def _faces(masks: np.ndarray, frame: np.ndarray) -> list[AlignedFace]:
    faces = []
    for matrix, mask in zip(TRANSFORMS, masks, strict=True):
        crop = whiten_background(warp_to_crop(frame, matrix), mask)
        faces.append(AlignedFace(np.zeros((68, 2)), matrix, crop, mask, 1.0))
    return faces


def test_upload_and_download_round_trip_without_touching_the_callers_frame(frame: np.ndarray) -> None:
    transfer = FrameTransfer("cpu")
    before = frame.copy()
    tensor = transfer.upload(frame)
    assert tensor.dtype == torch.uint8 and tuple(tensor.shape) == frame.shape
    tensor[:10] = 0  # what pasting in place does
    np.testing.assert_array_equal(frame, before)
    restored = transfer.download(tensor)
    np.testing.assert_array_equal(restored[10:], frame[10:])
    with pytest.raises(ValueError, match=r"uint8 RGB frame of shape \(H, W, 3\)"):
        transfer.upload(frame[..., 0])


def test_uint8_masks_upload_to_the_same_floats(masks: np.ndarray) -> None:
    from_float = masks_tensor(masks, "cpu")
    from_uint8 = masks_tensor(np.rint(masks * 255).astype(np.uint8), "cpu")
    assert from_uint8.dtype == torch.float32 and from_uint8.shape == (2, 256, 256)
    assert float((from_float - from_uint8).abs().max()) <= 0.5 / 255 + 1e-6


def test_engine_inputs_match_the_trackers_host_crops(frame: np.ndarray, masks: np.ndarray) -> None:
    expected = images_to_batch([face.crop for face in _faces(masks, frame)])
    inputs = engine_inputs(torch.from_numpy(frame), TRANSFORMS, masks_tensor(masks, "cpu"))
    assert inputs.shape == expected.shape and inputs.dtype == torch.float32
    difference = np.abs(inputs.numpy() - expected)
    assert difference.mean() < 1.0 / 127.5 and difference.max() < 6 / 127.5
    small = engine_inputs(torch.from_numpy(frame), TRANSFORMS, masks_tensor(masks, "cpu"), size=64)
    assert small.shape == (2, 3, 64, 64) and float(small.min()) >= -1.0 and float(small.max()) <= 1.0


def test_a_frame_cartoonized_on_the_device_matches_the_host_path(
    frame: np.ndarray, masks: np.ndarray, tiny_generator: torch.nn.Module, tmp_path: Path
) -> None:
    from p2c.models.weights import save_generator

    weights = save_generator(tiny_generator, tmp_path / "tiny", dtype=torch.float32)
    engine = create_engine(weights, EngineConfig(backend="torch", device="cpu"))
    faces = _faces(masks, frame)
    small_crops = [cv2.resize(face.crop, (64, 64), interpolation=cv2.INTER_AREA) for face in faces]
    expected = paste_cartoons(frame, faces, batch_to_images(engine.run(images_to_batch(small_crops))))

    transfer = FrameTransfer("cpu")
    uploaded = transfer.upload(frame)
    result = transfer.download(
        cartoonize_on_device(uploaded, TRANSFORMS, masks_tensor(masks, "cpu"), engine, size=64)
    )
    difference = np.abs(result.astype(int) - expected)
    assert difference.mean() < 0.5 and np.percentile(difference, 99.9) <= 12
    assert (result != frame).any(axis=-1).mean() > 0.05  # the faces did change
    engine.close()


def test_generator_output_becomes_pixels_on_its_device() -> None:
    batch = torch.tensor([-1.5, -1.0, 0.0, 1.0]).view(1, 1, 2, 2).expand(1, 3, 2, 2)
    pixels = batch_to_pixels(batch)
    assert pixels.device == batch.device
    assert pixels[0, 0].flatten().tolist() == [0.0, 0.0, 127.5, 255.0]


@pytest.mark.gpu
def test_the_device_path_on_cuda_matches_the_cpu(
    frame: np.ndarray, masks: np.ndarray, tiny_generator: torch.nn.Module, tmp_path: Path
) -> None:
    from p2c.models.weights import save_generator

    weights = save_generator(tiny_generator, tmp_path / "tiny", dtype=torch.float32)
    results = {}
    for device in ("cpu", "cuda"):
        engine = create_engine(weights, EngineConfig(backend="torch", device=device, precision="fp32"))
        transfer = FrameTransfer(device)
        uploaded = transfer.upload(frame)
        assert uploaded.device.type == device
        on_device = cartoonize_on_device(uploaded, TRANSFORMS, masks_tensor(masks, device), engine, size=64)
        results[device] = transfer.download(on_device)
        engine.close()
    assert np.abs(results["cpu"].astype(int) - results["cuda"]).max() <= 2
