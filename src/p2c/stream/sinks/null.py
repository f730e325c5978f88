"""A sink that discards every frame (``--null``): the pipeline's speed without any output device.

It still checks each frame's shape and counts it, so a run into ``--null`` does all the work a run
into a virtual camera does except the device's own copy: what ``p2c-stream --camera clip.mp4
--null`` measures where no virtual camera exists (CI, a server, a benchmark).
"""

from __future__ import annotations

import numpy as np

from p2c.stream.frame import Frame
from p2c.stream.sinks.base import FrameSink, OutputValue, SinkOption, SinkTarget

__all__ = ["NullSink"]


class NullSink(FrameSink):
    """Take frames of the run's size and throw them away."""

    name = "null"
    option = SinkOption("--null", "discard the frames (measures the pipeline where no output device exists)")

    @classmethod
    def for_output(cls, value: OutputValue, target: SinkTarget) -> NullSink:
        return cls(target.width, target.height)

    def _write(self, frame: Frame, image: np.ndarray) -> None:
        return None
