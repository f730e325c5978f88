"""Fixtures for the video pipeline tests: synthetic frames, fake stages and sinks, tiny clips."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from p2c.stream.frame import Frame
from p2c.stream.sinks.base import FrameSink, OutputValue, SinkOption, SinkTarget


class ListSink(FrameSink):
    """Keeps what it is given; records whether it was closed."""

    name = "list"

    def __init__(self, width: int, height: int) -> None:
        super().__init__(width, height)
        self.frames: list[Frame] = []
        self.closed_calls = 0

    def _write(self, frame: Frame, image: np.ndarray) -> None:
        self.frames.append(frame)

    def _close(self) -> None:
        self.closed_calls += 1


class SyntheticSource:
    """``count`` small frames whose first pixel holds the index; ``live`` picks the drop policy."""

    name = "synthetic"

    def __init__(self, count: int, size: int = 32, live: bool = False) -> None:
        self.count = count
        self.size = size
        self.live = live
        self.damaged = 0
        self.entered = False
        self.exited = False

    def __enter__(self) -> SyntheticSource:
        self.entered = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.exited = True

    def __iter__(self) -> Iterator[Frame]:
        for index in range(self.count):
            image = np.zeros((self.size, self.size, 3), np.uint8)
            image[0, 0, 0] = index % 256
            yield Frame(index=index, pts=index * 512, time_base=Fraction(1, 12800), image=image)


class FramesSource:
    """Frames made in memory, as a (file-like, never dropping) source."""

    name = "frames"
    live = False
    damaged = 0

    def __init__(self, frames: list[Frame]) -> None:
        self.frames = frames

    def __enter__(self) -> FramesSource:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def __iter__(self) -> Iterator[Frame]:
        return iter(self.frames)


@pytest.fixture
def frames_source() -> type[FramesSource]:
    return FramesSource


@pytest.fixture
def list_sink() -> type[ListSink]:
    return ListSink


class TallySink(FrameSink):
    """A sink offered on the command line as ``--tally``: it only keeps the frame indexes."""

    name = "tally"
    option = SinkOption("--tally", "count the frames")
    opened: ClassVar[list[TallySink]] = []

    @classmethod
    def for_output(cls, value: OutputValue, target: SinkTarget) -> TallySink:
        sink = cls(target.width, target.height)
        cls.opened.append(sink)
        return sink

    def __init__(self, width: int, height: int) -> None:
        super().__init__(width, height)
        self.indexes: list[int] = []

    def _write(self, frame: Frame, image: np.ndarray) -> None:
        self.indexes.append(frame.index)


@pytest.fixture
def tally_sink(monkeypatch: pytest.MonkeyPatch) -> type[TallySink]:
    """:class:`TallySink`, registered as the sink ``tally`` for the test: one module, one line."""
    from p2c.stream.sinks import SINKS

    monkeypatch.setitem(SINKS, "tally", TallySink)
    monkeypatch.setattr(TallySink, "opened", [])
    return TallySink


@pytest.fixture
def synthetic_source() -> type[SyntheticSource]:
    return SyntheticSource


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 25, audio: bool = False) -> Path:
    """Encode RGB frames into an H.264 file (optionally with a sine AAC track) with PyAV."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        audio_stream = out.add_stream("aac", rate=44100) if audio else None
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if audio_stream is not None:
            seconds = len(frames) / fps
            samples = (np.sin(np.arange(int(44100 * seconds)) * 0.05) * 0.3).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
            frame.sample_rate = 44100
            frame.pts = 0
            for packet in audio_stream.encode(frame):
                out.mux(packet)
            for packet in audio_stream.encode():
                out.mux(packet)
    return path


@pytest.fixture
def make_clip(tmp_path: Path):
    """``make_clip(n, w, h, fps, audio)`` -> path of a small moving-gradient H.264 clip."""

    def make(
        count: int = 12,
        width: int = 64,
        height: int = 48,
        fps: int = 25,
        audio: bool = False,
        name: str = "c.mp4",
    ) -> Path:
        ys, xs = np.mgrid[0:height, 0:width]
        frames = [
            np.stack([(xs * 4 + i * 8) % 256, (ys * 4) % 256, np.full_like(xs, 128)], axis=-1).astype(
                np.uint8
            )
            for i in range(count)
        ]
        return write_clip(tmp_path / name, frames, fps=fps, audio=audio)

    return make


class InvertEngine:
    """A fast stand-in for the generator: the photographic negative, so faces visibly change."""

    name = "invert"
    device = "cpu"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[int] = []
        self.closed = False

    def run(self, batch: np.ndarray) -> np.ndarray:
        import time

        self.calls.append(len(batch))
        if self.delay:
            time.sleep(self.delay)
        return -batch

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def invert_engine() -> type[InvertEngine]:
    return InvertEngine


def decode_all(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


@pytest.fixture
def decode():
    """``decode(path)`` -> every video frame of a file, RGB."""
    return decode_all


@pytest.fixture(scope="session")
def clip_writer():
    """``clip_writer(path, frames, fps=25, audio=False)`` -> path of the encoded clip. Session-wide,
    for module fixtures too: ``from conftest import`` finds whichever conftest.py came first."""
    return write_clip


@pytest.fixture
def flaky_camera(monkeypatch: pytest.MonkeyPatch):
    """Install a fake ``cv2.VideoCapture`` that gives ``frames`` images then fails, like an
    unplugged webcam; returns nothing (the camera is used through OpenCV as p2c does)."""
    import cv2

    def install(frames: int, shape: tuple[int, int, int], value: int = 0) -> None:
        class FlakyCapture:
            def __init__(self, *_: object) -> None:
                self.reads = 0

            def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
                return True

            def set(self, *_: object) -> bool:
                return True

            def get(self, _prop: int) -> float:
                return 30.0

            def read(self) -> tuple[bool, np.ndarray | None]:
                self.reads += 1
                return (True, np.full(shape, value, np.uint8)) if self.reads <= frames else (False, None)

            def release(self) -> None:
                pass

        monkeypatch.setattr(cv2, "VideoCapture", FlakyCapture)

    return install
