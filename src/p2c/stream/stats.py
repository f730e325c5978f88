"""What a pipeline run reports: frames in and out, drops, lateness, damage, faces, time per stage.

Every stage thread adds to one :class:`PipelineStats` under a lock. Latencies are kept in a
bounded window so a long live session does not grow memory; percentiles are over that window.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

__all__ = ["PipelineStats", "StatsSnapshot"]

_LATENCY_WINDOW = 4096


@dataclass(frozen=True)
class StatsSnapshot:
    """A consistent copy of the counters at one moment (what status lines and summaries print)."""

    frames_in: int
    frames_out: int
    dropped: int
    late: int
    damaged: int
    faces: int
    detections: int
    tracked_frames: int
    elapsed_s: float
    fps: float
    latency_p50_ms: float
    latency_p95_ms: float
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class PipelineStats:
    """Thread-safe counters for one run."""

    def __init__(self, late_after_s: float = 0.25) -> None:
        self.late_after_s = late_after_s
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._first_out: float | None = None
        self.frames_in = 0
        self.frames_out = 0
        self.dropped = 0
        self.late = 0
        self.damaged = 0
        self.faces = 0
        self.detections = 0
        self.tracked_frames = 0
        self._latencies: deque[float] = deque(maxlen=_LATENCY_WINDOW)
        self._stage_seconds: dict[str, float] = {}

    def add(self, **counts: int) -> None:
        """Add to named counters, e.g. ``stats.add(dropped=1)``."""
        with self._lock:
            for name, value in counts.items():
                if name.startswith("_") or not isinstance(getattr(self, name, None), int):
                    raise AttributeError(f"PipelineStats has no counter {name!r}")
                setattr(self, name, getattr(self, name) + value)

    def add_stage_time(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._stage_seconds[stage] = self._stage_seconds.get(stage, 0.0) + seconds

    def frame_done(self, arrived: float, now: float | None = None) -> float:
        """Count a frame handed to the sinks; returns its end-to-end latency in seconds."""
        now = time.monotonic() if now is None else now
        latency = max(now - arrived, 0.0)
        with self._lock:
            if self._first_out is None:
                self._first_out = now
            self.frames_out += 1
            self._latencies.append(latency)
            if latency > self.late_after_s:
                self.late += 1
        return latency

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            elapsed = time.monotonic() - self._started
            latencies = np.asarray(self._latencies, dtype=np.float64)
            p50, p95 = (np.percentile(latencies, [50, 95]) * 1000.0) if latencies.size else (0.0, 0.0)
            return StatsSnapshot(
                frames_in=self.frames_in,
                frames_out=self.frames_out,
                dropped=self.dropped,
                late=self.late,
                damaged=self.damaged,
                faces=self.faces,
                detections=self.detections,
                tracked_frames=self.tracked_frames,
                elapsed_s=elapsed,
                fps=self.frames_out / elapsed if elapsed > 0 else 0.0,
                latency_p50_ms=float(p50),
                latency_p95_ms=float(p95),
                stage_seconds=dict(self._stage_seconds),
            )
