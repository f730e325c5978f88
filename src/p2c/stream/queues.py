"""A bounded frame queue with an explicit policy for when it is full.

``block``: the producer waits (files: every frame in, every frame out, in order).
``drop_oldest``: the oldest waiting frame is thrown away and counted, so a live pipeline always
works on the newest frame and latency never builds up behind a slow stage.

``queue.Queue`` cannot drop the oldest item atomically, and its blocking calls cannot be woken
by a stop request, hence this small class: one lock, one condition, a deque.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, Literal, TypeVar

__all__ = ["DROP_POLICIES", "Closed", "FrameQueue"]

T = TypeVar("T")
DropPolicy = Literal["block", "drop_oldest"]
DROP_POLICIES: tuple[str, ...] = ("block", "drop_oldest")
_POLL_S = 0.05


class Closed(Exception):  # noqa: N818 - end of stream, not an error
    """Raised by :meth:`FrameQueue.get` once the queue is closed and empty (end of stream)."""


class FrameQueue(Generic[T]):
    """Bounded FIFO between two pipeline stages.

    ``close()`` marks the end of the stream: ``get`` drains what is left and then raises
    :class:`Closed`. ``cancel`` (a :class:`threading.Event`) aborts waiting on both sides, which
    is how an error or Ctrl-C stops every stage within ``_POLL_S`` seconds.
    """

    def __init__(self, maxsize: int, policy: DropPolicy = "block", name: str = "queue") -> None:
        if maxsize < 1:
            raise ValueError(f"FrameQueue.maxsize must be >= 1, got {maxsize}")
        if policy not in DROP_POLICIES:
            raise ValueError(f"FrameQueue.policy must be one of {DROP_POLICIES}, got {policy!r}")
        self.maxsize = maxsize
        self.policy = policy
        self.name = name
        self.dropped = 0
        self.high_water = 0
        self._items: deque[T] = deque()
        self._closed = False
        self._cond = threading.Condition()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def put(self, item: T, cancel: threading.Event | None = None) -> T | None:
        """Add ``item``; return the item dropped to make room (``drop_oldest``), else ``None``.

        With ``block`` this waits for room, or returns without adding once ``cancel`` is set.
        """
        with self._cond:
            dropped: T | None = None
            while len(self._items) >= self.maxsize:
                if self.policy == "drop_oldest":
                    dropped = self._items.popleft()
                    self.dropped += 1
                    break
                if cancel is not None and cancel.is_set():
                    return None
                self._cond.wait(_POLL_S)
            self._items.append(item)
            self.high_water = max(self.high_water, len(self._items))
            self._cond.notify_all()
            return dropped

    def get(self, timeout: float | None = None, cancel: threading.Event | None = None) -> T:
        """Take the oldest item; raise :class:`Closed` at the end, ``TimeoutError`` after ``timeout``."""
        with self._cond:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._items:
                if self._closed or (cancel is not None and cancel.is_set()):
                    raise Closed(self.name)
                left = _POLL_S if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(self.name)
                self._cond.wait(min(_POLL_S, left))
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def get_nowait(self) -> T | None:
        """The oldest item, or ``None`` when nothing is waiting (the queue may still be open)."""
        with self._cond:
            if not self._items:
                return None
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed and not self._items

    def close(self) -> None:
        """End of stream: no more puts; readers drain what is queued."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
