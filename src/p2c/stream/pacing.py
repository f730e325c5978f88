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

A burst (a call that runs more than twice its stage's mean: a segmentation and a detection on one
frame, the machine busy elsewhere) has no end anyone can predict. Before, the stage upstream took
the overdue stage as about to want a frame, made one, and that frame then waited in the queue until
the burst was over (0.2 s behind a 0.25 s burst, in the pipeline's test). Now it holds off until the
burst ends and then takes the newest frame. The frame it was already making when the burst began
still waits; so a stage drops a frame that has waited in its queue more than twice as long as the
stage before takes to make one, and over 20 ms (:meth:`StageClock.is_stale`), and that stage, paced,
makes a fresh one at once. A burst then costs the one frame inside it, and no frame queues behind it
(the camera frames meanwhile drop at the source, the stale one in the queue).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sized

__all__ = ["StageClock", "wait_until_wanted"]

_POLL_S = 0.002  # how often a waiting stage looks again (seconds)
_MEAN_WEIGHT = 0.2  # weight of the newest call in the running mean of call times
_BURST = 2.0  # a call this many times its stage's mean is a burst (see the module docstring)
_STALE = 2.0  # a frame that waited this many of its maker's mean calls is stale,
_STALE_FLOOR_S = 0.02  # and at least this long (a fast stage's frame waits through scheduling jitter)


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

    def is_stale(self, waited_s: float) -> bool:
        """Whether a frame this stage made, then waiting ``waited_s`` seconds in the next queue,
        is stale: the stage would make a fresh one in under half that time (and it waited more
        than ``_STALE_FLOOR_S``)."""
        with self._lock:
            return self.mean_s > 0 and waited_s > max(_STALE * self.mean_s, _STALE_FLOOR_S)

    def in_burst(self, now: float | None = None) -> bool:
        """Whether the current call has run more than ``_BURST`` times the mean (when it will end
        is then anyone's guess)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return (
                self.busy_since is not None
                and self.mean_s > 0
                and now - self.busy_since > _BURST * self.mean_s
            )


def wait_until_wanted(
    outbox: Sized, mine: StageClock, downstream: StageClock, cancel: threading.Event
) -> None:
    """Block until ``outbox`` is empty and ``downstream`` is due to want a frame within the time
    one of ``mine``'s calls takes, and not in a burst (or ``cancel`` is set)."""
    while not cancel.is_set():
        if len(outbox) == 0 and not downstream.in_burst():
            early = downstream.due_in() - mine.mean_s
            if early <= 0:
                return
            time.sleep(min(early, _POLL_S * 5))
        else:
            time.sleep(_POLL_S)
