"""Shared fixtures: synthetic frames, a tiny generator, real media from ../shared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = Path(__file__).resolve().parent / "data"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` skip, with one reason, where PyTorch sees no CUDA GPU."""
    if torch.cuda.is_available():
        return
    no_gpu = pytest.mark.skip(reason="needs a CUDA GPU; this machine has none")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(no_gpu)


def _shared_path(relative: str) -> Path:
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is absent: real media live in ../shared beside the checkout")
    return path


@pytest.fixture(scope="session")
def shared_photos() -> Path:
    return _shared_path("data/photo2cartoon/trainA")


@pytest.fixture(scope="session")
def shared_cartoons() -> Path:
    return _shared_path("data/photo2cartoon/trainB")


@pytest.fixture(scope="session")
def talking_clip() -> Path:
    return _shared_path("media/talking_512x512_25fps_noaudio.mp4")


@pytest.fixture(scope="session")
def talking_clip_with_audio() -> Path:
    return _shared_path("media/talking_1280x720_30fps_audio.mp4")


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def tiny_generator():
    """A generator small enough for CPU tests (ngf=8, 64x64); deterministic weights."""
    from p2c.models.generator import ResnetGenerator

    torch.manual_seed(0)
    return ResnetGenerator(ngf=8, img_size=64, light=True).eval()


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random ngf=8 generator at 256x256 (the crop size), saved as p2c safetensors."""
    from p2c.models.generator import ResnetGenerator
    from p2c.models.weights import save_generator

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_generator(ResnetGenerator(ngf=8, img_size=256, light=True).eval(), path, dtype=torch.float32)
    return path
