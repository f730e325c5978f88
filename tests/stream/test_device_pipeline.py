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

from p2c.engine import Backend, EngineConfig, batch_to_images, create_engine, images_to_batch
from p2c.stream.alignment import warp_to_crop, whiten_background
from p2c.stream.compositing import paste_cartoons
from p2c.stream.faces import AlignedFace
from p2c.stream.frame import Frame
from p2c.stream.gpu_compositing import (
    FrameTransfer,
    batch_to_pixels,
    engine_inputs,
    masks_tensor,
    paste_batch,
)
from p2c.stream.pipeline import VideoConfig, cartoon_stages, cartoonize
from p2c.stream.stage import BatchPolicy


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


def cartoonize_on_device(
    frame: torch.Tensor, transforms: list[np.ndarray], masks: torch.Tensor, engine: Backend, size: int
) -> torch.Tensor:
    """Every face of an uploaded frame through ``engine`` and pasted back, all on the frame's device."""
    cartoons = engine.run(engine_inputs(frame, transforms, masks, size))
    return paste_batch(frame, transforms, batch_to_pixels(cartoons), masks)


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


# --- the product pipeline with frames kept on the engine's device ----------------------------------


def _portrait_frames(astronaut: np.ndarray) -> list[Frame]:
    """Four astronaut frames, moving a little, and a blank one (no face) in between."""
    images = [np.roll(astronaut, (2 * i, 3 * i), axis=(0, 1)) for i in range(4)]
    images.insert(2, np.full_like(astronaut, 90))
    return [Frame.at_seconds(i, i / 25, image.copy()) for i, image in enumerate(images)]


class _CountingTransfer(FrameTransfer):
    uploads = 0
    downloads = 0

    def upload(self, frame: np.ndarray) -> torch.Tensor:
        type(self).uploads += 1
        return super().upload(frame)

    def download(self, frame: torch.Tensor) -> np.ndarray:
        type(self).downloads += 1
        return super().download(frame)


class _TensorSpy:
    """An engine wrapper that records what kind of batches the pipeline hands the engine."""

    def __init__(self, engine: Backend) -> None:
        self.engine, self.name, self.device, self.precision = engine, engine.name, engine.device, "fp32"
        self.kinds: list[str] = []

    def run(self, batch: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        self.kinds.append(type(batch).__name__)
        return self.engine.run(batch)

    def close(self) -> None:
        self.engine.close()


def _outputs(astronaut: np.ndarray, engine: Backend, on_device: bool, list_sink, frames_source) -> list:
    frames = _portrait_frames(astronaut)
    sink = list_sink(*frames[0].size)
    cartoonize(frames_source(frames), [sink], engine, VideoConfig(batch_size=4, on_device=on_device))
    return [frame.result for frame in sink.frames]


def test_frames_kept_on_the_device_give_the_host_paths_video(
    astronaut: np.ndarray, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch, list_sink, frames_source
) -> None:
    monkeypatch.setattr("p2c.stream.device_frames.FrameTransfer", _CountingTransfer)
    _CountingTransfer.uploads = _CountingTransfer.downloads = 0
    engine = _TensorSpy(create_engine(tiny_weights, EngineConfig(backend="torch", device="cpu")))
    host = _outputs(astronaut, engine, False, list_sink, frames_source)
    assert set(engine.kinds) == {"ndarray"}
    engine.kinds.clear()
    device = _outputs(astronaut, engine, True, list_sink, frames_source)
    engine.close()

    assert set(engine.kinds) == {"Tensor"}  # crops went to the engine as tensors, never via numpy
    assert _CountingTransfer.uploads == 4 and _CountingTransfer.downloads == 4  # once per face frame
    blank = _portrait_frames(astronaut)[2].image
    np.testing.assert_array_equal(device[2], blank)  # the frame without a face passes untouched
    assert len(device) == len(host) == 5
    for expected, result in zip(host, device, strict=True):
        difference = np.abs(result.astype(int) - expected)
        assert difference.mean() < 0.5 and np.percentile(difference, 99.9) <= 12
    assert (device[0] != astronaut).any(axis=-1).mean() > 0.05  # the face did change


def _through_stages(frame: np.ndarray, masks: np.ndarray, engine: Backend, on_device: bool | None) -> list:
    """Three frames with the two synthetic faces through the engine and compositor stages the pipeline
    picks (no tracker: the faces are given, so neither MediaPipe nor PyAV is needed)."""
    frames = []
    for index in range(3):
        shifted = np.roll(frame, index, axis=1)
        frames.append(Frame.at_seconds(index, index / 25, shifted, faces=_faces(masks, shifted)))
    frames.append(Frame.at_seconds(3, 3 / 25, frame.copy()))  # no face
    stages = cartoon_stages(engine, BatchPolicy.offline(4), VideoConfig(on_device=on_device))
    for stage in stages:
        frames = stage.process(frames)
    for stage in stages:
        stage.close()
    return [type(stages[0]).__name__] + [f.result for f in frames]


@pytest.mark.parametrize(
    ("device", "on_device"),
    [("cpu", True), pytest.param("cuda", None, marks=pytest.mark.gpu, id="cuda-auto")],
)
def test_the_stages_a_device_engine_gets_match_the_host_stages(
    device: str,
    on_device: bool | None,
    frame: np.ndarray,
    masks: np.ndarray,
    tiny_weights: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("p2c.stream.device_frames.FrameTransfer", _CountingTransfer)
    _CountingTransfer.uploads = _CountingTransfer.downloads = 0
    cpu = create_engine(tiny_weights, EngineConfig(backend="torch", device="cpu"))
    host = _through_stages(frame, masks, cpu, on_device=False)
    cpu.close()
    config = EngineConfig(backend="torch", device=device, precision="fp32")
    engine = _TensorSpy(create_engine(tiny_weights, config))
    result = _through_stages(frame, masks, engine, on_device=on_device)  # None: CUDA keeps frames there
    engine.close()
    assert host[0] == "EngineStage" and result[0] == "DeviceEngineStage"
    assert set(engine.kinds) == {"Tensor"}
    assert _CountingTransfer.uploads == _CountingTransfer.downloads == 3  # the 3 frames with faces
    np.testing.assert_array_equal(result[-1], frame)  # the frame without a face passes untouched
    for expected, got in zip(host[1:], result[1:], strict=True):
        difference = np.abs(got.astype(int) - expected)
        assert difference.mean() < 0.5 and np.percentile(difference, 99.9) <= 12
    assert all((result[1 + i] != np.roll(frame, i, axis=1)).any() for i in range(3))  # faces changed
