"""Just-in-time pulling for live runs: a stage starts a frame only when the next stage will want it.

Live queues keep only the newest frame at every hop (:mod:`p2c.stream.queues`), so a frame never
waits behind a stale one. But when a later stage is the slow one (the generator with four faces,
say), an earlier stage that works flat out tracks frames that are then replaced before the slow
stage takes them: its work is thrown away, and on a 2-core machine that work is CPU the slow
stage needed. Measured under load on the build machine: the tracker handled 102 frames of a run
whose engine took 47.

So in a live run a stage waits before taking its next frame until its outbox is empty and the
next stage is expected to finish its current call within the time this stage's own calls take
(:func:`wait_until_wanted`); then it takes the newest frame, which is ready just as the next stage
asks for one. Both expectations are running means of the stages' call times (:class:`StageClock`).
Frames then drop where a camera drops them, at the source, and the work done is work shown.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sized

__all__ = ["StageClock", "wait_until_wanted"]

_POLL_S = 0.002  # how often a waiting stage looks again (seconds)
_MEAN_WEIGHT = 0.2  # weight of the newest call in the running mean of call times


class StageClock:
    """When a stage started its current call (``None``: waiting for frames) and the running mean
    of how long its calls take. Written by the stage's thread, read by its upstream neighbour."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.busy_since: float | None = None
        self.mean_s = 0.0

    def begin(self, now: float | None = None) -> None:
        with self._lock:
            self.busy_since = time.monotonic() if now is None else now

    def end(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if self.busy_since is not None:
                took = now - self.busy_since
                self.mean_s = took if self.mean_s == 0 else self.mean_s + _MEAN_WEIGHT * (took - self.mean_s)
            self.busy_since = None

    def due_in(self, now: float | None = None) -> float:
        """Seconds until the current call is expected to end (0 when idle or already overdue)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self.busy_since is None:
                return 0.0
            return max(self.busy_since + self.mean_s - now, 0.0)


def wait_until_wanted(
    outbox: Sized, mine: StageClock, downstream: StageClock, cancel: threading.Event
) -> None:
    """Block until ``outbox`` is empty and ``downstream`` is due to want a frame within the time
    one of ``mine``'s calls takes (or ``cancel`` is set)."""
    while not cancel.is_set():
        if len(outbox) == 0:
            early = downstream.due_in() - mine.mean_s
            if early <= 0:
                return
            time.sleep(min(early, _POLL_S * 5))
        else:
            time.sleep(_POLL_S)
