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

A sink the command lines offer also says how: its :class:`SinkOption` (``--preview``), a cheap
early check of the option's value, and how to build itself for a run's :class:`SinkTarget`.
:mod:`p2c.stream.sinks.registry` turns those into options and sinks for every command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Protocol, Self, runtime_checkable

import numpy as np

from p2c.resources import Closeable
from p2c.stream.frame import Frame

__all__ = ["FrameSink", "OutputValue", "Sink", "SinkOption", "SinkTarget", "StopStream", "check_frame_shape"]

OutputValue = str | os.PathLike[str] | bool
"""What asks for a sink: ``True`` for a flag (``--preview``), a path for an option taking one."""


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


@dataclass(frozen=True)
class SinkOption:
    """How a command line asks for a sink: a flag (``metavar=None``) or an option taking a path."""

    flag: str
    help: str
    metavar: str | None = None


@dataclass(frozen=True)
class SinkTarget:
    """What every sink of one run is opened for: the frames' size and clock, and the run.

    ``width``/``height`` are the output frames' (twice the width side by side); ``live``: the
    source paces itself (a camera), else a sink that shows frames paces them; ``audio_from``: a
    file whose audio a file sink carries over; ``title``: for windows.
    """

    width: int
    height: int
    fps: float
    time_base: Fraction
    live: bool = False
    audio_from: Path | None = None
    title: str = "p2c"


def check_frame_shape(image: np.ndarray, expected: tuple[int, int, int], sink: str) -> None:
    """Raise ``ValueError`` naming ``sink`` and showing both shapes unless ``image`` fits."""
    if image.dtype != np.uint8 or tuple(image.shape) != expected:
        raise ValueError(
            f"{sink}: expected frame shape {expected} uint8, got {tuple(image.shape)} {image.dtype}"
        )


class FrameSink(Closeable):
    """Shared plumbing: context manager methods, a shape check, close-once; command-line hooks."""

    name = "sink"
    # How the command lines offer this sink; None: they do not (a meter, a test sink).
    option: ClassVar[SinkOption | None] = None

    @classmethod
    def check_output(cls, value: OutputValue) -> None:
        """Raise a one-line :class:`p2c.errors.P2CError` now, before anything slow opens, when
        ``value`` (the option's) cannot work (default: nothing to check)."""

    @classmethod
    def for_output(cls, value: OutputValue, target: SinkTarget) -> Self:
        """The sink ``value`` asks for, sized for ``target`` (sinks with an ``option`` override it)."""
        raise NotImplementedError(f"{cls.__name__} is not offered as an output")

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
