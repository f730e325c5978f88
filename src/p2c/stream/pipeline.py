"""The video pipeline: source -> track -> engine -> composite -> sinks.

:func:`cartoonize` wires a source, the three stages (:class:`p2c.stream.tracking.TrackingStage`,
:class:`p2c.stream.batching.EngineStage`, :class:`p2c.stream.compositing.CompositeStage`) and the
sinks, and runs them; :func:`cartoonize_video` does the same for a video file and the sinks a
command line or :meth:`p2c.Cartoonizer.video` asks for. ``p2c-video``, ``p2c-stream``, the Python
API and the pipeline benchmark all run through them.

:class:`Pipeline` is what runs any source -> stages -> sinks chain, joined by bounded queues::

    reader thread ─q─▶ stage thread ─q─▶ stage thread ─q─▶ ... ─q─▶ main thread: sinks
    (source)           (tracker)         (batcher+engine)           (file, virtual camera, preview)

Each stage runs in its own thread, so decoding, MediaPipe, the generator and encoding overlap
(they all release the GIL in native code). The sinks run in the caller's thread: OpenCV windows
want the main thread. Ctrl-C (SIGINT) or SIGTERM only sets a flag that cancels every stage; once
the threads have stopped, ``run`` closes (and finalises) every sink and raises
:class:`p2c.signals.Stopped` (a ``KeyboardInterrupt``) naming the signal. A flag rather than an
exception at an arbitrary point, because native code in the main thread (the encoder) can
swallow an exception raised inside it, and the run would then go on to the end.

Live runs use ``drop_oldest`` queues: when any stage is slower than the camera, the oldest
waiting frame is dropped (and counted), so latency stays bounded by the queue sizes instead of
growing; and each stage takes its next frame just in time for the next stage
(:mod:`p2c.stream.pacing`), so no work is spent on frames that would be replaced. File runs
block instead: every frame comes out, in order, with its timestamp. An exception in any thread
stops every stage and is re-raised in the caller.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from p2c.signals import Stopped, stop_signals_set
from p2c.stream.adaptive import AdaptiveConfig, LivePolicy
from p2c.stream.batching import EngineStage
from p2c.stream.compositing import CompositeStage, default_compositor
from p2c.stream.faces import AlignerConfig, FaceAligner
from p2c.stream.frame import Frame
from p2c.stream.pacing import StageClock, wait_until_wanted
from p2c.stream.queues import Closed, DropPolicy, FrameQueue
from p2c.stream.sinks import OutputValue, Sink, SinkTarget, StopStream, build_sinks
from p2c.stream.smoothing import FLOW_QUALITIES, MOTION_SCALE, STILL_WEIGHT
from p2c.stream.sources import Source, VideoInfo
from p2c.stream.stage import BatchPolicy, Stage, collect
from p2c.stream.stats import PipelineStats, StatsSnapshot
from p2c.stream.threads import opencv_threads
from p2c.stream.tracking import FaceTracker, TrackerConfig, TrackingStage

if TYPE_CHECKING:
    from p2c.engine.base import Backend
    from p2c.stream.view import LiveControls

__all__ = [
    "FrameCallback",
    "Pipeline",
    "PipelineConfig",
    "VideoConfig",
    "cartoonize",
    "cartoonize_video",
    "sink_target",
]

logger = logging.getLogger(__name__)

_JOIN_TIMEOUT_S = 10.0
# Live runs segment each face every this many frames by default (VideoConfig.segment_every).
LIVE_SEGMENT_EVERY = 2
# ... and find the cartoon EMA's flow at this quality (VideoConfig.flow "auto"; files: "fine").
LIVE_FLOW = "balanced"
_POLL_S = 0.05


FrameCallback = Callable[[Frame, PipelineStats], None]


@dataclass(frozen=True)
class VideoConfig:
    """What a video run does beyond the engine's own options.

    ``batch_size``: crops per engine call; ``detect_every``: frames between searches for new faces
    while fewer than ``max_faces`` are tracked; ``segment``: whiten the crop background with the
    head mask (what the generator was trained on); ``cartoon_weight``: the new cartoon's share for
    a still face (1 = no output smoothing), ``motion_scale`` and ``flow`` the rest of the cartoon EMA
    (:class:`p2c.stream.smoothing.CartoonSmoother`; ``flow``: a quality's name, ``None`` for no
    flow, ``"auto"``: fine for files, balanced live); ``queue_size``: frames in flight per hop;
    ``max_wait_s``: the longest a live engine batch waits for more frames; ``on_device``: keep
    each frame on the engine's device from the engine stage to the last paste (one upload, one
    download; ``None``: when the engine runs on a GPU). ``segment_every``: segment each face's
    head every N frames, reusing its last mask (in crop coordinates, so it follows the face) in
    between (``None``: every frame for files, every 2nd live); ``adaptive``: live runs lower
    that rate and the rate of searches for new faces when the machine falls behind, before
    frames are dropped (:mod:`p2c.stream.adaptive`).
    """

    max_faces: int = 1
    batch_size: int = 8
    side_by_side: bool = False
    detect_every: int = 15
    segment: bool = True
    cartoon_weight: float = STILL_WEIGHT
    motion_scale: float = MOTION_SCALE
    flow: str | None = "auto"
    queue_size: int = 4
    max_wait_s: float = 0.0
    on_device: bool | None = None
    segment_every: int | None = None
    adaptive: bool = True

    def __post_init__(self) -> None:
        for name in ("max_faces", "batch_size", "detect_every", "queue_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"VideoConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.segment_every is not None and self.segment_every < 1:
            raise ValueError(f"VideoConfig.segment_every must be >= 1 or None, got {self.segment_every}")
        if not 0 < self.cartoon_weight <= 1:
            raise ValueError(f"VideoConfig.cartoon_weight must be in (0, 1], got {self.cartoon_weight}")
        if self.flow is not None and self.flow != "auto" and self.flow not in FLOW_QUALITIES:
            raise ValueError(
                f"VideoConfig.flow must be 'auto', one of {sorted(FLOW_QUALITIES)} or None: {self.flow!r}"
            )
        if self.max_wait_s < 0:
            raise ValueError(f"VideoConfig.max_wait_s must be >= 0, got {self.max_wait_s}")

    def segmentation_refresh(self, live: bool) -> int:
        """Frames between head segmentations of a face: ``segment_every``, or its default."""
        if self.segment_every is not None:
            return self.segment_every
        return LIVE_SEGMENT_EVERY if live else 1

    def flow_quality(self, live: bool) -> str | None:
        """The cartoon EMA's flow quality: ``flow``, or for ``"auto"`` fine for files and balanced
        live (the fine one's DIS took 8.7 ms a face of a live frame's 33; smoothing.FLOW_QUALITIES)."""
        if self.flow != "auto":
            return self.flow
        return LIVE_FLOW if live else "fine"

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """``(width, height)`` of the frames the compositor makes from ``width`` x ``height`` input:
        twice as wide side by side (original | cartoon)."""
        return (2 * width if self.side_by_side else width), height


def cartoonize(
    source: Source,
    sinks: Sequence[Sink],
    engine: Backend,
    config: VideoConfig | None = None,
    max_frames: int | None = None,
    on_frame: FrameCallback | None = None,
) -> StatsSnapshot:
    """Run ``source`` through the cartoon pipeline into ``sinks``; returns the run's counters.

    Live sources (``source.live``) drop the oldest frame when the pipeline falls behind, after
    the adaptive policy has lowered what it can (``config.adaptive``); files keep every frame.
    ``engine`` stays open (the caller closes it); ``on_frame`` is called in the caller's thread
    after the sinks have taken each frame.
    """
    config = config or VideoConfig()
    live = source.live
    pipeline_config = PipelineConfig(
        live=live, queue_size=1 if live else config.queue_size, max_frames=max_frames
    )
    stats = PipelineStats(late_after_s=pipeline_config.late_after_s)
    segment_every = config.segmentation_refresh(live)
    policy = (
        LivePolicy(AdaptiveConfig.starting_at(segment_every), base_detect_every=config.detect_every)
        if live and config.adaptive
        else None
    )
    track = TrackingStage(
        FaceTracker(TrackerConfig(max_faces=config.max_faces, detect_every=config.detect_every)),
        FaceAligner(AlignerConfig(max_faces=config.max_faces, segment=config.segment)),
        stats=stats,
        segment_every=segment_every,
        policy=policy,
    )
    batches = (
        BatchPolicy.live(config.batch_size, config.max_wait_s)
        if live
        else BatchPolicy.offline(config.batch_size)
    )
    stages = [
        track,  # faces: landmarks, crop, head mask
        *cartoon_stages(engine, batches, config, live, policy),  # cartoons, then pasted into the frame
    ]
    if policy is not None:
        watched = policy

        def adapt(frame: Frame, run_stats: PipelineStats) -> None:
            watched.observe(run_stats, latency_s=time.monotonic() - frame.arrived)
            if on_frame is not None:
                on_frame(frame, run_stats)

        return Pipeline(source, stages, sinks, pipeline_config, stats=stats).run(adapt)
    return Pipeline(source, stages, sinks, pipeline_config, stats=stats).run(on_frame)


def cartoon_stages(
    engine: Backend,
    batches: BatchPolicy,
    config: VideoConfig,
    live: bool = False,
    policy: LivePolicy | None = None,
) -> list[Stage]:
    """The engine stage (several crops per call) and the compositor stage, on the host or with
    frames kept on the engine's device; ``policy`` may coarsen the host compositor's flow."""
    # A backend's device may carry a note after its name ("cuda:0 (TensorRT)").
    on_gpu = engine.device.split(" ")[0].startswith("cuda")
    if on_gpu if config.on_device is None else config.on_device:
        from p2c.stream.device_frames import device_stages  # torch loads only for this path

        return list(
            device_stages(engine, batches, config.side_by_side, config.cartoon_weight, config.motion_scale)
        )
    composite = CompositeStage(
        default_compositor(engine),
        side_by_side=config.side_by_side,
        cartoon_weight=config.cartoon_weight,
        motion_scale=config.motion_scale,
        flow=config.flow_quality(live),
        policy=policy,
    )
    return [EngineStage(engine, batches), composite]


def sink_target(
    info: VideoInfo, config: VideoConfig, live: bool, audio_from: Path | None = None, title: str = "p2c"
) -> SinkTarget:
    """What the sinks of a run on a source described by ``info`` are opened for."""
    width, height = config.output_size(info.width, info.height)
    return SinkTarget(width, height, info.fps, info.time_base, live=live, audio_from=audio_from, title=title)


def cartoonize_video(
    source: Source,
    outputs: Mapping[str, OutputValue],
    engine: Backend,
    config: VideoConfig | None = None,
    progress: bool = False,
    title: str = "p2c",
    on_frame: FrameCallback | None = None,
    view: LiveControls | None = None,
) -> StatsSnapshot:
    """Cartoonize an opened video file (or built-in clip) into the sinks ``outputs`` names
    (``{"file": path, ...}``, see :func:`p2c.stream.sinks.build_sinks`); the file sink carries the
    input's audio over.

    ``progress`` shows a progress bar (frames, fps, ETA) on stderr. ``on_frame`` is called after
    the sinks have taken each frame; an exception it raises stops the run (the sinks are closed).
    ``view``: what the sinks show of each frame (the cartoon's strength; :mod:`p2c.stream.view`).
    """
    config = config or VideoConfig()
    info = source.info
    audio = Path(getattr(source, "path", "")) if info.audio else None  # a file's own sound track
    target = sink_target(info, config, live=False, audio_from=audio, title=title)
    built = build_sinks(outputs, target)
    sinks: list[Sink] = list(built)
    if view is not None:
        from p2c.stream.view import ViewedSinks

        sinks = [ViewedSinks(built, view)]
    if not progress:
        return cartoonize(source, sinks, engine, config, on_frame=on_frame)
    from tqdm import tqdm

    with tqdm(total=info.frame_count, unit="frame", desc=title, file=sys.stderr) as bar:

        def advance(frame: Frame, stats: PipelineStats) -> None:
            bar.update(1)
            if on_frame is not None:
                on_frame(frame, stats)

        return cartoonize(source, sinks, engine, config, on_frame=advance)


@dataclass(frozen=True)
class PipelineConfig:
    """How frames flow. ``live``: drop the oldest frame rather than wait (cameras).

    ``queue_size`` bounds every queue (frames in flight per hop); ``max_frames`` stops after that
    many frames from the source; ``late_after_s`` is the latency above which a frame counts as late.
    """

    live: bool = False
    queue_size: int = 4
    max_frames: int | None = None
    late_after_s: float = 0.25

    def __post_init__(self) -> None:
        if self.queue_size < 1:
            raise ValueError(f"PipelineConfig.queue_size must be >= 1, got {self.queue_size}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"PipelineConfig.max_frames must be >= 1 or None, got {self.max_frames}")
        if self.late_after_s <= 0:
            raise ValueError(f"PipelineConfig.late_after_s must be positive, got {self.late_after_s}")


class Pipeline:
    """Wire ``source -> stages -> sinks`` and run it to the end of the source (or a stop)."""

    def __init__(
        self,
        source: Source,
        stages: Sequence[Stage],
        sinks: Sequence[Sink],
        config: PipelineConfig | None = None,
        stats: PipelineStats | None = None,
    ) -> None:
        self.source = source
        self.stages = list(stages)
        self.sinks = list(sinks)
        self.config = config or PipelineConfig()
        # Stages may count into the same object (faces, detections), so it can be passed in.
        self.stats = stats or PipelineStats(late_after_s=self.config.late_after_s)
        self._cancel = threading.Event()
        self._stop_signal: int | None = None
        self._error: BaseException | None = None
        self._error_lock = threading.Lock()
        self.queues: list[FrameQueue[Frame]] = []

    # -- public -----------------------------------------------------------------------------

    def run(self, on_frame: FrameCallback | None = None) -> StatsSnapshot:
        """Process every frame; return the final counters. Re-raises the first stage error.

        The source and the sinks are entered here (they are context managers), so they are
        closed on every way out: end of stream, an error, a ``StopStream`` from a sink, Ctrl-C or
        SIGTERM (then :class:`p2c.signals.Stopped` is raised once everything is closed).
        """
        with ExitStack() as stack:
            stack.enter_context(stop_signals_set(self._on_stop_signal))
            stack.enter_context(opencv_threads())  # the stages are the parallelism (p2c.stream.threads)
            # Until their threads start, the stages are closed here (a source, a sink or a warm-up
            # that fails must not leak their models); from then on each thread closes its own.
            unstarted = stack.enter_context(ExitStack())
            for stage in reversed(self.stages):
                unstarted.callback(stage.close)
            stack.enter_context(self.source)
            for sink in self.sinks:
                stack.enter_context(sink)
            self._warm_up()
            unstarted.pop_all()
            self.stats.start()  # fps counts the run, not the loading of models
            threads = self._start_threads()
            try:
                self._drain(on_frame)
            finally:
                self._cancel.set()
                self._join(threads)
            self._raise_stage_error()
        if self._stop_signal is not None:
            raise Stopped(self._stop_signal)
        return self.stats.snapshot()

    def stop(self) -> None:
        """Ask every stage to stop soon (thread-safe); ``run`` then returns normally."""
        self._cancel.set()

    # -- threads ----------------------------------------------------------------------------

    def _warm_up(self) -> None:
        """Let stages load their models before the first frame (a live frame would wait for it)."""
        for stage in self.stages:
            started = time.perf_counter()
            stage.warm_up()
            logger.debug("warmed up %s in %.2f s", stage.name, time.perf_counter() - started)

    def _on_stop_signal(self, signum: int) -> None:
        """The first Ctrl-C or SIGTERM: stop every stage; ``run`` then closes the sinks."""
        self._stop_signal = signum
        self._cancel.set()

    def _start_threads(self) -> list[threading.Thread]:
        size = self.config.queue_size
        # Live: every hop keeps only the newest frames, so a frame never waits behind a stale one
        # (dropping only at the source would still leave one old frame parked before each stage).
        policy: DropPolicy = "drop_oldest" if self.config.live else "block"
        names = ["source", *(stage.name for stage in self.stages)]
        self.queues = [FrameQueue[Frame](size, policy, name=name) for name in names]
        threads = [
            threading.Thread(target=self._guard, args=("reader", self._read), daemon=True, name="p2c-source")
        ]
        clocks = [StageClock() for _ in self.stages]
        # Live, a stage takes its next frame just in time for the next stage (p2c.stream.pacing);
        # the last one hands frames to the sinks, which never keep it waiting. A stage drops a
        # frame that went stale in its queue, so that its maker makes a fresh one.
        live = self.config.live
        nexts: list[StageClock | None] = [*clocks[1:], None] if live else [None] * len(clocks)
        makers: list[StageClock | None] = [None, *clocks[:-1]] if live else [None] * len(clocks)
        for stage, inbox, outbox, clock, downstream, maker in zip(
            self.stages, self.queues, self.queues[1:], clocks, nexts, makers, strict=False
        ):
            threads.append(
                threading.Thread(
                    target=self._guard,
                    args=(
                        stage.name,
                        lambda s=stage, i=inbox, o=outbox, c=clock, d=downstream, m=maker: self._work(
                            s, i, o, c, d, m
                        ),
                    ),
                    daemon=True,
                    name=f"p2c-{stage.name}",
                )
            )
        for thread in threads:
            thread.start()
        return threads

    def _guard(self, name: str, body: Callable[[], None]) -> None:
        """Run a thread body; the first exception anywhere cancels every stage."""
        try:
            body()
        except BaseException as error:
            with self._error_lock:
                if self._error is None:
                    self._error = error
                    logger.debug("stage %s failed: %r", name, error)
            self._cancel.set()

    def _read(self) -> None:
        outbox = self.queues[0]
        limit = self.config.max_frames
        frames = iter(self.source)
        skipped = 0  # frames a live source let go before anyone could take them (ClipCameraSource)
        try:
            while True:
                started, cpu = time.perf_counter(), time.thread_time()
                frame = next(frames, None)
                if frame is None or self._cancel.is_set():
                    break
                self.stats.add_stage_time("source", time.perf_counter() - started, time.thread_time() - cpu)
                total = getattr(self.source, "skipped", 0)
                missed, skipped = total - skipped, total
                if limit is not None and self.stats.frames_in + missed >= limit:
                    rest = limit - self.stats.frames_in  # the camera's frames up to the limit
                    self.stats.add(frames_in=rest, dropped=rest)
                    break
                self.stats.add(frames_in=1 + missed, dropped=missed)
                if outbox.put(frame, self._cancel) is not None:
                    self.stats.add(dropped=1)
                if limit is not None and self.stats.frames_in >= limit:
                    break
        finally:
            # Damage is only known once decoding ends (missing frames of a cut file).
            self.stats.add(damaged=self.source.damaged)
            outbox.close()

    def _work(
        self,
        stage: Stage,
        inbox: FrameQueue[Frame],
        outbox: FrameQueue[Frame],
        clock: StageClock | None = None,
        downstream: StageClock | None = None,
        maker: StageClock | None = None,
    ) -> None:
        try:
            while not self._cancel.is_set():
                if clock is not None and downstream is not None:
                    wait_until_wanted(outbox, clock, downstream, self._cancel)
                frames = collect(inbox, stage.batch_policy, self._cancel)
                if not frames:
                    break
                if maker is not None:
                    frames = self._fresh(frames, maker)
                    if not frames:
                        continue
                started, cpu = time.monotonic(), time.thread_time()
                if clock is not None:
                    clock.begin(started)
                done = stage.process(frames)
                finished = time.monotonic()
                if clock is not None:
                    clock.end(finished)
                cpu = time.thread_time() - cpu
                self.stats.add_stage_time(stage.name, finished - started, cpu, len(frames))
                for frame in frames:
                    frame.stages.append((stage.name, started, finished))
                if len(done) != len(frames):
                    raise RuntimeError(f"stage {stage.name} returned {len(done)} frames for {len(frames)}")
                for frame in done:
                    if outbox.put(frame, self._cancel) is not None:
                        self.stats.add(dropped=1)
        finally:
            outbox.close()
            stage.close()

    def _fresh(self, frames: list[Frame], maker: StageClock) -> list[Frame]:
        """``frames`` less those that went stale in the queue (:meth:`StageClock.is_stale` of the
        stage that made them: it makes a fresh one sooner), counted as dropped."""
        now = time.monotonic()
        fresh = [
            frame for frame in frames if not (frame.stages and maker.is_stale(now - frame.stages[-1][2]))
        ]
        if len(fresh) < len(frames):
            self.stats.add(dropped=len(frames) - len(fresh))
        return fresh

    def _drain(self, on_frame: FrameCallback | None) -> None:
        """Main thread: hand finished frames to the sinks until the stream ends or stops."""
        last = self.queues[-1]
        while True:
            try:
                frame = last.get(timeout=_POLL_S, cancel=self._cancel)
            except TimeoutError:
                continue
            except Closed:
                return
            started, cpu = time.monotonic(), time.thread_time()
            try:
                for sink in self.sinks:
                    sink.write(frame)
            except StopStream:
                logger.info("stopped by the user")
                return
            finished = time.monotonic()
            self.stats.add_stage_time("sink", finished - started, time.thread_time() - cpu)
            frame.stages.append(("sink", started, finished))
            self.stats.frame_done(frame.arrived)
            if on_frame is not None:
                on_frame(frame, self.stats)

    def _join(self, threads: list[threading.Thread]) -> None:
        for queue in self.queues:
            queue.close()
        deadline = time.monotonic() + _JOIN_TIMEOUT_S
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
            if thread.is_alive():
                logger.warning("pipeline thread %s did not stop in time", thread.name)

    def _raise_stage_error(self) -> None:
        with self._error_lock:
            error = self._error
        if error is not None:
            raise error
