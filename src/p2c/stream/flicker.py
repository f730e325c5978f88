"""A flicker figure for cartoon video: how much the output changes frame to frame inside the faces.

For each pair of consecutive frames with faces, take the pixels inside both frames' head masks
(warped back from crop to image coordinates), and compare the mean absolute change of the output
there with the mean absolute change of the input. The ratio of the sums is the figure:

- about 1: the cartoon moves as much as the person does (what we want on a talking clip);
- much above 1: the cartoon shimmers by itself (crop jitter, mask flicker, generator noise);
- on a still face the input barely changes, so the absolute output change (``output_change``,
  0-255 scale) is the figure to look at.

:class:`FlickerMeter` is a sink, so it measures what a file or a camera would get. It also keeps
the motion-compensated figure, the temporal warping error (:mod:`p2c.stream.warping_error`).
"""

from __future__ import annotations

import cv2
import numpy as np

from p2c.stream.frame import Frame
from p2c.stream.sinks.base import FrameSink
from p2c.stream.warping_error import WarpingErrorMeter

__all__ = ["FlickerMeter", "face_region"]


def face_region(frame: Frame, threshold: float = 0.5) -> np.ndarray:
    """Boolean ``(H, W)`` mask of the pixels inside any face's head mask on ``frame.image``."""
    height, width = frame.image.shape[:2]
    region = np.zeros((height, width), dtype=bool)
    for face in frame.faces:
        warped = cv2.warpAffine(
            face.mask.astype(np.float32),
            np.asarray(face.transform, dtype=np.float64),
            (width, height),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0.0,),
        )
        region |= warped > threshold
    return region


class FlickerMeter(FrameSink):
    """Accumulates the frame-to-frame change inside the faces, output against input.

    The output compared is the composited frame (left half when side by side is on).
    """

    name = "flicker"

    def __init__(self, width: int, height: int) -> None:
        super().__init__(width, height)
        self._previous: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.input_change_sum = 0.0
        self.output_change_sum = 0.0
        self.pairs = 0
        self.warping = WarpingErrorMeter()

    def write(self, frame: Frame) -> None:  # any width: side-by-side output is cut to the cartoon half
        output = frame.result[:, -frame.image.shape[1] :]
        region = face_region(frame) if frame.faces else None
        if region is not None and self._previous is not None:
            before_in, before_out, before_region = self._previous
            both = region & before_region
            if both.any():
                self.input_change_sum += _mean_change(frame.image, before_in, both)
                self.output_change_sum += _mean_change(output, before_out, both)
                self.pairs += 1
        self._previous = None if region is None else (frame.image, output, region)
        self.warping.add(frame.image, output, region)
        self.frames_written += 1

    @property
    def input_change(self) -> float:
        """Mean absolute frame-to-frame change of the input inside the faces (0-255)."""
        return self.input_change_sum / self.pairs if self.pairs else 0.0

    @property
    def output_change(self) -> float:
        """The same for the output."""
        return self.output_change_sum / self.pairs if self.pairs else 0.0

    @property
    def ratio(self) -> float:
        """Output change over input change (``nan`` when nothing was measured)."""
        return self.output_change_sum / self.input_change_sum if self.input_change_sum > 0 else float("nan")

    def summary(self) -> dict[str, object]:
        return {
            "pairs": self.pairs,
            "input_change": self.input_change,
            "output_change": self.output_change,
            "ratio": self.ratio,
            "warping_error": self.warping.summary(),
        }


def _mean_change(now: np.ndarray, before: np.ndarray, region: np.ndarray) -> float:
    return float(np.abs(now[region].astype(np.int16) - before[region].astype(np.int16)).mean())
