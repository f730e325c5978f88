"""A webcam that never stalls the stream: a "camera lost" card while it is gone, and hot-plug.

A camera can stop delivering for a while (a USB hub resets, the laptop wakes from sleep) or for
good (unplugged). :class:`WatchedCamera` reads the camera in a thread of its own, so the pipeline
is never stuck inside a blocked read:

- while no frame has come for ``stall_s`` (1 s), the stream carries a "camera lost" card at the
  camera's rate instead, so a virtual camera keeps showing something, and says so (never the
  user's uncartooned face);
- a camera that fails ``_MAX_FAILED_READS`` reads in a row, or gives nothing for ``lost_s``
  (3 s), is gone: without ``reconnect`` the stream ends with ``disconnected`` set (the command says
  so in one line); with it, the camera is opened again every ``retry_s`` (0.5 s) until it is back,
  and frames flow again at once (within 2 s of the camera's return, ``retry_s`` plus opening it).

Frames carry their own clock (microseconds since the stream began), so a recording keeps the
outage's length. A camera that comes back in another size is resized to the first one's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import cv2
import numpy as np

from p2c.errors import InputNotFoundError
from p2c.resources import Closeable
from p2c.stream.frame import MICROSECONDS, Frame
from p2c.stream.sources import VideoInfo, WebcamSource

__all__ = ["WatchedCamera", "camera_lost_card"]

logger = logging.getLogger(__name__)

_MAX_FAILED_READS = 30
_CARD_GREY = 40


def camera_lost_card(width: int, height: int) -> np.ndarray:
    """A dark card saying the camera is lost, ``height`` x ``width`` RGB."""
    card = np.full((height, width, 3), _CARD_GREY, np.uint8)
    lines = ["camera lost", "waiting for it to come back"]
    scale = max(width / 900.0, 0.3)
    thickness = max(round(2 * scale), 1)
    heights = [cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0] for line in lines]
    y = (height - sum(h for _, h in heights) * 2) // 2
    for line, (text_width, text_height) in zip(lines, heights, strict=True):
        y += text_height * 2
        x = max((width - text_width) // 2, 0)
        cv2.putText(
            card, line, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (230, 230, 230), thickness, cv2.LINE_AA
        )
    return card


class WatchedCamera(Closeable):
    """A :class:`WebcamSource` read in a thread, with cards while it stalls and, with ``reconnect``,
    reopened when it comes back. ``camera`` makes a fresh (unopened) :class:`WebcamSource`."""

    name = "webcam"
    live = True

    def __init__(
        self,
        camera: Callable[[], WebcamSource],
        reconnect: bool = False,
        stall_s: float = 1.0,
        lost_s: float = 3.0,
        retry_s: float = 0.5,
    ) -> None:
        if not 0 < stall_s <= lost_s:
            raise ValueError(f"WatchedCamera needs 0 < stall_s <= lost_s, got {stall_s} and {lost_s}")
        if retry_s <= 0:
            raise ValueError(f"WatchedCamera.retry_s must be positive, got {retry_s}")
        self._make = camera
        self.reconnect = reconnect
        self.stall_s, self.lost_s, self.retry_s = stall_s, lost_s, retry_s
        self.damaged = 0
        self.disconnected = False
        self.reconnections = 0
        self.live_frames = 0  # frames the camera gave (the stream may skip stale ones, and adds cards)
        self.info: VideoInfo
        self._camera: WebcamSource | None = None
        self._card: np.ndarray | None = None
        self._cond = threading.Condition()
        self._latest: np.ndarray | None = None
        self._last_frame_at = 0.0
        self._gone = False  # the reader gave up on this camera (no reconnect)
        self._stopping = threading.Event()
        self._reader: threading.Thread | None = None

    @classmethod
    def of(cls, webcam: WebcamSource, reconnect: bool = False) -> WatchedCamera:
        """Watch the camera ``webcam`` names (opened afresh each time it comes back)."""
        width, height, fps = webcam.requested
        return cls(
            lambda: WebcamSource(webcam.device, width, height, fps, webcam.mirror), reconnect=reconnect
        )

    @property
    def device(self) -> int | str:
        return self._make().device if self._camera is None else self._camera.device

    def open(self) -> None:
        """Open the camera (one-line ``InputNotFoundError`` if it is not there) and start reading."""
        if self._reader is not None:
            return
        camera = self._make()
        camera.open()
        self._camera = camera
        self.info = camera.info
        self._card = camera_lost_card(self.info.width, self.info.height)
        self._last_frame_at = time.monotonic()
        self._reader = threading.Thread(target=self._read_forever, name="p2c-camera", daemon=True)
        self._reader.start()

    def close(self) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._reader is not None:
            self._reader.join(timeout=2.0)
            self._reader = None
        if self._camera is not None:
            self._camera.close()
            self._camera = None

    # -- the reader thread ------------------------------------------------------------------------

    def _read_forever(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            camera = self._camera
            image = camera.read_rgb() if camera is not None else None
            if self._stopping.is_set():
                return
            if image is not None:
                failures = 0
                self._deliver(image)
                continue
            failures += 1
            silent = time.monotonic() - self._last_frame_at
            if failures < _MAX_FAILED_READS and silent < self.lost_s:
                time.sleep(1 / max(self.info.fps, 1.0))
                continue
            logger.warning("camera %s stopped sending frames", self.device)
            if not self.reconnect:
                with self._cond:
                    self._gone = True
                    self._cond.notify_all()
                return
            self._reopen()
            failures = 0

    def _deliver(self, image: np.ndarray) -> None:
        if image.shape[:2] != (self.info.height, self.info.width):
            image = cv2.resize(image, (self.info.width, self.info.height), interpolation=cv2.INTER_AREA)
        with self._cond:
            self._latest = image
            self.live_frames += 1
            self._last_frame_at = time.monotonic()
            self._cond.notify_all()

    def _reopen(self) -> None:
        """Release the camera and open it again every ``retry_s`` until it answers (or we stop)."""
        if self._camera is not None:
            self._camera.close()
            self._camera = None
        while not self._stopping.wait(self.retry_s):
            camera = self._make()
            try:
                camera.open()
            except InputNotFoundError:
                continue
            self._camera = camera
            self.reconnections += 1
            logger.warning("camera %s is back", camera.device)
            return

    # -- the stream -------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        if self._reader is None or self._card is None:
            raise RuntimeError("open the source first (use it in a with block)")
        start = time.monotonic()
        index = 0
        card_every = 1 / max(self.info.fps, 1.0)
        while True:
            with self._cond:
                deadline = self._last_frame_at + self.stall_s
                while self._latest is None and not self._gone and not self._stopping.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                image, self._latest = self._latest, None
                gone = self._gone
            if image is None and gone:
                self.disconnected = True
                return
            if self._stopping.is_set():
                return
            if image is None:  # stalled: a card now, then one per frame slot until frames return
                image = self._card.copy()
                with self._cond:
                    self._cond.wait_for(
                        lambda: self._latest is not None or self._gone or self._stopping.is_set(),
                        timeout=card_every,
                    )
            now = time.monotonic()
            yield Frame(
                index=index, pts=round((now - start) * 1e6), time_base=MICROSECONDS, image=image, arrived=now
            )
            index += 1
