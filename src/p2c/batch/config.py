"""What a batch run is: where it runs (:class:`ClusterConfig`) and what each worker does
(:class:`WorkerSettings`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from p2c.engine import EngineConfig
    from p2c.stream.pipeline import VideoConfig

__all__ = ["ClusterConfig", "WorkerSettings"]


@dataclass(frozen=True)
class ClusterConfig:
    """The Ray cluster and the workers on it.

    ``address``: an existing cluster (``host:port``, ``ray://host:port`` or ``auto``); ``None`` starts
    a local Ray here. ``workers``: ``None`` is one per GPU when the workers use GPUs, else one per
    machine. ``gpus_per_worker``: ``None`` is 1 when the cluster has GPUs, else 0 (a fraction shares
    a GPU). ``cpus_per_worker``: ``None`` shares this machine's cores among the workers on a local
    Ray, and is 1 on a cluster. ``retries``: how many more times a file is tried, on another worker,
    when the worker converting it dies. ``verbose`` shows Ray's and the workers' own logs.
    """

    address: str | None = None
    workers: int | None = None
    gpus_per_worker: float | None = None
    cpus_per_worker: float | None = None
    retries: int = 2
    verbose: bool = False

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"ClusterConfig.workers must be >= 1, got {self.workers}")
        for name in ("gpus_per_worker", "cpus_per_worker"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"ClusterConfig.{name} must be >= 0, got {value}")
        if self.retries < 0:
            raise ValueError(f"ClusterConfig.retries must be >= 0, got {self.retries}")


def _default_video() -> VideoConfig:
    from p2c.stream.pipeline import VideoConfig

    return VideoConfig()


def _default_engine() -> EngineConfig:
    from p2c.engine import EngineConfig

    return EngineConfig()


@dataclass(frozen=True)
class WorkerSettings:
    """What every worker does with a file: the model, the engine options and the video options.

    ``start``/``duration`` (seconds) select the same part of every video; stills use
    ``video.max_faces`` as ``p2c-image --composite --max-faces`` does.
    """

    weights: Path | None = None
    engine: EngineConfig = field(default_factory=_default_engine)
    video: VideoConfig = field(default_factory=_default_video)
    start: float = 0.0
    duration: float | None = None

    def __post_init__(self) -> None:
        if self.start < 0:
            raise ValueError(f"WorkerSettings.start must be >= 0 seconds, got {self.start}")
        if self.duration is not None and self.duration <= 0:
            raise ValueError(f"WorkerSettings.duration must be positive seconds, got {self.duration}")
