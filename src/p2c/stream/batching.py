"""Batching: the crops of every face of a frame, and offline of several frames, as one engine call.

A generator call has a fixed overhead (Python, kernel launches, host<->device copies), so one call
on eight crops is much cheaper than eight calls on one. Offline, the engine stage waits until it
holds ``batch_size`` crops (or the stream ends): throughput is all that counts. Live, it takes
whatever is already queued and never waits longer than ``max_wait_s``: latency counts more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from p2c.stream.frame import Frame
from p2c.stream.queues import Closed, FrameQueue

__all__ = ["BatchPolicy", "EngineStage", "collect"]


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


BatchRunner = Callable[[np.ndarray], np.ndarray]


class EngineStage:
    """Run every face crop of the collected frames through the engine in one call.

    ``engine`` is a :class:`p2c.engine.Backend` (anything with ``run(batch) -> batch``); the crops
    convert to the engine's ``N x 3 x S x S`` float range and back with p2c.engine's converters.
    """

    name = "engine"

    def __init__(self, engine: object, batch_policy: BatchPolicy) -> None:
        self.engine = engine
        self.batch_policy = batch_policy
        self.batches = 0
        self.crops = 0

    def warm_up(self, crop_size: int = 256) -> None:
        """One call on a blank crop: first-call costs (allocation, kernel choice) before the clock."""
        self.engine.run(np.zeros((1, 3, crop_size, crop_size), np.float32))  # type: ignore[attr-defined]

    def process(self, frames: list[Frame]) -> list[Frame]:
        faces = [face for frame in frames for face in frame.faces]
        if not faces:
            return frames
        from p2c.engine import batch_to_images, images_to_batch

        batch = images_to_batch([face.crop for face in faces])
        cartoons = batch_to_images(self.engine.run(batch))  # type: ignore[attr-defined]
        if len(cartoons) != len(faces):
            raise RuntimeError(f"the engine returned {len(cartoons)} images for {len(faces)} crops")
        for face, cartoon in zip(faces, cartoons, strict=True):
            face.cartoon = cartoon
        self.batches += 1
        self.crops += len(faces)
        return frames
