"""What a batch run did, file by file: the JSON written beside the outputs and the one line on screen."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from p2c.batch.jobs import Job, Outcome, WorkerInfo
from p2c.files import atomic_write

__all__ = ["SUMMARY_NAME", "BatchSummary", "FileRecord", "Status", "write_summary"]

SUMMARY_NAME = "p2c-batch-summary.json"

Status = Literal["done", "skipped", "failed", "interrupted", "not started"]


@dataclass(frozen=True)
class FileRecord:
    """One input's fate. ``attempts`` counts the workers that tried it (more than one after a
    worker died); ``worker`` is the ``host:pid`` that made the output."""

    source: str
    target: str
    kind: str
    status: Status
    frames: int = 0
    faces: int = 0
    damaged: int = 0
    seconds: float = 0.0
    attempts: int = 0
    worker: str = ""
    error: str = ""
    detail: str = ""

    @classmethod
    def of(cls, job: Job, status: Status, outcome: Outcome | None = None, attempts: int = 0) -> FileRecord:
        if outcome is None:
            return cls(job.source, job.target, job.kind, status, attempts=attempts)
        return cls(
            job.source,
            job.target,
            job.kind,
            status,
            frames=outcome.frames,
            faces=outcome.faces,
            damaged=outcome.damaged,
            seconds=round(outcome.seconds, 3),
            attempts=attempts,
            worker=outcome.worker.name if outcome.worker else "",
            error=outcome.error,
            detail=outcome.detail,
        )


@dataclass
class BatchSummary:
    """Every file's record, the workers that ran, and the run's totals."""

    input: str
    output: str
    records: list[FileRecord] = field(default_factory=list)
    workers: list[WorkerInfo] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    elapsed_s: float = 0.0
    convert_s: float = 0.0
    interrupted: bool = False

    def count(self, status: Status) -> int:
        return sum(record.status == status for record in self.records)

    @property
    def frames(self) -> int:
        """Frames written by this run (stills count one each)."""
        return sum(record.frames for record in self.records if record.status == "done")

    @property
    def exit_code(self) -> int:
        """0 when every file is done or was already, 1 when any failed (130 when interrupted)."""
        if self.interrupted:
            return 130
        return 1 if self.count("failed") else 0

    def line(self) -> str:
        """The one-line summary shown at the end."""
        parts = [f"{self.count('done')} converted", f"{self.count('skipped')} skipped (already done)"]
        parts.append(f"{self.count('failed')} failed")
        stopped = self.count("interrupted") + self.count("not started")
        if self.interrupted or stopped:
            parts.append(f"{stopped} not finished (interrupted)")
        if not self.frames:
            return f"{', '.join(parts)}; {self.elapsed_s:.1f} s in all"
        fps = self.frames / self.convert_s if self.convert_s > 0 else 0.0
        return (
            f"{', '.join(parts)}; {self.frames} frames at {fps:.1f} frames/s, {self.elapsed_s:.1f} s in all"
        )

    def to_dict(self) -> dict[str, object]:
        statuses: tuple[Status, ...] = ("done", "skipped", "failed", "interrupted", "not started")
        return {
            "input": self.input,
            "output": self.output,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
            "elapsed_s": round(self.elapsed_s, 3),
            "convert_s": round(self.convert_s, 3),
            "interrupted": self.interrupted,
            "exit_code": self.exit_code,
            "counts": {status: self.count(status) for status in statuses},
            "frames": self.frames,
            "frames_per_s": round(self.frames / self.convert_s, 3) if self.convert_s > 0 else 0.0,
            "workers": [{**asdict(worker), "name": worker.name} for worker in self.workers],
            "files": [asdict(record) for record in self.records],
        }


def write_summary(summary: BatchSummary, folder: Path) -> Path:
    """Write ``p2c-batch-summary.json`` into ``folder`` (atomically); returns its path."""
    path = folder / SUMMARY_NAME
    with atomic_write(path) as stream:
        json.dump(summary.to_dict(), stream, indent=1)
        stream.write("\n")
    return path
