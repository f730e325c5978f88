"""What the outputs show, and the keys that change it while a live run goes on.

The pipeline makes each frame's cartoon; the *view* decides what the outputs get from it, at the
last moment, in the thread that feeds them (so nothing upstream restarts and a virtual camera
keeps its device open):

- ``strength`` in [0, 1]: the cartoon blended with the photo (:func:`blend_strength`); pixels
  outside the faces are the photo's either way, so only the faces change. 1 is the full cartoon;
- ``cartoon`` off: the original frame (a quick look at yourself without the filter);
- ``mirror``: flipped left-right, as a selfie view;
- ``overlay``: frame rate, latency, faces and the settings written on the frame.

:class:`LiveControls` holds these and maps keys onto them (:data:`KEYS`); the preview window passes
its keys, and :class:`StdinKeys` reads lines from standard input (one line's keys per frame), so a
terminal, a script or a test can drive a run. :class:`ViewedSinks` is the sink the pipeline
writes to: it applies the view and hands the frame to the real sinks.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from typing import Any, TextIO

import cv2
import numpy as np

from p2c.stream.frame import Frame
from p2c.stream.sinks.base import FrameSink, StopStream

__all__ = ["KEYS", "STRENGTH_STEP", "LiveControls", "StdinKeys", "ViewedSinks", "blend_strength"]

logger = logging.getLogger(__name__)

STRENGTH_STEP = 0.1
# Key -> what it does; the preview window and standard input share them.
KEYS = {
    "c": "cartoon on / off (the original frame)",
    "m": "mirror on / off",
    "+": f"stronger cartoon (+{STRENGTH_STEP:g}; also =)",
    "-": f"weaker cartoon (-{STRENGTH_STEP:g}; also _)",
    "s": "stats overlay on / off",
    "q": "quit (also Esc)",
}
_ALIASES = {"=": "+", "_": "-", "\x1b": "q", "C": "c", "M": "m", "S": "s", "Q": "q"}
_OVERLAY_EVERY_S = 0.5


def blend_strength(photo: np.ndarray, cartoon: np.ndarray, strength: float) -> np.ndarray:
    """``strength`` of ``cartoon`` over ``photo`` (same shape, uint8): 1 gives ``cartoon`` itself, 0 the
    photo; where the two are equal (outside the faces) the photo's pixels come back exactly."""
    if strength >= 1.0:
        return cartoon
    if strength <= 0.0:
        return photo
    return cv2.addWeighted(cartoon, strength, photo, 1.0 - strength, 0.0)


class LiveControls:
    """The view's settings, changed by keys from any thread (each change is one attribute write)."""

    def __init__(self, strength: float = 1.0, mirror: bool = False, overlay: bool = False) -> None:
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        self.strength = strength
        self.cartoon = True
        self.mirror = mirror
        self.overlay = overlay
        self.quit = False
        self.stats: Any = None  # the run's PipelineStats, for the overlay
        self._overlay_text = ""
        self._overlay_at = 0.0

    def press(self, key: str) -> bool:
        """Apply one key (see :data:`KEYS`); False for a key that means nothing."""
        key = _ALIASES.get(key, key)
        if key == "c":
            self.cartoon = not self.cartoon
        elif key == "m":
            self.mirror = not self.mirror
        elif key in "+-" and key:
            step = STRENGTH_STEP if key == "+" else -STRENGTH_STEP
            self.strength = round(min(1.0, max(0.0, self.strength + step)), 3)
        elif key == "s":
            self.overlay = not self.overlay
        elif key == "q":
            self.quit = True
        else:
            return False
        logger.info("%s", self.describe())
        return True

    def describe(self) -> str:
        cartoon = f"cartoon {self.strength:.1f}" if self.cartoon else "original"
        return (
            f"{cartoon}, mirror {'on' if self.mirror else 'off'}, overlay {'on' if self.overlay else 'off'}"
        )

    def view(self, frame: Frame) -> np.ndarray:
        """What the outputs show for ``frame``, by the settings now."""
        result = frame.result
        photo = frame.image
        if result.shape != photo.shape:  # side by side: original | cartoon
            photo = np.concatenate([photo, photo], axis=1)
        image = blend_strength(photo, result, self.strength) if self.cartoon else photo
        if self.mirror:
            image = np.ascontiguousarray(image[:, ::-1])
        if self.overlay:
            image = self._draw_overlay(image, len(frame.faces))
        return image

    def _draw_overlay(self, image: np.ndarray, faces: int) -> np.ndarray:
        now = time.monotonic()
        if now - self._overlay_at >= _OVERLAY_EVERY_S or not self._overlay_text:
            self._overlay_at = now
            line = ""
            if self.stats is not None:
                snap = self.stats.snapshot()
                line = f"{snap.fps:.1f} fps  latency {snap.latency_p50_ms:.0f} ms  dropped {snap.dropped}  "
            self._overlay_text = f"{line}faces {faces}  {self.describe()}"
        out = image.copy()
        scale = max(out.shape[0] / 720.0, 0.4)
        origin = (int(12 * scale), int(30 * scale))
        for colour, width in (((0, 0, 0), 4), ((255, 255, 255), 1)):
            thickness = max(1, round(width * scale))
            cv2.putText(
                out, self._overlay_text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale, colour, thickness
            )
        return out


class StdinKeys:
    """Keys from a text stream (standard input), a line at a time: each line's characters are
    pressed together, one line per frame, so ``printf 'm\\n\\n\\nc\\n'`` mirrors at one frame and
    shows the original three frames later. A stream that cannot be read (closed, captured) is
    simply not used."""

    def __init__(self, stream: TextIO) -> None:
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True, name="p2c-keys")
        self._thread.start()

    def _read(self, stream: TextIO) -> None:
        try:
            for line in stream:
                self.lines.put(line.rstrip("\r\n"))
        except (OSError, ValueError) as error:  # no usable standard input
            logger.debug("not reading keys from standard input: %s", error)

    def next_line(self) -> str | None:
        try:
            return self.lines.get_nowait()
        except queue.Empty:
            return None


class ViewedSinks(FrameSink):
    """The sink the pipeline writes to: the view of each frame (:class:`LiveControls`), handed to
    every real sink in turn. It opens and closes them with itself; ``q`` stops the run."""

    name = "view"

    def __init__(
        self, sinks: Sequence[FrameSink], controls: LiveControls, keys: StdinKeys | None = None
    ) -> None:
        if not sinks:
            raise ValueError("ViewedSinks needs at least one sink")
        super().__init__(sinks[0].width, sinks[0].height)
        self.sinks = list(sinks)
        self.controls = controls
        self.keys = keys
        self._stack = ExitStack()

    def open(self) -> None:
        with ExitStack() as opening:
            for sink in self.sinks:
                opening.enter_context(sink)
            self._stack = opening.pop_all()

    def write(self, frame: Frame) -> None:
        line = self.keys.next_line() if self.keys is not None else None
        for key in line or "":
            self.controls.press(key)
        if self.controls.quit:
            raise StopStream("quit")
        viewed = replace(frame, output=self.controls.view(frame))
        for sink in self.sinks:
            sink.write(viewed)
        self.frames_written += 1

    def _close(self) -> None:
        self._stack.close()
