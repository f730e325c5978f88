"""Sinks: where finished frames go. One protocol (:class:`Sink`), chosen by name from ``SINKS``."""

from p2c.stream.sinks.base import (
    FrameSink,
    OutputValue,
    Sink,
    SinkOption,
    SinkTarget,
    StopStream,
    check_frame_shape,
)
from p2c.stream.sinks.null import NullSink
from p2c.stream.sinks.preview import PreviewSink
from p2c.stream.sinks.registry import (
    SINKS,
    add_sink_arguments,
    build_sinks,
    check_outputs,
    create_sink,
    offered_outputs,
    outputs_from_args,
)
from p2c.stream.sinks.video_file import VideoFileSink
from p2c.stream.sinks.virtualcam import VirtualCameraSink

__all__ = [
    "SINKS",
    "FrameSink",
    "NullSink",
    "OutputValue",
    "PreviewSink",
    "Sink",
    "SinkOption",
    "SinkTarget",
    "StopStream",
    "VideoFileSink",
    "VirtualCameraSink",
    "add_sink_arguments",
    "build_sinks",
    "check_frame_shape",
    "check_outputs",
    "create_sink",
    "offered_outputs",
    "outputs_from_args",
]
