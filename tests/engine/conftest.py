"""Fixtures for the engine tests: weights files on disk and a face-like input batch.

They also run on a bare GPU image (``recipes/gpu_engine_bench.sh``): without scikit-image the face
batches come from a smooth synthetic picture, without safetensors the tiny weights are a ``.pt``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from p2c.models.generator import ResnetGenerator


def _psnr(reference: np.ndarray, other: np.ndarray) -> float:
    """PSNR in dB of two batches in [-1, 1] (peak-to-peak 2)."""
    mse = float(np.mean((reference.astype(np.float64) - other.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(4.0 / mse)


@pytest.fixture(scope="session")
def psnr() -> Callable[[np.ndarray, np.ndarray], float]:
    return _psnr


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exports land in a temporary cache, never in the user's ~/.cache/p2c."""
    monkeypatch.setenv("P2C_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "p2c-cache"))


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny generator (ngf=8, 64 px) saved by p2c in FP32, so its config says 64 px."""
    from p2c.models.weights import save_generator

    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    if importlib.util.find_spec("safetensors") is None:
        # The released .pt layout has no config beside it: a full (not light) generator's weights
        # say its 64 px size themselves.
        generator = ResnetGenerator(ngf=8, img_size=64, light=False)
        torch.save({"genA2B": generator.state_dict()}, folder / "tiny.pt")
        return folder / "tiny.pt"
    generator = ResnetGenerator(ngf=8, img_size=64, light=True)
    return save_generator(generator, folder / "tiny", dtype=torch.float32)


@pytest.fixture(scope="session")
def tiny_compact_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small compact generator (widths 8/16/24, 2 blocks, 64 px) saved by p2c in FP32."""
    from p2c.models.compact import CompactConfig, CompactGenerator
    from p2c.models.weights import save_generator

    folder = tmp_path_factory.mktemp("compact_weights")
    torch.manual_seed(0)
    generator = CompactGenerator(CompactConfig(img_size=64, widths=(8, 16, 24), blocks=2, expand=2))
    if importlib.util.find_spec("safetensors") is None:
        torch.save(generator.state_dict(), folder / "tiny_compact.pt")  # its config follows from the shapes
        return folder / "tiny_compact.pt"
    return save_generator(generator, folder / "tiny_compact", dtype=torch.float32)


@pytest.fixture(scope="session")
def full_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full-size generator (ngf=32, light, 256 px) in the released layout, random weights."""
    torch.manual_seed(0)
    generator = ResnetGenerator(ngf=32, img_size=256, light=True)
    path = tmp_path_factory.mktemp("weights") / "photo2cartoon_weights.pt"
    torch.save({"genA2B": generator.state_dict()}, path)
    return path


def _face_batch(image: np.ndarray, size: int, count: int) -> np.ndarray:
    import cv2

    from p2c.engine import images_to_batch

    crops = []
    for shift in range(count):  # slightly different crops around the astronaut's face
        top, left = 20 + 8 * shift, 150 + 8 * shift
        crops.append(
            cv2.resize(image[top : top + 220, left : left + 220], (size, size), interpolation=cv2.INTER_AREA)
        )
    return images_to_batch(crops)


@pytest.fixture(scope="session")
def face_image() -> np.ndarray:
    """skimage's astronaut (a real face), or a smooth synthetic 512x512 picture without scikit-image."""
    if importlib.util.find_spec("skimage") is not None:
        from skimage import data

        return data.astronaut()
    import cv2

    noise = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 4)


@pytest.fixture
def face_batch_64(face_image: np.ndarray) -> np.ndarray:
    return _face_batch(face_image, 64, 3)


@pytest.fixture
def face_batch_256(face_image: np.ndarray) -> np.ndarray:
    return _face_batch(face_image, 256, 2)
