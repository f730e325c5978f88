"""Fixtures for p2c-batch: the tiny generator, generated stills, and running the command in a subprocess
(so that the local Ray it starts, and the workers Ray forks, are the command's own)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def write_still(path: Path, image: np.ndarray) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]))
    return path


@pytest.fixture(scope="session")
def still_writer() -> Callable[[Path, np.ndarray], Path]:
    """``still_writer(path, rgb)``: an image file OpenCV writes by its suffix."""
    return write_still


def batch_environment(cache: Path) -> dict[str, str]:
    """This checkout's p2c first on the path (for the workers Ray starts too), a private cache."""
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PYTHONPATH": path, "P2C_CACHE_DIR": str(cache)}


@pytest.fixture(scope="session")
def batch_command(tmp_path_factory: pytest.TempPathFactory, tiny_weights: Path):
    """``batch_command(IN, OUT, *options)``: the argv of p2c-batch on the tiny generator (torch on the
    CPU, no export to wait for), and the environment to run it in."""
    cache = tmp_path_factory.mktemp("p2c-cache")

    def command(source: Path | str, output: Path, *options: str) -> tuple[list[str], dict[str, str]]:
        argv = [sys.executable, "-m", "p2c.batch.command", str(source), str(output)]
        argv += ["--weights", str(tiny_weights), "--backend", "torch", "--device", "cpu", *options]
        return argv, batch_environment(cache)

    return command


@pytest.fixture(scope="session")
def run_batch_command(batch_command):
    """``run_batch_command(IN, OUT, *options)`` -> the finished process (text stdout and stderr)."""

    def run(
        source: Path | str, output: Path, *options: str, timeout: float = 300
    ) -> subprocess.CompletedProcess:
        argv, env = batch_command(source, output, *options)
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)

    return run


def lines(text: str) -> list[str]:
    """Screen lines of a captured stderr (progress-bar redraws use carriage returns)."""
    return [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def screen_lines() -> Callable[[str], list[str]]:
    return lines


def video_facts(path: Path) -> tuple[int, int, int, bool]:
    """(width, height, decoded frames, has audio) of a video file."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return stream.width, stream.height, frames, bool(container.streams.audio)


@pytest.fixture(scope="session")
def facts_of_video() -> Callable[[Path], tuple[int, int, int, bool]]:
    return video_facts


def leftovers(folder: Path) -> Sequence[Path]:
    """Temporary files (dot files) anywhere under ``folder``: there must be none after a run."""
    return sorted(path for path in folder.rglob(".*") if path.is_file())


@pytest.fixture(scope="session")
def temporary_files() -> Callable[[Path], Sequence[Path]]:
    return leftovers
