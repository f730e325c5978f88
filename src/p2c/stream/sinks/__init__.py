"""Sinks: where finished frames go. One protocol (:class:`Sink`), chosen by name from ``SINKS``."""

from __future__ import annotations

from typing import Any

from p2c.stream.sinks.base import FrameSink, Sink, StopStream, check_frame_shape
from p2c.stream.sinks.preview import PreviewSink
from p2c.stream.sinks.video_file import VideoFileSink
from p2c.stream.sinks.virtualcam import VirtualCameraSink

__all__ = [
    "SINKS",
    "FrameSink",
    "PreviewSink",
    "Sink",
    "StopStream",
    "VideoFileSink",
    "VirtualCameraSink",
    "check_frame_shape",
    "create_sink",
]

# Each module imports its heavy library (PyAV, pyvirtualcam, OpenCV's GUI) only when opened.
SINKS: dict[str, type[FrameSink]] = {
    "file": VideoFileSink,
    "virtualcam": VirtualCameraSink,
    "preview": PreviewSink,
}


def create_sink(name: str, **options: Any) -> FrameSink:
    """Build the sink registered as ``name``; ``ValueError`` listing the names for an unknown one."""
    try:
        factory = SINKS[name]
    except KeyError:
        raise ValueError(f"unknown sink {name!r}; choose one of {sorted(SINKS)}") from None
    return factory(**options)
