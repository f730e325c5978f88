"""The adaptive live policy and the tracker's segmentation refresh, with scripted faces and counters."""

from __future__ import annotations

import numpy as np
import pytest
from test_tracking import IMAGE, Script, _face_at, _tracker

from p2c.stream.adaptive import AdaptiveConfig, LivePolicy, PolicyLevel
from p2c.stream.faces import AlignerConfig, FaceAligner
from p2c.stream.frame import Frame
from p2c.stream.stats import PipelineStats
from p2c.stream.tracking import TrackingStage


class CountingAligner(FaceAligner):
    """The real aligner with a fake segmenter (a mask whose value counts the calls)."""

    def __init__(self) -> None:
        super().__init__(AlignerConfig(max_faces=2))
        self.calls = 0

    def segment(self, crop: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.full(crop.shape[:2], 1.0 / self.calls, np.float32)

    def warm_up(self) -> None:
        return None


def _busy(stats: PipelineStats, fraction: float, span: float = 1.0, dropped: int = 0) -> None:
    stats.add_stage_time("engine", fraction * span)
    stats.add_stage_time("source", span)  # the source sleeps: never counts as load
    stats.add(dropped=dropped)


def test_a_busy_machine_lowers_work_before_dropping_frames_and_recovers() -> None:
    stats = PipelineStats()
    policy = LivePolicy(AdaptiveConfig.starting_at(2), base_detect_every=15)
    policy.observe(stats, now=0.0)
    assert policy.level == PolicyLevel(2, 1) and stats.snapshot().policy == ""
    _busy(stats, 0.95, dropped=2)
    policy.observe(stats, now=1.0)  # start-up (first detection, first calls): not judged
    assert policy.index == 0 and stats.snapshot().policy_level == 0
    _busy(stats, 0.95)
    policy.observe(stats, now=2.0)  # the engine fills 95 % of the frame time: one level down in work
    snap = stats.snapshot()
    assert policy.level == PolicyLevel(4, 2, coarse_flow=True) and snap.policy_level == 1
    assert snap.policy == "segmentation every 4 frames, detection every 30; coarse flow"
    _busy(stats, 0.5, dropped=3)
    policy.observe(stats, now=3.0)  # frames dropped: the last level
    assert policy.level == PolicyLevel(8, 4, cartoon_every=2, coarse_flow=True)
    _busy(stats, 0.9, dropped=2)
    policy.observe(stats, now=4.0)  # nothing left to lower: the queues drop frames, and it says so
    assert stats.snapshot().policy == (
        "segmentation every 8 frames, detection every 60; coarse flow; cartoons every 2; dropping frames"
    )
    for second in range(5, 8):
        _busy(stats, 0.3)
        policy.observe(stats, now=float(second))
    snap = stats.snapshot()  # three calm windows: one level back
    assert policy.index == 1 and snap.policy_level == 1 and snap.adaptations == 3
    _busy(stats, 0.7)
    policy.observe(stats, now=8.0)  # in between: stays
    policy.observe(stats, now=8.5)  # less than a window: not judged
    assert policy.index == 1


def test_frames_that_wait_too_long_lower_work_too_and_quick_ones_bring_it_back() -> None:
    """The frame rate kept but the p95 latency over 80 ms (frames waiting behind each other): one
    level up; back down only once the latency is under 60 ms again, not merely under 80."""
    stats, policy = PipelineStats(), LivePolicy(AdaptiveConfig.starting_at(2))
    policy.observe(stats, now=0.0)
    second = 0.0

    def window(latency_s: float) -> None:  # 30 frames out, the last one closes the window
        nonlocal second
        _busy(stats, 0.5)
        for frame in range(1, 31):
            policy.observe(stats, now=second + frame / 30, latency_s=latency_s)
        second += 1.0

    window(0.2)  # start-up: not judged
    assert policy.index == 0
    window(0.09)
    assert policy.index == 1 and "p95" not in stats.snapshot().policy
    for _ in range(4):
        window(0.07)  # under the budget, not under 60 ms: stays
    assert policy.index == 1
    for _ in range(4):
        window(0.04)
    assert policy.index == 0
    quiet = LivePolicy(AdaptiveConfig(latency_high_s=None))
    for index in range(5):
        _busy(stats, 0.5)
        quiet.observe(stats, now=float(index), latency_s=0.5)
    assert quiet.index == 0  # latency not judged


def test_policy_config_is_validated() -> None:
    with pytest.raises(ValueError, match="busy_low < busy_high"):
        AdaptiveConfig(busy_low=0.9, busy_high=0.8)
    with pytest.raises(ValueError, match="at least one level"):
        AdaptiveConfig(levels=())
    with pytest.raises(ValueError, match=">= 1"):
        PolicyLevel(0, 1)
    with pytest.raises(ValueError, match="latency_low_s < latency_high_s"):
        AdaptiveConfig(latency_high_s=0.05, latency_low_s=0.06)


def _frames(count: int) -> list[Frame]:
    return [Frame.at_seconds(i, i / 25, IMAGE.copy()) for i in range(count)]


def test_heads_are_segmented_every_nth_frame_and_the_mask_is_reused_between() -> None:
    face = _face_at(150, 100, 60)
    meshes = [[face]] * 6 + [[]] * 2 + [[face]] * 4  # lost on frames 6-7, back on 8
    aligner, stats = CountingAligner(), PipelineStats()
    stage = TrackingStage(_tracker(Script(meshes), max_faces=1), aligner, stats=stats, segment_every=3)
    masks = [frame.faces[0].mask[0, 0] if frame.faces else None for frame in stage.process(_frames(12))]
    # Segmented on frames 0 and 3 (every 3rd), then on 8, the first back after the gap, and 11.
    assert aligner.calls == 4 and stats.snapshot().segmentations == 4
    assert masks[0] == masks[1] == masks[2] != masks[3] == masks[4] == masks[5]
    assert masks[6] is None and masks[7] is None
    assert masks[5] != masks[8] == masks[9] == masks[10] != masks[11]


def test_the_policy_level_sets_segmentation_and_detection_rates() -> None:
    one_face = [[_face_at(80, 100)]] * 40  # max_faces 2: the tracker keeps searching for a second face
    script = Script(one_face)
    policy = LivePolicy(AdaptiveConfig(levels=(PolicyLevel(1, 1), PolicyLevel(5, 2))), base_detect_every=10)
    policy.index = 1  # as if the machine had fallen behind
    aligner = CountingAligner()
    stage = TrackingStage(_tracker(script, max_faces=2, detect_every=10), aligner, policy=policy)
    stage.process(_frames(40))
    assert script.detect_calls == [0, 20]  # every 20 frames, not 10
    assert aligner.calls == 8  # every 5th frame


@pytest.mark.slow
def test_segmenting_every_few_frames_stays_within_tolerance_of_every_frame(
    talking_clip, invert_engine, list_sink
) -> None:
    """The pixel cost of reusing a face's mask between refreshes, on the real clip, file mode (so
    the same frames are compared): mean absolute difference from segmenting every frame, in levels
    of 255, over the clip and on the worst frame. The invert engine makes the cartoon the photo's
    negative, so a mask edge that moves shows more than it would with a real cartoon.
    Measured on the 78-frame clip: every 2nd frame (live default) 0.18 / 0.54, every 8th (the
    policy's last level) 0.67 / 1.88."""
    from p2c.stream.pipeline import VideoConfig, cartoonize
    from p2c.stream.sources import VideoFileSource

    def run(every: int) -> list[np.ndarray]:
        with VideoFileSource(talking_clip, duration=1.6) as source:
            sink = list_sink(source.info.width, source.info.height)
            cartoonize(source, [sink], invert_engine(), VideoConfig(segment_every=every, batch_size=4))
        return [frame.result.astype(np.int16) for frame in sink.frames]

    reference = run(1)
    for every, clip_mean, worst_frame in ((2, 0.5, 1.0), (8, 1.0, 2.5)):
        means = [float(np.abs(a - b).mean()) for a, b in zip(reference, run(every), strict=True)]
        assert len(means) == 40 and np.mean(means) <= clip_mean and max(means) <= worst_frame, (every, means)


def test_at_the_last_level_faces_take_turns_for_new_cartoons_and_keep_their_last_one(invert_engine) -> None:
    from p2c.stream.batching import EngineStage
    from p2c.stream.compositing import CompositeStage, CpuCompositor
    from p2c.stream.stage import BatchPolicy

    faces = [_face_at(80, 100, 60), _face_at(220, 100, 60)]
    policy = LivePolicy(AdaptiveConfig(levels=(PolicyLevel(1, 1, cartoon_every=2),)))
    tracker = TrackingStage(_tracker(Script([faces] * 6), max_faces=2), CountingAligner(), policy=policy)
    engine = invert_engine()
    composite = CompositeStage(CpuCompositor(), cartoon_weight=1.0)
    # Dark grey, not black: the paste takes the white the head mask put in the crop out of the
    # cartoon, and a black crop whitened through these partial masks inverts to exactly that white.
    frames = tracker.process([Frame.at_seconds(i, i / 25, np.full_like(IMAGE, 40)) for i in range(6)])
    due = [[face.cartoon_due for face in frame.faces] for frame in frames]
    assert due[0] == [True, True]  # a new face gets its cartoon at once
    assert all(sum(d) == 1 for d in due[1:])  # then one face per frame, in turns
    for frame in frames:
        composite.process(EngineStage(engine, BatchPolicy()).process([frame]))
    assert engine.calls == [2, 1, 1, 1, 1, 1]  # crops per engine call
    for frame in frames:  # both faces pasted on every frame, new cartoon or last one
        for face in frame.faces:
            assert frame.output is not None
            x, y = face.landmarks.mean(axis=0).astype(int)
            assert not np.array_equal(frame.output[y, x], frame.image[y, x])


def test_a_busy_policy_level_coarsens_the_compositors_flow(invert_engine) -> None:
    """At a level with ``coarse_flow`` the cartoon EMA finds its flow at the coarse quality; back at
    the normal level, at the run's own again. A run without flow keeps none."""
    from p2c.stream.batching import EngineStage
    from p2c.stream.compositing import CompositeStage, CpuCompositor
    from p2c.stream.stage import BatchPolicy

    policy = LivePolicy(AdaptiveConfig(levels=(PolicyLevel(1, 1), PolicyLevel(1, 1, coarse_flow=True))))
    tracker = TrackingStage(_tracker(Script([[_face_at(120, 100, 60)]] * 6), max_faces=1), CountingAligner())
    engine, composite = (
        EngineStage(invert_engine(), BatchPolicy()),
        CompositeStage(CpuCompositor(), flow="balanced", policy=policy),
    )
    qualities = []
    for index, frame in enumerate(tracker.process(_frames(6))):
        policy.index = 1 if 2 <= index < 4 else 0
        composite.process(engine.process([frame]))
        ((smoother, _),) = composite._smoothers.values()
        qualities.append(smoother.flow)
    assert qualities == ["balanced", "balanced", "coarse", "coarse", "balanced", "balanced"]
    policy.index = 1
    assert CompositeStage(CpuCompositor(), flow=None, policy=policy)._flow_now() is None
