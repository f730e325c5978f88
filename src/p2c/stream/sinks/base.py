"""The sink protocol: where finished frames go (a video file, a virtual camera, a preview window).

Contract, for every sink:

- it is a context manager; ``__enter__`` opens the device or file and raises
  :class:`p2c.errors.OutputError` (one sentence saying what to do) when it cannot;
- ``write(frame)`` takes a :class:`p2c.stream.frame.Frame` and writes ``frame.result``, an RGB
  ``uint8`` image of the size the sink was opened for, and raises ``ValueError`` showing the
  expected and the actual shape otherwise; it may raise :class:`StopStream` when the user asks
  to stop (preview window closed);
- ``close()`` flushes and finalises, runs once however the run ended (error, Ctrl-C), and is
  safe to call again.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, runtime_checkable

import numpy as np

from p2c.resources import Closeable
from p2c.stream.frame import Frame

__all__ = ["FrameSink", "Sink", "StopStream", "check_frame_shape"]


class StopStream(Exception):  # noqa: N818 - a normal stop, not an error
    """A sink asks the pipeline to stop normally (the user pressed 'q' or closed the window)."""


@runtime_checkable
class Sink(Protocol):
    """Where frames go. See the module docstring for the contract."""

    name: str

    def __enter__(self) -> Sink: ...

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def write(self, frame: Frame) -> None: ...

    def close(self) -> None: ...


def check_frame_shape(image: np.ndarray, expected: tuple[int, int, int], sink: str) -> None:
    """Raise ``ValueError`` naming ``sink`` and showing both shapes unless ``image`` fits."""
    if image.dtype != np.uint8 or tuple(image.shape) != expected:
        raise ValueError(
            f"{sink}: expected frame shape {expected} uint8, got {tuple(image.shape)} {image.dtype}"
        )


class FrameSink(Closeable):
    """Shared plumbing: context manager methods, a shape check, close-once."""

    name = "sink"

    def __init__(self, width: int, height: int) -> None:
        if width < 1 or height < 1:
            raise ValueError(f"{type(self).__name__} size must be positive, got {width}x{height}")
        self.width = width
        self.height = height
        self.frames_written = 0
        self._closed = False

    @property
    def expected_shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, 3)

    def open(self) -> None:
        """Acquire the device or file (override)."""

    def write(self, frame: Frame) -> None:
        image = frame.result
        check_frame_shape(image, self.expected_shape, self.name)
        self._write(frame, image)
        self.frames_written += 1

    def _write(self, frame: Frame, image: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._close()

    def _close(self) -> None:
        """Flush and release (override)."""
