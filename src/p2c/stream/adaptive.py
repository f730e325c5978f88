"""The adaptive live policy: when the machine cannot keep up, do less work before dropping frames.

A live run has a deadline per frame (the camera's interval). When a stage's calls fill most of
that time, or frames are being dropped, :class:`LivePolicy` steps up one level: the tracker
segments each face less often (the mask between refreshes is the last one, in crop coordinates,
which move with the face), searches for new faces less often and finds the flow of the cartoon
EMA (:class:`p2c.stream.smoothing.CartoonSmoother`) at its coarse quality; at the last level each face
also gets a new cartoon only every other frame, the faces taking turns (in between its last
cartoon is pasted where the face is now: the head moves on every frame, the drawing every other).
Only when the top level is reached and frames still drop does the run fall back on the queues'
drop-oldest policy. When
every stage has room again for a few windows in a row, it steps back down, one level at a time.

The first window is start-up (the first detection, the models' first calls) and is not judged.
It judges once per ``window_s`` from the pipeline's counters (:class:`p2c.stream.stats.PipelineStats`):
the dropped frames in the window, each working stage's busy fraction (seconds spent in its
calls over the window's length; the source is left out, it sleeps until the next frame is due),
and the window's p95 capture-to-output latency against ``latency_high_s``: a machine that keeps
the frame rate only by letting frames wait behind each other is not keeping up either.
What it runs at is written back into the counters (``policy_level``, ``policy``), so the status
line and ``--stats-json`` say what was lowered.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from p2c.stream.stats import PipelineStats

__all__ = ["AdaptiveConfig", "LivePolicy", "PolicyLevel"]

logger = logging.getLogger(__name__)

# Stages whose busy time says nothing about load: the source waits for frames to be due.
_IDLE_STAGES = frozenset({"source"})


@dataclass(frozen=True)
class PolicyLevel:
    """What the tracker does at one level: segment every ``segment_every`` frames, search for new
    faces ``detect_factor`` times less often than configured, run the generator on each face
    every ``cartoon_every`` frames; ``coarse_flow``: the compositor's cartoon EMA finds its flow
    at the coarse quality instead of the run's own."""

    segment_every: int
    detect_factor: int
    cartoon_every: int = 1
    coarse_flow: bool = False

    def __post_init__(self) -> None:
        if self.segment_every < 1 or self.detect_factor < 1 or self.cartoon_every < 1:
            raise ValueError(f"PolicyLevel values must be >= 1, got {self}")


@dataclass(frozen=True)
class AdaptiveConfig:
    """The levels, lowest work last, and when to move between them.

    ``levels[0]`` is the normal run; each judgement covers ``window_s`` seconds; a window with a
    dropped frame, a stage busier than ``busy_high`` or a p95 latency over ``latency_high_s``
    steps up; ``calm_windows`` windows in a row with no drop, every stage under ``busy_low`` and
    the p95 latency under ``latency_low_s`` step down. ``latency_high_s = None``: latency is not
    judged. The default, 80 ms, is the live path's target (issue 19, ``docs/benchmarks.md``).
    """

    levels: tuple[PolicyLevel, ...] = (
        PolicyLevel(2, 1),
        PolicyLevel(4, 2, coarse_flow=True),
        PolicyLevel(8, 4, 2, coarse_flow=True),
    )
    window_s: float = 1.0
    busy_high: float = 0.85
    busy_low: float = 0.6
    calm_windows: int = 3
    latency_high_s: float | None = 0.080
    latency_low_s: float = 0.060

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError("AdaptiveConfig.levels must hold at least one level")
        if self.window_s <= 0:
            raise ValueError(f"AdaptiveConfig.window_s must be positive, got {self.window_s}")
        if not 0 < self.busy_low < self.busy_high:
            raise ValueError(
                f"AdaptiveConfig needs 0 < busy_low < busy_high, got {self.busy_low} and {self.busy_high}"
            )
        if self.calm_windows < 1:
            raise ValueError(f"AdaptiveConfig.calm_windows must be >= 1, got {self.calm_windows}")
        if self.latency_high_s is not None and not 0 < self.latency_low_s < self.latency_high_s:
            raise ValueError(
                "AdaptiveConfig needs 0 < latency_low_s < latency_high_s, "
                f"got {self.latency_low_s} and {self.latency_high_s}"
            )

    @classmethod
    def starting_at(cls, segment_every: int) -> AdaptiveConfig:
        """The default ladder from a normal segmentation refresh of ``segment_every`` frames."""
        return cls(
            levels=(
                PolicyLevel(segment_every, 1),
                PolicyLevel(2 * segment_every, 2, coarse_flow=True),
                PolicyLevel(4 * segment_every, 4, 2, coarse_flow=True),
            )
        )


class LivePolicy:
    """Chooses the tracker's work level from the run's counters; see the module docstring.

    ``observe(stats)`` is called after each frame reaches the sinks (any thread); the tracker
    reads ``level`` (a :class:`PolicyLevel`) before each frame.
    """

    def __init__(self, config: AdaptiveConfig | None = None, base_detect_every: int = 15) -> None:
        self.config = config or AdaptiveConfig()
        self.base_detect_every = base_detect_every
        self.index = 0
        self.dropping = False
        self._lock = threading.Lock()
        self._window_start: float | None = None
        self._last_dropped = 0
        self._last_busy: dict[str, float] = {}
        self._calm = 0
        self._started = False  # past the start-up window
        self._latencies: list[float] = []  # the window's, seconds

    @property
    def level(self) -> PolicyLevel:
        return self.config.levels[self.index]

    def describe(self) -> str:
        """What is lowered now, for the status line ("" when nothing)."""
        if self.index == 0 and not self.dropping:
            return ""
        level = self.level
        parts = []
        if self.index:
            parts.append(
                f"segmentation every {level.segment_every} frames, "
                f"detection every {self.base_detect_every * level.detect_factor}"
            )
            if level.coarse_flow:
                parts.append("coarse flow")
            if level.cartoon_every > 1:
                parts.append(f"cartoons every {level.cartoon_every}")
        if self.dropping:
            parts.append("dropping frames")
        return "; ".join(parts)

    def observe(self, stats: PipelineStats, now: float | None = None, latency_s: float | None = None) -> None:
        """Judge the last window once ``window_s`` has passed since the previous judgement;
        ``latency_s``: the capture-to-output latency of the frame just out."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if latency_s is not None:
                self._latencies.append(latency_s)
            if self._window_start is None:
                self._window_start = now
                self._remember(stats)
                return
            span = now - self._window_start
            if span < self.config.window_s:
                return
            snapshot = stats.snapshot()
            dropped = snapshot.dropped - self._last_dropped
            busiest = max(
                (
                    (seconds - self._last_busy.get(name, 0.0)) / span
                    for name, seconds in snapshot.stage_seconds.items()
                    if name not in _IDLE_STAGES
                ),
                default=0.0,
            )
            p95 = float(np.percentile(self._latencies, 95)) if self._latencies else None
            self._window_start = now
            self._last_dropped = snapshot.dropped
            self._last_busy = dict(snapshot.stage_seconds)
            self._latencies = []
            if not self._started:  # start-up: first calls and the first detection, not load
                self._started = True
                return
            self._judge(dropped, busiest, p95)
            stats.set_policy(self.index, self.describe())

    def _remember(self, stats: PipelineStats) -> None:
        snapshot = stats.snapshot()
        self._last_dropped = snapshot.dropped
        self._last_busy = dict(snapshot.stage_seconds)

    def _judge(self, dropped: int, busiest: float, p95: float | None = None) -> None:
        config, top = self.config, len(self.config.levels) - 1
        slow = config.latency_high_s is not None and p95 is not None and p95 > config.latency_high_s
        if dropped > 0 or busiest > config.busy_high or slow:
            self._calm = 0
            if self.index < top:
                self.index += 1
                logger.info(
                    "live: the machine is not keeping up "
                    "(%d dropped, busiest stage %.0f%%, p95 latency %s): %s",
                    dropped,
                    100 * busiest,
                    "-" if p95 is None else f"{1000 * p95:.0f} ms",
                    self.describe(),
                )
            self.dropping = dropped > 0 and self.index == top
            return
        self.dropping = False
        quick = config.latency_high_s is None or p95 is None or p95 < config.latency_low_s
        if busiest < config.busy_low and quick:
            self._calm += 1
            if self._calm >= self.config.calm_windows and self.index > 0:
                self.index -= 1
                self._calm = 0
                logger.info("live: room again, back to level %d", self.index)
        else:
            self._calm = 0
