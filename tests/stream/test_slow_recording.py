"""A slow run's recording reaches the disk by the wall clock: a SIGKILL keeps all but its last 2 s."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from p2c.stream.frame import Frame
from p2c.stream.sinks import VideoFileSink
from p2c.stream.sinks.output_file import FLUSH_EVERY_S, FlushDeadline


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _frame(index: int, fps: int = 25, ticks: int = 512) -> Frame:
    ys, xs = np.mgrid[0:48, 0:64]
    image = np.stack([(xs * 4 + index * 9) % 256, (ys * 5) % 256, np.full_like(xs, 60)], -1).astype(np.uint8)
    return Frame(index=index, pts=index * ticks, time_base=Fraction(1, fps * ticks), image=image)


def _frames_on_disk(path: Path) -> int:
    """What a player gets from the file as it is now (a copy, as after a SIGKILL)."""
    snapshot = path.with_name("snapshot.mp4")
    snapshot.write_bytes(path.read_bytes())
    frames = 0
    try:
        with av.open(str(snapshot)) as container:
            for packet in container.demux(video=0):
                frames += len(packet.decode())
    except av.error.FFmpegError:
        pass
    return frames


@pytest.mark.parametrize(("seconds_per_frame", "ticks"), [(1.5, 512), (0.4, 512), (0.7, 1)])
def test_a_slow_recording_is_on_disk_but_for_its_last_two_seconds(
    tmp_path: Path, seconds_per_frame: float, ticks: int
) -> None:
    clock = FakeClock()
    path = tmp_path / "slow.mp4"
    lost = []
    with VideoFileSink(path, 64, 48, 25, Fraction(1, 25 * ticks), clock=clock) as sink:
        for index in range(30):
            clock.now += seconds_per_frame  # the model's time for this frame
            sink.write(_frame(index, ticks=ticks))
            on_disk = _frames_on_disk(path)
            lost.append((index + 1 - on_disk) * seconds_per_frame)  # seconds of finished work not kept
    # Without the wall clock: nothing on disk before the first second of video (25 frames) and the
    # encoder's dozen frames besides, 37 s of work at 1.5 s a frame.
    assert max(lost) <= max(FLUSH_EVERY_S, seconds_per_frame), lost
    with av.open(str(path)) as container:  # and the whole file decodes, every frame in order ...
        stream = container.streams.video[0]
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        # ... and lasts as long as its frames (the encoder's restarts add no time)
        assert float(stream.duration * stream.time_base) == pytest.approx(30 / 25)
        assert stream.average_rate == 25
    assert len(decoded) == 30 and sink._deadline is not None and sink._deadline.forced >= 5
    for index in (1, 14, 28):  # each frame where it belongs (4:2:0 blurs these stripes a little)
        errors = [
            np.abs(decoded[index].astype(int) - _frame(i).image).mean() for i in (index - 1, index, index + 1)
        ]
        assert errors[1] < 6 and errors[1] < min(errors[0], errors[2]), errors


def test_a_camera_clock_with_a_stall_records_every_frame(tmp_path: Path) -> None:
    """A live camera's frames come at uneven times (microseconds), and a stall holds the
    fragment past its deadline: the encoder restarts while the frame times jump."""
    clock = FakeClock()
    path = tmp_path / "live.mp4"
    rng = np.random.default_rng(3)
    gaps = list(rng.uniform(0.015, 0.050, 40))
    gaps[12] = 1.0  # the camera stalls for a second
    times = np.cumsum(gaps)
    with VideoFileSink(path, 64, 48, 30, Fraction(1, 1_000_000), clock=clock) as sink:
        for index, at in enumerate(times):
            clock.now = 100.0 + float(at) * 3  # the wall clock runs past the 2 s deadline a few times
            frame = _frame(index)
            sink.write(
                Frame(index=index, pts=round(at * 1e6), time_base=Fraction(1, 1_000_000), image=frame.image)
            )
    assert sink._deadline is not None and sink._deadline.forced >= 2
    with av.open(str(path)) as container:
        assert len(list(container.decode(video=0))) == len(times)


def test_a_fast_recording_keeps_its_own_fragments(tmp_path: Path) -> None:
    clock = FakeClock()
    sink = VideoFileSink(tmp_path / "fast.mp4", 64, 48, 25, Fraction(1, 25 * 512), clock=clock)
    with sink:
        for index in range(100):
            clock.now += 1 / 50  # twice real time: the muxer's fragment per second comes every 0.5 s
            sink.write(_frame(index))
    assert sink._deadline is not None and sink._deadline.forced == 0


def test_the_deadline_counts_from_the_oldest_frame_not_on_disk() -> None:
    clock = FakeClock()
    deadline = FlushDeadline(2.0, clock)
    assert not deadline.due()  # frame 0 at 100.0
    clock.now += 0.5
    assert not deadline.due()  # 0.5 + 0.5 < 1.5
    clock.now += 0.5
    assert deadline.due()  # frame 2 at 101.0: 1.0 + 0.5 >= 1.5
    deadline.on_disk(2)  # frames 0 and 1 are on disk
    clock.now += 0.5
    assert not deadline.due()  # the oldest not on disk is frame 2, 0.5 s old


SLOW_VIDEO = """
import sys, time
from p2c.stream.commands import video

class SlowEngine:
    name, device, precision = "slow", "cpu", "fp32"
    def run(self, batch):
        time.sleep(0.5 * len(batch))
        return -batch
    def close(self):
        pass

video.open_engine = lambda args, live=False: SlowEngine()
sys.exit(video.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_killed_slow_run_keeps_its_work_but_the_last_two_seconds(
    tmp_path: Path, tiny_weights: Path
) -> None:
    out = tmp_path / "slow.mp4"
    command = [sys.executable, "-c", SLOW_VIDEO, "builtin:astronaut-clip", str(out)]
    command += ["--weights", str(tiny_weights), "--batch-size", "1", "--duration", "2"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    seen, written = "", 0
    deadline = time.monotonic() + 180
    while written < 16 and process.poll() is None and time.monotonic() < deadline:
        seen += process.stderr.read(1)
        written = max([int(n) for n in re.findall(r"\s(\d+)/60", seen)] or [0])
    process.kill()  # SIGKILL: no handler runs, nothing is flushed
    process.wait(timeout=30)
    assert written >= 16, seen
    # 0.5 s a frame: frames finished more than 2 s before the kill (all but 4 or 5) are kept.
    assert _frames_on_disk(out) >= written - 5
