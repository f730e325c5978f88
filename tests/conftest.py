"""Shared fixtures: synthetic frames, a tiny generator, real media from ../shared.

Also the skip policy: a test may skip only for a reason that describes the machine (no CUDA GPU,
no camera device, no ../shared, no default model shipped yet, the optional GPU libraries absent).
Any other skip, above all one for a dependency that ``pip install -e ".[dev]"`` installs, fails
the run, so a broken install cannot pass unnoticed.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = Path(__file__).resolve().parent / "data"

# What a skip reason may say (searched, case-sensitive). Keep each one about the machine.
ALLOWED_SKIP_REASONS = tuple(
    re.compile(pattern)
    for pattern in (
        r"needs a CUDA GPU",
        r"checks the (error|message)",  # a test of the message shown where CUDA or a library is absent
        r"torch_tensorrt is not installed",
        r"onnxruntime-gpu is not installed",
        r"no virtual camera device",
        r"a video device exists here",
        r"no default model ships yet",
        r"a default model ships with this version",
        r"is absent: real media live in \.\./shared",
        r"no /proc/self/status on this system",
        r"this CPU PyTorch cannot run",
    )
)
_disallowed_skips: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` skip, with one reason, where PyTorch sees no CUDA GPU."""
    if torch.cuda.is_available():
        return
    no_gpu = pytest.mark.skip(reason="needs a CUDA GPU; this machine has none")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(no_gpu)


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str | None:
    if not report.skipped or hasattr(report, "wasxfail"):
        return None
    longrepr = report.longrepr
    reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _check_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    reason = _skip_reason(report)
    if reason is not None and not any(pattern.search(reason) for pattern in ALLOWED_SKIP_REASONS):
        _disallowed_skips.append(f"{report.nodeid}: {reason}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _check_skip(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _check_skip(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _disallowed_skips and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _disallowed_skips:
        return
    terminalreporter.section("skips that fail the run", red=True)
    terminalreporter.line(
        "these tests skipped for a reason that is not about the machine (tests/conftest.py, "
        'ALLOWED_SKIP_REASONS); a dependency that pip install -e ".[dev]" installs is probably '
        "missing or broken: fix the install, or the test"
    )
    for line in _disallowed_skips:
        terminalreporter.line(f"  {line}")


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
def shared_test_cartoons() -> Path:
    """photo2cartoon's own 10 test cartoons (the default model's testB)."""
    return _shared_path("data/photo2cartoon/testB")


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


@pytest.fixture
def tiny_compact():
    """A compact generator small enough for CPU tests (widths 8/16/24, 2 blocks, 64x64); deterministic."""
    from p2c.models.compact import CompactConfig, CompactGenerator

    torch.manual_seed(0)
    return CompactGenerator(CompactConfig(img_size=64, widths=(8, 16, 24), blocks=2, expand=2)).eval()


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random ngf=8 generator at 256x256 (the crop size), saved as p2c safetensors."""
    from p2c.models.generator import ResnetGenerator
    from p2c.models.weights import save_generator

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_generator(ResnetGenerator(ngf=8, img_size=256, light=True).eval(), path, dtype=torch.float32)
    return path
