"""The batch worker: one Ray actor per GPU (or per machine), holding a warm engine.

The actor creates its engine once, in :meth:`BatchWorker.start` (or on its first file after a
restart), and converts one file at a time with it: never a reload or a recompile per file.
:meth:`BatchWorker.convert` is a Ray streaming generator: while the file converts in a thread it
yields :class:`Progress` messages (at most a few a second) and, last, one :class:`Outcome`.
An input it cannot use (corrupt, no face) is a ``failed`` outcome, not an exception, so one bad
file never costs the worker. The class is plain Python: the driver wraps it with ``ray.remote``,
and tests can run it in-process.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from p2c.batch.config import WorkerSettings
from p2c.batch.conversions import Converted, composite_image, convert_video
from p2c.batch.jobs import Job, Outcome, Progress, WorkerInfo
from p2c.errors import P2CError

__all__ = ["BatchWorker", "CancelledError"]

logger = logging.getLogger(__name__)

# How often the generator wakes up to check for a cancellation, and the least time between two
# progress messages (each one is a Ray object: a message per frame would cost more than the frame).
_TICK_S = 0.1
_REPORT_EVERY_S = 0.5


class CancelledError(Exception):
    """The driver asked for this file to stop (Ctrl-C); its output is not written."""


def _cancel_requested() -> bool:
    """Whether Ray was asked to cancel the task this thread runs (``ray.cancel``); False outside Ray.

    Only asked inside a connected Ray worker: elsewhere Ray's API would connect to (or start) a
    cluster on first use.
    """
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return False
    try:
        return bool(ray.get_runtime_context().is_canceled())
    except (AttributeError, RuntimeError):
        return False


class BatchWorker:
    """Converts files on an engine created once per process. Not thread-safe: one file at a time."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self._engine: Any = None
        self._aligner: Any = None
        self._loads = 0
        self._engine_seconds = 0.0

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> WorkerInfo:
        """Create the engine now (the driver waits for every worker before the first file)."""
        self._warm_engine()
        return self.info()

    def info(self) -> WorkerInfo:
        engine = self._engine
        return WorkerInfo(
            host=socket.gethostname(),
            pid=os.getpid(),
            device=str(getattr(engine, "device", "")),
            backend=str(getattr(engine, "name", "")),
            precision=str(getattr(engine, "precision", "")),
            engine_loads=self._loads,
            engine_seconds=self._engine_seconds,
        )

    def stop(self) -> None:
        """Release the engine and the face models (the process may be reused by Ray)."""
        for resource in (self._engine, self._aligner):
            if resource is not None:
                resource.close()
        self._engine = self._aligner = None

    def _warm_engine(self) -> Any:
        if self._engine is None:
            from p2c.engine import create_engine

            started = time.perf_counter()
            self._engine = create_engine(self.settings.weights, self.settings.engine)
            self._engine_seconds = time.perf_counter() - started
            self._loads += 1
            logger.info(
                "engine %s on %s ready in %.1f s",
                self._engine.name,
                self._engine.device,
                self._engine_seconds,
            )
        return self._engine

    def _warm_aligner(self) -> Any:
        if self._aligner is None:
            from p2c.stream.faces import AlignerConfig, FaceAligner

            video = self.settings.video
            self._aligner = FaceAligner(AlignerConfig(max_faces=video.max_faces, segment=video.segment))
        return self._aligner

    # -- converting ---------------------------------------------------------------------------

    def convert(self, job: Job) -> Iterator[Progress | Outcome]:
        """Convert ``job``: yields :class:`Progress` while it runs, then one :class:`Outcome`."""
        events: queue.SimpleQueue[Progress | Outcome] = queue.SimpleQueue()
        cancel = threading.Event()
        thread = threading.Thread(
            target=self._attempt, args=(job, events, cancel), name="p2c-batch-convert", daemon=True
        )
        thread.start()
        try:
            yield from self._relay(events, cancel)
        finally:
            # Also when the caller goes away or Ray interrupts this generator: the conversion
            # stops at its next frame and removes its temporary file before the thread ends.
            cancel.set()
            thread.join()

    def _relay(self, events: queue.SimpleQueue[Progress | Outcome], cancel: threading.Event) -> Iterator[Any]:
        pending = 0
        last_report = time.monotonic()
        while True:
            if _cancel_requested():
                cancel.set()
            try:
                event = events.get(timeout=_TICK_S)
            except queue.Empty:
                event = None
            if isinstance(event, Outcome):
                if pending:
                    yield Progress(pending)
                yield event
                return
            if isinstance(event, Progress):
                pending += event.frames
            if pending and time.monotonic() - last_report >= _REPORT_EVERY_S:
                yield Progress(pending)
                pending, last_report = 0, time.monotonic()

    def _attempt(
        self, job: Job, events: queue.SimpleQueue[Progress | Outcome], cancel: threading.Event
    ) -> None:
        started = time.perf_counter()
        try:
            converted = self._run(job, events, cancel)
            outcome = Outcome(
                "done", frames=converted.frames, faces=converted.faces, damaged=converted.damaged
            )
        except CancelledError:
            outcome = Outcome("interrupted")
        except (P2CError, OSError) as error:
            outcome = Outcome("failed", error=str(error))
        except Exception as error:  # a bug: report it with its traceback, and go on with the next file
            outcome = Outcome(
                "failed",
                error=f"unexpected {type(error).__name__}: {error}",
                detail=traceback.format_exc(),
            )
        seconds = time.perf_counter() - started
        events.put(
            Outcome(
                outcome.status,
                frames=outcome.frames,
                faces=outcome.faces,
                damaged=outcome.damaged,
                seconds=seconds,
                error=outcome.error,
                detail=outcome.detail,
                worker=self.info(),
            )
        )

    def _run(
        self, job: Job, events: queue.SimpleQueue[Progress | Outcome], cancel: threading.Event
    ) -> Converted:
        def on_frame() -> None:
            if cancel.is_set():
                raise CancelledError
            events.put(Progress(1))

        if cancel.is_set():
            raise CancelledError
        engine = self._warm_engine()
        source, target = Path(job.source), Path(job.target)
        target.parent.mkdir(parents=True, exist_ok=True)
        settings = self.settings
        if job.kind == "video":
            return convert_video(
                engine, source, target, settings.video, settings.start, settings.duration, on_frame
            )
        return composite_image(engine, self._warm_aligner(), source, target)
