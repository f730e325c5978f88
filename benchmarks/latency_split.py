"""Where a live frame's latency goes: work in the stages, or waiting in the queues between them.

Every frame carries :attr:`p2c.stream.frame.Frame.stages`: ``(stage, started, finished)`` on the
monotonic clock for each stage call it was in, the sinks' write last. Its latency, from
``arrived`` (capture) to the end of that write, splits into

- **work**: the stage calls it was in, end to end (a call on several frames counts whole for
  each: each of them waited for all of it);
- **queueing**: the rest, the time it waited before each stage for that stage to be free (the
  wait before the tracker includes the wait in the source's queue).

:func:`latency_split` gives percentiles of the three over a run, the split at the tail (the
frames at or above the p95 latency: how much of the p95 is queueing, how much is work) and per
stage the mean and p95 of the wait before it and of the work in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "STEADY_AFTER_S",
    "FrameTiming",
    "frame_timing",
    "latency_split",
    "percentiles",
    "steady_percentiles",
]

# Live latency is also given past start-up: frames captured from this long after the first one.
# The first frame's detection (60-70 ms at 720p here) and the queue behind it fill about 10
# frames, 3 % of a 300-frame run, which is what a call's first second costs, not its steady state.
STEADY_AFTER_S = 1.0


@dataclass(frozen=True)
class FrameTiming:
    """One frame's latency (seconds), its work, and per stage the wait before it and the work in it."""

    latency: float
    work: float
    waits: dict[str, float]
    works: dict[str, float]

    @property
    def queueing(self) -> float:
        return max(self.latency - self.work, 0.0)


def frame_timing(arrived: float, stages: Sequence[tuple[str, float, float]], done: float) -> FrameTiming:
    """The split of one frame that arrived at ``arrived`` and was done (written) at ``done``."""
    waits: dict[str, float] = {}
    works: dict[str, float] = {}
    ready = arrived
    for name, started, finished in stages:
        waits[name] = waits.get(name, 0.0) + max(started - ready, 0.0)
        works[name] = works.get(name, 0.0) + max(finished - started, 0.0)
        ready = finished
    return FrameTiming(max(done - arrived, 0.0), sum(works.values()), waits, works)


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p95 and max, in milliseconds (zeros when empty)."""
    if not seconds:
        return {"p50": 0.0, "p95": 0.0, "max": 0.0}
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)), "max": float(ms.max())}


def steady_percentiles(seconds: Sequence[float], arrived: Sequence[float]) -> dict[str, float] | None:
    """:func:`percentiles` of the frames captured ``STEADY_AFTER_S`` or more after the first
    (``arrived``: their capture times); ``None`` when the run was shorter."""
    if not arrived:
        return None
    start = min(arrived) + STEADY_AFTER_S
    steady = [value for value, when in zip(seconds, arrived, strict=True) if when >= start]
    return percentiles(steady) if steady else None


def _mean_p95(values: list[float]) -> dict[str, float]:
    ms = np.asarray(values, dtype=np.float64) * 1000.0
    return (
        {"mean": float(ms.mean()), "p95": float(np.percentile(ms, 95))}
        if ms.size
        else {"mean": 0.0, "p95": 0.0}
    )


def latency_split(timings: Sequence[FrameTiming]) -> dict[str, Any]:
    """Latency, work and queueing over ``timings`` (ms), the tail's split, and the per-stage figures."""
    latencies = [t.latency for t in timings]
    p95 = percentiles(latencies)["p95"] / 1000.0
    tail = [t for t in timings if t.latency >= p95] if timings else []
    names = list(dict.fromkeys(name for t in timings for name in t.works))
    tail_latency = float(np.mean([t.latency for t in tail])) if tail else 0.0
    tail_queue = float(np.mean([t.queueing for t in tail])) if tail else 0.0
    return {
        "frames": len(timings),
        "latency_ms": percentiles(latencies),
        "work_ms": percentiles([t.work for t in timings]),
        "queueing_ms": percentiles([t.queueing for t in timings]),
        "tail": {  # the frames at or above the p95 latency
            "frames": len(tail),
            "latency_ms": 1000.0 * tail_latency,
            "work_ms": 1000.0 * float(np.mean([t.work for t in tail])) if tail else 0.0,
            "queueing_ms": 1000.0 * tail_queue,
            "queueing_share": tail_queue / tail_latency if tail_latency > 0 else 0.0,
        },
        "wait_before_ms": {name: _mean_p95([t.waits.get(name, 0.0) for t in timings]) for name in names},
        "work_in_ms": {name: _mean_p95([t.works.get(name, 0.0) for t in timings]) for name in names},
    }
