"""The messages a batch run passes between the driver and its workers: plain, picklable dataclasses.

A :class:`Job` is one input file and the output it becomes. A worker converting it sends back
:class:`Progress` messages (frames done since the last one) and, last, one :class:`Outcome`;
each outcome carries the :class:`WorkerInfo` of the worker that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Job", "Kind", "Outcome", "Progress", "WorkerInfo"]

Kind = Literal["video", "image"]


@dataclass(frozen=True)
class Job:
    """Convert ``source`` into ``target`` (paths every worker can read and write).

    ``frames`` is the driver's estimate of the work (a video's frame count, 1 for a still); the
    progress bar and the scheduling order use it, the conversion does not.
    """

    index: int
    source: str
    target: str
    kind: Kind
    frames: int = 1


@dataclass(frozen=True)
class WorkerInfo:
    """Which process on which machine a worker is, and the engine it keeps warm.

    ``engine_loads`` counts the engines this process created: 1 for its whole life, however many
    files it converts (a restarted process starts again at 1).
    """

    host: str
    pid: int
    device: str = ""
    backend: str = ""
    precision: str = ""
    engine_loads: int = 0
    engine_seconds: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.host}:{self.pid}"


@dataclass(frozen=True)
class Progress:
    """``frames`` more frames of the current file are written."""

    frames: int


@dataclass(frozen=True)
class Outcome:
    """How one attempt at a job ended: ``done``, ``failed`` (``error`` says why) or ``interrupted``.

    ``detail`` keeps the traceback of an unexpected error (a bug), for the summary file.
    """

    status: Literal["done", "failed", "interrupted"]
    frames: int = 0
    faces: int = 0
    damaged: int = 0
    seconds: float = 0.0
    error: str = ""
    detail: str = ""
    worker: WorkerInfo | None = None
