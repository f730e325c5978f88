"""The worker in-process (no Ray): a warm engine, progress then one outcome, bad inputs reported,
and a stopped file leaving nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from p2c.batch.config import WorkerSettings
from p2c.batch.jobs import Job, Outcome, Progress
from p2c.batch.worker import BatchWorker
from p2c.engine import EngineConfig
from p2c.stream.pipeline import VideoConfig


@pytest.fixture
def worker(tiny_weights: Path):
    worker = BatchWorker(
        WorkerSettings(
            weights=tiny_weights,
            engine=EngineConfig(backend="torch", device="cpu"),
            video=VideoConfig(max_faces=1, batch_size=4),
            duration=0.4,
        )
    )
    yield worker
    worker.stop()


def _job(source: Path, target: Path, kind: str = "video", index: int = 0) -> Job:
    return Job(index=index, source=str(source), target=str(target), kind=kind)  # type: ignore[arg-type]


def test_video_and_still_convert_on_one_engine(
    worker: BatchWorker,
    talking_clip: Path,
    astronaut: np.ndarray,
    tmp_path: Path,
    still_writer,
    facts_of_video,
    temporary_files,
) -> None:
    started = worker.start()
    assert (started.backend, started.device, started.engine_loads) == ("torch", "cpu", 1)
    messages = list(worker.convert(_job(talking_clip, tmp_path / "out/deep/clip.mp4")))
    *progress, outcome = messages
    assert all(isinstance(message, Progress) for message in progress)
    assert isinstance(outcome, Outcome) and outcome.status == "done", outcome
    assert outcome.frames == sum(message.frames for message in progress) == 10  # 0.4 s at 25 fps
    assert outcome.faces == 10 and outcome.seconds > 0
    assert facts_of_video(tmp_path / "out/deep/clip.mp4") == (512, 512, 10, False)

    photo = still_writer(tmp_path / "in/astronaut.png", astronaut)
    (outcome,) = list(worker.convert(_job(photo, tmp_path / "out/astronaut.png", "image", 1)))
    assert (outcome.status, outcome.frames, outcome.faces) == ("done", 1, 1)
    assert outcome.worker is not None and outcome.worker.engine_loads == 1  # never reloaded per file
    assert outcome.worker.pid == os.getpid()
    assert temporary_files(tmp_path / "out") == []


def test_unusable_inputs_are_failed_outcomes_not_exceptions(
    worker: BatchWorker, tmp_path: Path, still_writer
) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(os.urandom(4000))
    (outcome,) = list(worker.convert(_job(broken, tmp_path / "out/broken.mp4")))
    assert outcome.status == "failed" and "cannot read" in outcome.error and str(broken) in outcome.error
    blank = still_writer(tmp_path / "blank.jpg", np.full((200, 200, 3), 200, np.uint8))
    (outcome,) = list(worker.convert(_job(blank, tmp_path / "out/blank.jpg", "image")))
    assert outcome.status == "failed" and outcome.error.startswith("no face found")
    assert not (tmp_path / "out/broken.mp4").exists() and not (tmp_path / "out/blank.jpg").exists()


def test_a_file_stopped_midway_leaves_no_output_and_no_temporary_file(
    worker: BatchWorker, talking_clip: Path, tmp_path: Path, temporary_files
) -> None:
    target = tmp_path / "out/clip.mp4"
    messages = worker.convert(_job(talking_clip, target))
    assert isinstance(next(messages), Progress)  # frames are being written
    messages.close()  # the caller stops listening (Ray's cancel flag, checked in that loop, does the same)
    assert not target.exists()
    assert temporary_files(tmp_path / "out") == []
