"""Hand files to workers, one at a time each, until every file is done, failed or stopped.

The driver keeps the queue; Ray runs the workers. Each free worker gets the next file, so fast
and slow machines both stay busy. A worker's streaming call reports frames as they are written
and ends with the file's :class:`Outcome`. When the worker's process dies (killed, out of memory,
machine lost) Ray raises ``RayActorError`` on that call: the file's temporary output is removed
and the file goes back to the front of the queue for another worker, up to ``retries`` times,
while Ray restarts the dead worker with a fresh engine. Ctrl-C cancels the running files (each
worker removes its temporary output), then stops; finished outputs stay.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from p2c.batch.cluster import WorkerSlot
from p2c.batch.inputs import remove_partials
from p2c.batch.jobs import Job, Outcome, Progress, WorkerInfo
from p2c.batch.progress import BatchProgress
from p2c.batch.summary import FileRecord

__all__ = ["Scheduler"]

logger = logging.getLogger(__name__)

_POLL_S = 0.5
# After Ctrl-C, how long running files get to stop by themselves before their workers are killed.
_CANCEL_GRACE_S = 15.0
# How long to wait before asking a restarting worker again whether its new process is up.
_PROBE_AGAIN_S = 1.0


@dataclass
class _Task:
    """A job and its tries so far: how many, the frames reported by the current one, and the
    workers whose process died on it (tried elsewhere when another worker is alive)."""

    job: Job
    attempts: int = 0
    reported: int = 0
    died_on: set[int] = field(default_factory=set)


@dataclass
class _Call:
    task: _Task
    slot: WorkerSlot


class Scheduler:
    """Runs jobs on ``slots`` (started workers) and returns one :class:`FileRecord` per job."""

    def __init__(self, ray: Any, slots: list[WorkerSlot], progress: BatchProgress, retries: int = 2) -> None:
        self.ray = ray
        self.slots = slots
        self.progress = progress
        self.retries = retries
        self.records: list[FileRecord] = []
        self.interrupted = False
        self._pending: deque[_Task] = deque()
        self._running: dict[Any, _Call] = {}
        self._probes: dict[Any, WorkerSlot] = {}
        self._probe_at: dict[int, float] = {}
        self._seen: dict[str, WorkerInfo] = {slot.info.name: slot.info for slot in slots}

    @property
    def workers(self) -> list[WorkerInfo]:
        """Every worker process that served this run, restarted ones included."""
        return list(self._seen.values())

    # -- the loop -----------------------------------------------------------------------------

    def run(self, jobs: list[Job]) -> list[FileRecord]:
        """Convert ``jobs``; on Ctrl-C stop cleanly and set ``interrupted``."""
        self._pending.extend(_Task(job) for job in jobs)
        try:
            while self._pending or self._running:
                self._probe_restarting()
                self._dispatch()
                if not (self._running or self._probes or self._probe_at):
                    self._fail_pending("no worker is left: every worker died; see Ray's logs")
                    break
                waiting = [*self._running, *self._probes]
                ready, _ = self.ray.wait(waiting, num_returns=1, timeout=_POLL_S)
                for ref in ready:
                    if ref in self._probes:
                        self._receive_probe(ref)
                    else:
                        self._receive(ref)
        except KeyboardInterrupt:
            self.interrupted = True
            self._stop_running()
            for task in self._pending:
                self.records.append(FileRecord.of(task.job, "not started", attempts=task.attempts))
            self._pending.clear()
        return self.records

    def _next_task_for(self, slot: WorkerSlot) -> _Task | None:
        """The first waiting task whose worker never died on it here; else, rather than stay idle
        while every other worker is occupied, a task retried from this worker (a new process)."""
        for task in self._pending:
            if slot.index not in task.died_on:
                return task
        others_free = any(other.free for other in self.slots if other is not slot)
        return None if others_free or not self._pending else self._pending[0]

    def _dispatch(self) -> None:
        for slot in self.slots:
            if not self._pending:
                return
            task = self._next_task_for(slot) if slot.free else None
            if task is None:
                continue
            self._pending.remove(task)
            remove_partials(Path(task.job.target))  # a previous run's, if its machine went down mid-file
            task.attempts += 1
            task.reported = 0
            slot.busy = True
            self._running[slot.handle.convert.remote(task.job)] = _Call(task, slot)

    def _receive(self, call_ref: Any) -> None:
        ray = self.ray
        call = self._running[call_ref]
        try:
            message = ray.get(next(call_ref))
        except StopIteration:
            message = Outcome("failed", error="the worker ended the file without a result (a bug)")
        except ray.exceptions.RayActorError as error:
            self._worker_died(call_ref, error)
            return
        except ray.exceptions.RayTaskError as error:
            message = Outcome(
                "failed", error=f"unexpected error in the worker: {error.cause!r}", detail=str(error)
            )
        if isinstance(message, Progress):
            call.task.reported += message.frames
            self.progress.advance(message.frames)
            return
        del self._running[call_ref]
        call.slot.busy = False
        if message.worker is not None:
            call.slot.info = self._seen[message.worker.name] = message.worker
        self._finish(call.task, message)

    # -- restarts -----------------------------------------------------------------------------

    def _probe_restarting(self) -> None:
        """Ask each restarting worker for its info: the answer comes once Ray has its new process up."""
        now = time.monotonic()
        for slot in self.slots:
            due = self._probe_at.get(slot.index)
            if due is not None and now >= due:
                del self._probe_at[slot.index]
                self._probes[slot.handle.info.remote()] = slot

    def _receive_probe(self, ref: Any) -> None:
        ray = self.ray
        slot = self._probes.pop(ref)
        try:
            info = ray.get(ref)
        except ray.exceptions.ActorUnavailableError:
            self._probe_at[slot.index] = time.monotonic() + _PROBE_AGAIN_S  # not up yet
            return
        except ray.exceptions.RayActorError:
            slot.alive = slot.restarting = False  # out of restarts
            return
        slot.restarting = False
        slot.info = self._seen[info.name] = info
        logger.debug("worker %d is back as %s", slot.index, info.name)

    def _finish(self, task: _Task, outcome: Outcome) -> None:
        job = task.job
        if outcome.status == "done":
            self.progress.advance(outcome.frames - task.reported)
            self.progress.correct_total(outcome.frames - job.frames)
            if outcome.damaged:
                self.progress.line(f"{job.source}: {outcome.damaged} damaged frames skipped")
        else:
            self.progress.correct_total(task.reported - job.frames)
            if outcome.status == "failed":
                self.progress.line(f"failed: {job.source}: {outcome.error}")
        self.progress.file_finished(failed=outcome.status == "failed")
        self.records.append(FileRecord.of(job, outcome.status, outcome, task.attempts))

    def _worker_died(self, call_ref: Any, error: BaseException) -> None:
        ray = self.ray
        call = self._running.pop(call_ref)
        task, slot = call.task, call.slot
        slot.busy = False
        # Unavailable: Ray is restarting the process (probe it until it answers). Died: gone for good.
        if isinstance(error, ray.exceptions.ActorUnavailableError):
            slot.restarting = True
            self._probe_at[slot.index] = time.monotonic() + _PROBE_AGAIN_S
        else:
            slot.alive = False
        remove_partials(Path(task.job.target))
        self.progress.correct_total(task.reported)  # those frames will be written again
        task.died_on.add(slot.index)
        source = task.job.source
        if task.attempts > self.retries:
            reason = (
                f"its worker died {task.attempts} times while converting it (the file may crash the decoder)"
            )
            self.progress.line(f"failed: {source}: {reason}")
            self.progress.correct_total(-task.job.frames)
            self.progress.file_finished(failed=True)
            self.records.append(
                FileRecord(
                    source,
                    task.job.target,
                    task.job.kind,
                    "failed",
                    attempts=task.attempts,
                    worker=slot.info.name,
                    error=reason,
                )
            )
            return
        self.progress.line(
            f"worker {slot.info.name} died while converting {source}; trying it again on another worker "
            f"(attempt {task.attempts + 1} of {self.retries + 1})"
        )
        self._pending.appendleft(task)

    def _fail_pending(self, reason: str) -> None:
        for task in self._pending:
            self.progress.line(f"failed: {task.job.source}: {reason}")
            self.progress.file_finished(failed=True)
            self.records.append(
                FileRecord.of(task.job, "failed", Outcome("failed", error=reason), task.attempts)
            )
        self._pending.clear()

    # -- Ctrl-C -------------------------------------------------------------------------------

    def _stop_running(self) -> None:
        """Cancel every running file, give the workers a moment to clean up, then kill the rest."""
        ray = self.ray
        if self._running:
            self.progress.line(
                f"interrupted: stopping {len(self._running)} running file(s); finished outputs are kept"
            )
        for call_ref in self._running:
            ray.cancel(call_ref)
        deadline = time.monotonic() + _CANCEL_GRACE_S
        try:
            while self._running and time.monotonic() < deadline:
                ready, _ = ray.wait(list(self._running), num_returns=1, timeout=_POLL_S)
                for call_ref in ready:
                    self._receive_after_cancel(call_ref)
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: stop waiting
        for call in self._running.values():
            ray.kill(call.slot.handle, no_restart=True)
            call.slot.alive = False
        # Give the killed processes a moment to be gone before their temporary files are removed.
        if self._running:
            ray.wait(list(self._running), num_returns=len(self._running), timeout=2.0)
        for call in self._running.values():
            remove_partials(Path(call.task.job.target))
            self.records.append(FileRecord.of(call.task.job, "interrupted", attempts=call.task.attempts))
        self._running.clear()

    def _receive_after_cancel(self, call_ref: Any) -> None:
        ray = self.ray
        call = self._running[call_ref]
        try:
            message = ray.get(next(call_ref))
        except (StopIteration, ray.exceptions.RayError):
            message = Outcome("interrupted")
        if isinstance(message, Progress):
            return
        del self._running[call_ref]
        call.slot.busy = False
        if message.status != "done":
            remove_partials(Path(call.task.job.target))
            message = Outcome("interrupted", worker=message.worker)
        self.records.append(FileRecord.of(call.task.job, message.status, message, call.task.attempts))
