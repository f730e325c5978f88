"""An OpenCV preview window (``--preview``); 'q' or Esc stops the run, as does closing the window;
other keys go to ``on_key`` (the live controls, :mod:`p2c.stream.view`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from p2c.errors import OutputError
from p2c.stream.frame import Frame
from p2c.stream.sinks.base import FrameSink, OutputValue, SinkOption, SinkTarget, StopStream

__all__ = ["PreviewSink"]

_STOP_KEYS = {ord("q"), ord("Q"), 27}


class PreviewSink(FrameSink):
    """Show frames in a window. Must be written to from the main thread (the pipeline does)."""

    name = "preview"
    option = SinkOption("--preview", "show the result in a window ('q' or Esc stops)")

    def __init__(self, width: int, height: int, title: str = "p2c") -> None:
        super().__init__(width, height)
        self.title = title
        self.on_key: Callable[[str], object] | None = None
        self._open = False

    @classmethod
    def for_output(cls, value: OutputValue, target: SinkTarget) -> PreviewSink:
        return cls(target.width, target.height, title=target.title)

    def open(self) -> None:
        import cv2

        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error as error:
            raise OutputError(
                "cannot open a preview window (no display?); drop --preview or run it where a display is"
            ) from error
        self._open = True

    def _write(self, frame: Frame, image: np.ndarray) -> None:
        import cv2

        cv2.imshow(self.title, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF
        if key in _STOP_KEYS or cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            raise StopStream("preview closed")
        if key != 0xFF and self.on_key is not None:
            self.on_key(chr(key))

    def _close(self) -> None:
        if self._open:
            import cv2

            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
            self._open = False
