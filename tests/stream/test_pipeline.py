from __future__ import annotations

import os
import signal
import threading
import time
from fractions import Fraction

import numpy as np
import pytest

from p2c.stream.frame import Frame
from p2c.stream.pipeline import Pipeline, PipelineConfig
from p2c.stream.queues import FrameQueue
from p2c.stream.sinks.base import StopStream
from p2c.stream.stage import BatchPolicy, Stage


class Mark(Stage):
    """A fast stage that stamps its name into every frame."""

    def __init__(self, name: str, delay: float = 0.0, fail_at: int | None = None) -> None:
        self.name = name
        self.delay = delay
        self.fail_at = fail_at
        self.closed = False
        self.calls: list[int] = []

    def process(self, frames: list[Frame]) -> list[Frame]:
        self.calls.append(len(frames))
        for frame in frames:
            if frame.index == self.fail_at:
                raise RuntimeError(f"{self.name} broke on frame {frame.index}")
            frame.output = frame.image.copy()
            frame.output[0, 1, 0] = 7
        if self.delay:
            time.sleep(self.delay)
        return frames

    def close(self) -> None:
        self.closed = True


def test_file_mode_keeps_every_frame_in_order_with_timestamps(synthetic_source, list_sink) -> None:
    source, sink = synthetic_source(60), list_sink(32, 32)
    stats = Pipeline(source, [Mark("a"), Mark("b")], [sink], PipelineConfig(queue_size=2)).run()
    assert [f.index for f in sink.frames] == list(range(60))
    assert [f.pts for f in sink.frames] == [i * 512 for i in range(60)]
    assert stats.frames_in == stats.frames_out == 60 and stats.dropped == 0
    assert sink.closed_calls == 1 and source.exited
    assert all(f.result[0, 1, 0] == 7 for f in sink.frames)


def test_batched_stage_gets_several_frames_per_call(synthetic_source, list_sink) -> None:
    batcher = Mark("engine")
    batcher.batch_policy = BatchPolicy(max_frames=8, max_wait_s=None)
    sink = list_sink(32, 32)
    Pipeline(synthetic_source(40), [batcher], [sink], PipelineConfig(queue_size=8)).run()
    assert sum(batcher.calls) == 40 and max(batcher.calls) > 1
    assert [f.index for f in sink.frames] == list(range(40))


def test_live_mode_drops_oldest_and_keeps_latency_bounded(synthetic_source, list_sink) -> None:
    source, sink = synthetic_source(300, live=True), list_sink(32, 32)
    slow = Mark("slow-engine", delay=0.01)
    stats = Pipeline(source, [slow], [sink], PipelineConfig(live=True, queue_size=1)).run()
    assert stats.dropped > 0
    assert stats.frames_out + stats.dropped == stats.frames_in == 300
    indexes = [f.index for f in sink.frames]
    assert indexes == sorted(indexes)
    # Blocking instead of dropping would have queued ~300 x 10 ms = 3 s behind the slow stage.
    assert stats.latency_p95_ms < 1000


def test_stage_error_stops_everything_and_reraises_in_caller(synthetic_source, list_sink) -> None:
    source, sink = synthetic_source(500), list_sink(32, 32)
    a, b = Mark("a"), Mark("b", fail_at=20)
    before = threading.active_count()
    with pytest.raises(RuntimeError, match="b broke on frame 20"):
        Pipeline(source, [a, b], [sink], PipelineConfig(queue_size=2)).run()
    assert sink.closed_calls == 1 and source.exited
    assert a.closed and b.closed
    assert len(sink.frames) < 500
    assert threading.active_count() == before


def test_keyboard_interrupt_stops_stages_and_closes_sink(synthetic_source, list_sink) -> None:
    sink = list_sink(32, 32)
    before = threading.active_count()

    def interrupt(frame: Frame, _stats: object) -> None:
        if frame.index == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Pipeline(synthetic_source(10_000), [Mark("a")], [sink]).run(on_frame=interrupt)
    assert sink.closed_calls == 1 and len(sink.frames) == 6
    assert threading.active_count() == before


def test_ctrl_c_even_if_swallowed_stops_the_run_and_closes_the_sink(synthetic_source, list_sink) -> None:
    sink = list_sink(32, 32)
    before = threading.active_count()

    def sigint_then_swallow(frame: Frame, _stats: object) -> None:
        if frame.index == 5:
            # Native code (an encoder) may swallow an exception raised while it runs: the run
            # must stop all the same, because Ctrl-C only sets a flag.
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
            except KeyboardInterrupt:
                pass

    with pytest.raises(KeyboardInterrupt):
        Pipeline(synthetic_source(10_000), [Mark("a")], [sink]).run(on_frame=sigint_then_swallow)
    assert sink.closed_calls == 1 and 6 <= len(sink.frames) < 10_000
    assert threading.active_count() == before
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_sink_can_stop_the_run_normally(synthetic_source, list_sink) -> None:
    class QuitAfterThree(list_sink):  # type: ignore[misc, valid-type]
        def _write(self, frame: Frame, image: np.ndarray) -> None:
            if frame.index == 3:
                raise StopStream
            super()._write(frame, image)

    sink = QuitAfterThree(32, 32)
    stats = Pipeline(synthetic_source(1000), [Mark("a")], [sink]).run()
    assert len(sink.frames) == 3 and sink.closed_calls == 1 and stats.frames_out == 3


def test_max_frames_stops_the_source(synthetic_source, list_sink) -> None:
    sink = list_sink(32, 32)
    stats = Pipeline(synthetic_source(1000), [], [sink], PipelineConfig(max_frames=7)).run()
    assert stats.frames_out == 7


def test_sink_rejects_a_wrong_shape_showing_both(synthetic_source, list_sink) -> None:
    with pytest.raises(ValueError, match=r"expected frame shape \(16, 32, 3\) uint8, got \(32, 32, 3\)"):
        Pipeline(synthetic_source(3), [], [list_sink(32, 16)]).run()


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status on this system")


def test_memory_stays_flat_over_thousands_of_frames(synthetic_source, list_sink) -> None:
    class CountingSink(list_sink):  # type: ignore[misc, valid-type]
        def _write(self, frame: Frame, image: np.ndarray) -> None:
            self.count = getattr(self, "count", 0) + 1  # keep nothing

    warm = CountingSink(64, 64)
    Pipeline(synthetic_source(200, size=64), [Mark("a"), Mark("b")], [warm]).run()
    before = _rss_mib()
    sink = CountingSink(64, 64)
    pipeline = Pipeline(
        synthetic_source(5000, size=64), [Mark("a"), Mark("b")], [sink], PipelineConfig(queue_size=4)
    )
    stats = pipeline.run()
    assert stats.frames_out == 5000
    assert all(q.high_water <= 4 for q in pipeline.queues)
    assert _rss_mib() - before < 30  # 5000 frames of 12 KiB kept would be 60 MiB


def test_queue_policies() -> None:
    queue: FrameQueue[int] = FrameQueue(2, "drop_oldest")
    for item in range(5):
        queue.put(item)
    assert queue.dropped == 3 and queue.get() == 3 and queue.get() == 4
    with pytest.raises(ValueError, match="policy"):
        FrameQueue(2, "newest")  # type: ignore[arg-type]
    with pytest.raises(TimeoutError):
        queue.get(timeout=0.01)


def test_a_stage_needs_only_a_name_and_process(synthetic_source, list_sink) -> None:
    class Minimal(Stage):
        name = "minimal"

        def process(self, frames: list[Frame]) -> list[Frame]:
            return frames

    stage = Minimal()
    assert stage.batch_policy == BatchPolicy()  # one frame per call
    stats = Pipeline(synthetic_source(5), [stage], [list_sink(32, 32)]).run()
    assert stats.frames_out == 5


def test_stages_are_closed_when_a_sink_cannot_open(synthetic_source, list_sink) -> None:
    class Unplugged(list_sink):  # type: ignore[misc, valid-type]
        def open(self) -> None:
            raise OSError("no device")

    stage = Mark("a")
    with pytest.raises(OSError, match="no device"):
        Pipeline(synthetic_source(5), [stage], [Unplugged(32, 32)]).run()
    assert stage.closed and stage.calls == []


def test_opencv_runs_one_thread_per_stage_during_a_run_and_is_restored(synthetic_source, list_sink) -> None:
    import cv2

    seen: list[int] = []

    class Probe(Stage):
        name = "probe"

        def process(self, frames: list[Frame]) -> list[Frame]:
            seen.append(cv2.getNumThreads())
            return frames

    before = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        Pipeline(synthetic_source(3), [Probe()], [list_sink(32, 32)]).run()
        assert seen == [1, 1, 1]  # the stages are the parallelism (p2c.stream.threads)
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(before)


def test_per_stage_time_counts_the_frames_each_stage_handled(synthetic_source, list_sink) -> None:
    stage = Mark("slow", delay=0.01)
    report = Pipeline(synthetic_source(4), [stage], [list_sink(32, 32)]).run().to_report()
    assert report["frames"]["in"] == report["frames"]["out"] == 4
    slow = report["stages"]["slow"]
    assert slow["frames"] == 4 and slow["wall_ms_per_frame"] >= 10.0 and slow["cpu_ms_per_frame"] >= 0


class PacedSource:
    """A live source: ``count`` frames, one every ``interval`` seconds, like a camera."""

    name = "paced"
    live = True
    damaged = 0

    def __init__(self, count: int, interval: float) -> None:
        self.count, self.interval = count, interval

    def __enter__(self) -> PacedSource:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def __iter__(self):  # type: ignore[no-untyped-def]
        for index in range(self.count):
            time.sleep(self.interval)
            yield Frame(
                index=index, pts=index, time_base=Fraction(1, 200), image=np.zeros((8, 8, 3), np.uint8)
            )


def test_live_stages_take_frames_just_in_time_so_no_work_is_thrown_away(list_sink) -> None:
    """A fast stage before a slow one: live, it does not track frames the slow one never takes."""
    fast, slow = Mark("fast", delay=0.002), Mark("slow", delay=0.03)
    config = PipelineConfig(live=True, queue_size=1)
    stats = Pipeline(PacedSource(60, 0.005), [fast, slow], [list_sink(8, 8)], config).run()
    assert stats.frames_in == 60 and stats.frames_out + stats.dropped == 60
    assert len(fast.calls) <= len(slow.calls) + 2, (len(fast.calls), len(slow.calls))
    assert stats.frames_out == len(slow.calls)  # every frame the slow stage made was shown


class Bursty(Mark):
    """A stage whose ``burst_at``-th call takes ``burst`` seconds instead of ``delay``."""

    def __init__(self, name: str, delay: float, burst_at: int, burst: float) -> None:
        super().__init__(name, delay)
        self.burst_at, self.burst = burst_at, burst

    def process(self, frames: list[Frame]) -> list[Frame]:
        if len(self.calls) == self.burst_at:
            time.sleep(self.burst - self.delay)
        return super().process(frames)


def test_a_burst_costs_one_frame_and_no_frame_waits_behind_it(list_sink) -> None:
    """A stage that once takes ten times its usual time: the stage before it makes no frame that
    would wait for the burst to end, so the frames after it wait no longer than usual."""
    fast, slow = Mark("fast", delay=0.005), Bursty("slow", delay=0.02, burst_at=10, burst=0.25)
    sink = list_sink(8, 8)
    Pipeline(PacedSource(80, 0.01), [fast, slow], [sink], PipelineConfig(live=True, queue_size=1)).run()
    waits = []
    for frame in sink.frames:
        times = {name: (started, finished) for name, started, finished in frame.stages}
        waits.append(times["slow"][0] - times["fast"][1])  # in the queue between the two
    assert len(slow.calls) > 12 and max(slow.calls) == 1
    assert max(waits) < 0.1, sorted(waits)[-3:]  # a frame made during the burst waited 0.2 s
