"""The one object that travels through the video pipeline: a frame and the faces found on it.

Stages only add to a :class:`Frame`: the source sets the index, timestamp and image; the tracker
adds one :class:`p2c.stream.faces.AlignedFace` per face (track id, landmarks, crop transform, crop,
mask), the record stills use too; the engine stage fills each face's cartoon (or, when frames stay
on the GPU, ``on_device``: the uploaded frame and its cartoons); the compositor sets ``output``.
Pixel formats convert only at sources and sinks, so inside the pipeline every host image is RGB
``uint8`` of shape ``(H, W, 3)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from p2c.stream.faces import AlignedFace

if TYPE_CHECKING:
    from p2c.stream.device_frames import DeviceFrame

__all__ = ["MICROSECONDS", "Frame"]

# The time base of sources that have no container clock of their own (cameras): microseconds.
MICROSECONDS = Fraction(1, 1_000_000)


@dataclass
class Frame:
    """A video frame: where it sits in its stream, its pixels, and what the stages found on it.

    ``pts`` counts ``time_base`` units, exactly as the container stored it, so a file sink can
    write the same timestamps back. ``arrived`` is the ``time.monotonic()`` at which the source
    produced the frame; end-to-end latency is measured from it. ``stages``: when each stage (and
    the sinks, as ``"sink"``) worked on the frame, ``(name, started, finished)`` on the same
    clock: what the latency was spent on, work or waiting in the queues between.
    """

    index: int
    pts: int
    time_base: Fraction
    image: np.ndarray
    faces: list[AlignedFace] = field(default_factory=list)
    output: np.ndarray | None = None
    damaged: bool = False
    on_device: DeviceFrame | None = None
    arrived: float = field(default_factory=time.monotonic)
    stages: list[tuple[str, float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        image = self.image
        if (
            not isinstance(image, np.ndarray)
            or image.dtype != np.uint8
            or image.ndim != 3
            or image.shape[2] != 3
        ):
            shape = getattr(image, "shape", None)
            dtype = getattr(image, "dtype", type(image).__name__)
            raise ValueError(f"Frame.image must be RGB uint8 (H, W, 3), got shape {shape} dtype {dtype}")
        if self.time_base <= 0:
            raise ValueError(f"Frame.time_base must be positive, got {self.time_base}")

    @property
    def timestamp(self) -> float:
        """Presentation time in seconds."""
        return float(self.pts * self.time_base)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the image."""
        return int(self.image.shape[1]), int(self.image.shape[0])

    @property
    def result(self) -> np.ndarray:
        """What a sink writes: the composited output, or the untouched image when no face was cartooned."""
        return self.image if self.output is None else self.output

    @classmethod
    def at_seconds(cls, index: int, seconds: float, image: np.ndarray, **kwargs: object) -> Frame:
        """A frame stamped in seconds (cameras, synthetic clips), stored in microseconds."""
        return cls(index=index, pts=round(seconds * 1_000_000), time_base=MICROSECONDS, image=image, **kwargs)  # type: ignore[arg-type]
