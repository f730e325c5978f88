"""A pipeline stage, and how many frames it takes per call.

Every processing step of :mod:`p2c.stream.pipeline` (tracker, engine, compositor) is a
:class:`Stage`. The base class holds the defaults, so the pipeline calls every stage the same way:
``warm_up()`` before the first frame, ``process(frames)`` per batch, ``close()`` once at the end.

A stage gets one frame per call unless its ``batch_policy`` says otherwise. Offline, the engine
stage waits until it holds ``batch_size`` crops (throughput is all that counts); live, it takes
whatever is already queued and never waits longer than ``max_wait_s`` (latency counts more).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from p2c.stream.frame import Frame
from p2c.stream.queues import Closed, FrameQueue

__all__ = ["BatchPolicy", "Stage", "collect"]


@dataclass(frozen=True)
class BatchPolicy:
    """How many frames a stage takes per call.

    It takes frames until it holds ``max_frames`` frames or ``max_crops`` face crops, or
    ``max_wait_s`` has passed since the first frame (``None``: wait for as long as it takes, the
    offline choice). The default, one frame per call, is what ordinary stages get.
    """

    max_frames: int = 1
    max_crops: int | None = None
    max_wait_s: float | None = 0.0

    def __post_init__(self) -> None:
        if self.max_frames < 1:
            raise ValueError(f"BatchPolicy.max_frames must be >= 1, got {self.max_frames}")
        if self.max_crops is not None and self.max_crops < 1:
            raise ValueError(f"BatchPolicy.max_crops must be >= 1 or None, got {self.max_crops}")
        if self.max_wait_s is not None and self.max_wait_s < 0:
            raise ValueError(f"BatchPolicy.max_wait_s must be >= 0 or None, got {self.max_wait_s}")

    @classmethod
    def offline(cls, batch_size: int) -> BatchPolicy:
        """Fill batches of ``batch_size`` crops; frames without faces cap how many frames wait."""
        return cls(max_frames=2 * batch_size, max_crops=batch_size, max_wait_s=None)

    @classmethod
    def live(cls, batch_size: int, max_wait_s: float = 0.0) -> BatchPolicy:
        """Batch only what is already waiting: never hold a frame back for a fuller batch."""
        return cls(max_frames=batch_size, max_crops=batch_size, max_wait_s=max_wait_s)


class Stage(ABC):
    """One processing step. ``process`` gets frames in stream order and returns them, in order.

    Contract: a stage may add to frames but returns every frame it got (dropping is the queues'
    job); ``warm_up``, every ``process`` call and ``close`` run in one thread, the stage's own;
    ``close`` runs exactly once, however the run ends, also when ``warm_up`` was never called.
    """

    name: str = "stage"
    batch_policy: BatchPolicy = BatchPolicy()

    def warm_up(self) -> None:
        """Load models before the first frame, so a live frame does not wait for them (default: nothing)."""
        return None

    @abstractmethod
    def process(self, frames: list[Frame]) -> list[Frame]:
        """Add to ``frames`` and return them, in order."""

    def close(self) -> None:
        """Release what the stage holds (default: nothing)."""
        return None


def _crop_count(frames: Sequence[Frame]) -> int:
    return sum(len(frame.faces) for frame in frames)


def collect(inbox: FrameQueue[Frame], policy: BatchPolicy, cancel: threading.Event) -> list[Frame]:
    """Take the next frames from ``inbox`` under ``policy``; ``[]`` at the end of the stream."""
    try:
        frames = [inbox.get(cancel=cancel)]
    except Closed:
        return []
    deadline = None if policy.max_wait_s is None else time.monotonic() + policy.max_wait_s
    while len(frames) < policy.max_frames and (
        policy.max_crops is None or _crop_count(frames) < policy.max_crops
    ):
        if deadline is None:
            try:
                frames.append(inbox.get(cancel=cancel))
            except Closed:
                break
            continue
        left = deadline - time.monotonic()
        item = inbox.get_nowait() if left <= 0 else _get_or_none(inbox, left, cancel)
        if item is None:
            break
        frames.append(item)
    return frames


def _get_or_none(inbox: FrameQueue[Frame], timeout: float, cancel: threading.Event) -> Frame | None:
    try:
        return inbox.get(timeout=timeout, cancel=cancel)
    except (Closed, TimeoutError):
        return None
