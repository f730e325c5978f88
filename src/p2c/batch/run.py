"""``run_batch``: the library function behind ``p2c-batch`` (and its benchmark).

Plan (find inputs, skip finished outputs) -> start Ray and the workers -> schedule the files ->
stop the workers and Ray -> write the summary beside the outputs. When nothing is left to
convert, Ray is not started at all.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any

from p2c.batch.cluster import (
    WorkerSlot,
    check_address,
    connect,
    disconnect,
    import_ray,
    plan_workers,
    start_workers,
    stop_workers,
)
from p2c.batch.config import ClusterConfig, WorkerSettings
from p2c.batch.inputs import BatchPlan, plan_batch
from p2c.batch.progress import BatchProgress
from p2c.batch.scheduler import Scheduler
from p2c.batch.summary import BatchSummary, FileRecord, write_summary
from p2c.errors import InputNotFoundError, OutputError

__all__ = ["run_batch"]

logger = logging.getLogger(__name__)


def _check_output(output: Path) -> None:
    if output.exists() and not output.is_dir():
        raise OutputError(f"output {output} is a file; give a folder (it is created if missing)")
    if not output.parent.is_dir():
        raise OutputError(f"output folder {output.parent} does not exist; create it first")


def _nodes(ray: Any) -> int:
    return sum(1 for node in ray.nodes() if node.get("Alive"))


def _describe_workers(slots: list[WorkerSlot], seconds: float) -> str:
    engines = sorted({f"{slot.info.backend} {slot.info.precision} on {slot.info.device}" for slot in slots})
    hosts = len({slot.info.host for slot in slots})
    return f"{len(slots)} worker(s) ready on {hosts} machine(s) in {seconds:.0f} s: {', '.join(engines)}"


def _convert(
    plan: BatchPlan,
    settings: WorkerSettings,
    cluster: ClusterConfig,
    summary: BatchSummary,
    progress: BatchProgress,
) -> None:
    """Start Ray and the workers, convert ``plan.jobs``, and stop them, Ctrl-C or not.

    A Ray this process already uses (``ray.init`` in a notebook) is used as it is and left running.
    """
    joined = import_ray().is_initialized()
    where = f"joining the Ray cluster at {cluster.address}" if cluster.address else "starting a local Ray"
    where = "on the Ray this process is connected to" if joined else where
    progress.line(f"{len(plan.jobs)} file(s) to convert, {len(plan.skipped)} already done; {where}")
    ray = None
    slots: list[WorkerSlot] = []
    try:
        began = time.monotonic()
        ray = connect(cluster)
        local = cluster.address is None and not joined
        worker_plan = plan_workers(cluster, ray.cluster_resources(), _nodes(ray), local)
        logger.debug("workers: %s", worker_plan)
        slots = start_workers(ray, worker_plan, settings)
        progress.line(_describe_workers(slots, time.monotonic() - began))
        progress.start(len(plan.jobs), sum(job.frames for job in plan.jobs))
        began = time.monotonic()
        scheduler = Scheduler(ray, slots, progress, retries=cluster.retries)
        summary.records.extend(scheduler.run(plan.jobs))
        summary.convert_s = time.monotonic() - began
        summary.workers = scheduler.workers
        summary.interrupted = scheduler.interrupted
    except KeyboardInterrupt:  # while Ray or the workers were starting
        summary.interrupted = True
    finally:
        progress.close()
        if ray is not None:
            try:
                stop_workers(ray, slots)
            except KeyboardInterrupt:
                pass
            finally:
                if not joined:
                    disconnect(ray)
    done = {record.source for record in summary.records}
    summary.records.extend(FileRecord.of(job, "not started") for job in plan.jobs if job.source not in done)


def run_batch(
    inputs: str | os.PathLike[str],
    output: str | os.PathLike[str],
    settings: WorkerSettings | None = None,
    cluster: ClusterConfig | None = None,
    show_progress: bool = True,
) -> BatchSummary:
    """Convert every video and photo ``inputs`` names into the mirrored tree under ``output``.

    ``inputs``: a folder, a glob or a text file of paths. Returns the summary (also written to
    ``output/p2c-batch-summary.json``); ``summary.exit_code`` is 0 when every file is done.
    Raises :class:`p2c.errors.P2CError` for what stops the whole run (no inputs, no cluster at the
    address, workers that cannot load the model).
    """
    settings = settings or WorkerSettings()
    if settings.weights is not None:
        from p2c.models.weights import detect_format

        weights = Path(settings.weights).expanduser().absolute()  # the workers may run elsewhere
        detect_format(weights)  # a file that is not a generator: one line, before Ray starts
        settings = dataclasses.replace(settings, weights=weights)
    cluster = cluster or ClusterConfig()
    output = Path(output).expanduser().absolute()
    _check_output(output)
    if cluster.address is not None:
        check_address(cluster.address)  # at once, before the inputs are read
    started = time.monotonic()
    plan = plan_batch(inputs, output, settings.start, settings.duration)
    if not (plan.jobs or plan.skipped or plan.problems):
        raise InputNotFoundError(f"no video or image found in {os.fspath(inputs)}")
    summary = BatchSummary(input=os.fspath(inputs), output=str(output))
    summary.records.extend(FileRecord.of(job, "skipped") for job in plan.skipped)
    summary.records.extend(
        FileRecord(source, "", "", "failed", error=reason) for source, reason in plan.problems
    )
    output.mkdir(exist_ok=True)
    progress = BatchProgress(enabled=show_progress)
    for source, reason in plan.problems:
        progress.line(f"failed: {source}: {reason}")
    if plan.jobs:
        _convert(plan, settings, cluster, summary, progress)
    summary.elapsed_s = time.monotonic() - started
    write_summary(summary, output)
    return summary
