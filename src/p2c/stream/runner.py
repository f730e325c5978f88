"""Cartoonize a stream: wire source -> tracker -> engine -> compositor -> sinks and run it.

This is the library function behind ``p2c-video``, ``p2c-stream`` and the pipeline benchmark;
the command lines only parse options, open the source, engine and sinks, and call
:func:`cartoonize`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from p2c.stream.batching import BatchPolicy, EngineStage
from p2c.stream.composite import CompositeStage, default_compositor
from p2c.stream.frame import Frame
from p2c.stream.pipeline import Pipeline, PipelineConfig, Stage
from p2c.stream.sinks.base import Sink
from p2c.stream.stats import PipelineStats, StatsSnapshot
from p2c.stream.tracking import FaceTracker, TrackerConfig, TrackingStage

__all__ = ["VideoConfig", "build_stages", "cartoonize"]


@dataclass(frozen=True)
class VideoConfig:
    """What a video run does beyond the engine's own options.

    ``batch_size``: crops per engine call; ``detect_every``: frames between searches for new faces
    while fewer than ``max_faces`` are tracked; ``segment``: whiten the crop background with the
    head mask (what the generator was trained on); ``cartoon_weight``: the new cartoon's share for
    a still face (1 = no output smoothing); ``queue_size``: frames in flight per hop;
    ``max_wait_s``: the longest a live engine batch waits for more frames.
    """

    max_faces: int = 1
    batch_size: int = 8
    side_by_side: bool = False
    detect_every: int = 15
    segment: bool = True
    cartoon_weight: float = 0.5
    queue_size: int = 4
    max_wait_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("max_faces", "batch_size", "detect_every", "queue_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"VideoConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.cartoon_weight <= 1:
            raise ValueError(f"VideoConfig.cartoon_weight must be in (0, 1], got {self.cartoon_weight}")
        if self.max_wait_s < 0:
            raise ValueError(f"VideoConfig.max_wait_s must be >= 0, got {self.max_wait_s}")


def _default_aligner(config: VideoConfig) -> Any:
    from p2c.stream.faces import AlignerConfig, FaceAligner

    return FaceAligner(AlignerConfig(max_faces=config.max_faces, segment=config.segment))


def build_stages(
    engine: Any,
    config: VideoConfig,
    live: bool,
    stats: PipelineStats,
    tracker: FaceTracker | None = None,
    aligner: Any = None,
    compositor: Any = None,
) -> list[Stage]:
    """The three processing stages: tracker (+ crops, masks), engine (batched), compositor."""
    tracker = tracker or FaceTracker(
        TrackerConfig(max_faces=config.max_faces, detect_every=config.detect_every)
    )
    aligner = aligner if aligner is not None else _default_aligner(config)
    policy = (
        BatchPolicy.live(config.batch_size, config.max_wait_s)
        if live
        else BatchPolicy.offline(config.batch_size)
    )
    return [
        TrackingStage(tracker, aligner, stats=stats),
        EngineStage(engine, policy),
        CompositeStage(
            compositor if compositor is not None else default_compositor(engine),
            side_by_side=config.side_by_side,
            cartoon_weight=config.cartoon_weight,
        ),
    ]


def cartoonize(
    source: Any,
    sinks: Sequence[Sink],
    engine: Any,
    config: VideoConfig | None = None,
    max_frames: int | None = None,
    on_frame: Callable[[Frame, PipelineStats], None] | None = None,
    stages: Sequence[Stage] | None = None,
) -> StatsSnapshot:
    """Run ``source`` through the cartoon pipeline into ``sinks``; returns the run's counters.

    Live sources (``source.live``) drop the oldest frame when the pipeline falls behind; files
    keep every frame. ``stages`` replaces the default stages (tests, benchmarks).
    """
    config = config or VideoConfig()
    live = bool(getattr(source, "live", False))
    pipeline_config = PipelineConfig(
        live=live, queue_size=1 if live else config.queue_size, max_frames=max_frames
    )
    stats = PipelineStats(late_after_s=pipeline_config.late_after_s)
    if stages is None:
        stages = build_stages(engine, config, live, stats)
    return Pipeline(source, stages, sinks, pipeline_config, stats=stats).run(on_frame)
