"""What a pipeline run reports: frames in and out, drops, lateness, damage, faces, time per stage.

Every stage thread adds to one :class:`PipelineStats` under a lock. Latencies are kept in a
bounded window so a long live session does not grow memory; percentiles are over that window.
The clock starts at :meth:`PipelineStats.start` (the pipeline calls it once the models are
loaded), so fps counts the run, not the start-up.

Per stage it keeps the seconds spent in the stage's calls (wall), the CPU seconds of the stage's
own thread (``time.thread_time``: native helper threads such as MediaPipe's graph threads or
onnxruntime's pool are not in it) and how many frames the stage handled, so a live run that drops
frames still gets per-frame figures. :meth:`StatsSnapshot.to_report` is the JSON form
(``p2c-stream --stats-json``); :func:`write_stats_json` writes it atomically.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from p2c.files import atomic_write

__all__ = ["PipelineStats", "StatsSnapshot", "write_stats_json"]

_LATENCY_WINDOW = 4096


@dataclass(frozen=True)
class StatsSnapshot:
    """A consistent copy of the counters at one moment (what status lines and summaries print).

    ``policy_level`` / ``policy`` say what the adaptive live policy has lowered (0 / "" when
    nothing); ``adaptations`` counts its changes of level.
    """

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
    latency_max_ms: float = 0.0
    stage_cpu_seconds: dict[str, float] = field(default_factory=dict)
    stage_frames: dict[str, int] = field(default_factory=dict)
    segmentations: int = 0
    policy_level: int = 0
    policy: str = ""
    adaptations: int = 0

    def to_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def stage_ms_per_frame(self) -> dict[str, dict[str, float]]:
        """Per stage: wall and own-thread CPU milliseconds per frame it handled, and that count."""
        out = {}
        for name, seconds in self.stage_seconds.items():
            frames = self.stage_frames.get(name, 0)
            per = 1000.0 / frames if frames else 0.0
            out[name] = {
                "frames": frames,
                "wall_ms_per_frame": seconds * per,
                "cpu_ms_per_frame": self.stage_cpu_seconds.get(name, 0.0) * per,
            }
        return out

    def to_report(self) -> dict[str, Any]:
        """The JSON form: counts, delivered fps, latency from capture to output, stages, policy."""
        return {
            "frames": {
                "in": self.frames_in,
                "out": self.frames_out,
                "dropped": self.dropped,
                "late": self.late,
                "damaged": self.damaged,
            },
            "fps": self.fps,
            "elapsed_s": self.elapsed_s,
            "latency_ms": {
                "p50": self.latency_p50_ms,
                "p95": self.latency_p95_ms,
                "max": self.latency_max_ms,
            },
            "faces": self.faces,
            "detections": self.detections,
            "segmentations": self.segmentations,
            "tracked_frames": self.tracked_frames,
            "stages": self.stage_ms_per_frame(),
            "policy": {"level": self.policy_level, "lowered": self.policy, "changes": self.adaptations},
        }


def write_stats_json(path: str | os.PathLike[str], report: dict[str, Any]) -> Path:
    """Write ``report`` as JSON to ``path`` atomically (a temporary file, then a rename)."""
    with atomic_write(path) as file:
        file.write(json.dumps(report, indent=2) + "\n")
    return Path(path)


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
        self.segmentations = 0
        self.adaptations = 0
        self._latencies: deque[float] = deque(maxlen=_LATENCY_WINDOW)
        self._latency_max = 0.0
        self._stage_seconds: dict[str, float] = {}
        self._stage_cpu: dict[str, float] = {}
        self._stage_frames: dict[str, int] = {}
        self._policy_level = 0
        self._policy = ""

    @property
    def policy_level(self) -> int:
        """The adaptive live policy's level now (0: nothing lowered)."""
        with self._lock:
            return self._policy_level

    def start(self, now: float | None = None) -> None:
        """Start the clock fps is measured on (the pipeline calls it once its models are loaded)."""
        with self._lock:
            self._started = time.monotonic() if now is None else now

    def add(self, **counts: int) -> None:
        """Add to named counters, e.g. ``stats.add(dropped=1)``."""
        with self._lock:
            for name, value in counts.items():
                if name.startswith("_") or not isinstance(getattr(self, name, None), int):
                    raise AttributeError(f"PipelineStats has no counter {name!r}")
                setattr(self, name, getattr(self, name) + value)

    def add_stage_time(self, stage: str, seconds: float, cpu_seconds: float = 0.0, frames: int = 1) -> None:
        """Count one call of ``stage``: wall ``seconds``, its thread's ``cpu_seconds``, ``frames`` handled."""
        with self._lock:
            self._stage_seconds[stage] = self._stage_seconds.get(stage, 0.0) + seconds
            self._stage_cpu[stage] = self._stage_cpu.get(stage, 0.0) + cpu_seconds
            self._stage_frames[stage] = self._stage_frames.get(stage, 0) + frames

    def set_policy(self, level: int, lowered: str) -> None:
        """What the adaptive live policy runs at now (level 0, ``""``: nothing lowered)."""
        with self._lock:
            if level != self._policy_level:
                self.adaptations += 1
            self._policy_level, self._policy = level, lowered

    def frame_done(self, arrived: float, now: float | None = None) -> float:
        """Count a frame handed to the sinks; returns its end-to-end latency in seconds."""
        now = time.monotonic() if now is None else now
        latency = max(now - arrived, 0.0)
        with self._lock:
            if self._first_out is None:
                self._first_out = now
            self.frames_out += 1
            self._latencies.append(latency)
            self._latency_max = max(self._latency_max, latency)
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
                latency_max_ms=1000.0 * self._latency_max,
                stage_cpu_seconds=dict(self._stage_cpu),
                stage_frames=dict(self._stage_frames),
                segmentations=self.segmentations,
                policy_level=self._policy_level,
                policy=self._policy,
                adaptations=self.adaptations,
            )
