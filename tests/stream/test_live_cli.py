"""p2c-stream with a clip standing in for the camera, fake engines and a fake virtual camera."""

from __future__ import annotations

import glob
from pathlib import Path

import av
import numpy as np
import pytest

from p2c.stream.commands import live
from p2c.stream.frame import Frame
from p2c.stream.pipeline import VideoConfig, cartoonize
from p2c.stream.sinks import VirtualCameraSink
from p2c.stream.sinks import virtualcam as virtualcam_module
from p2c.stream.sinks.base import FrameSink
from p2c.stream.sources import ClipCameraSource


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch, invert_engine):
    engines = []

    def open_engine(_args: object, live: bool = False):
        engines.append(invert_engine())
        return engines[-1]

    monkeypatch.setattr(live, "open_engine", open_engine)
    return engines


class FakeCamera:
    def __init__(self, width: int, height: int, fps: float) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.sent: list[np.ndarray] = []
        self.closed = False
        FakeCamera.last = self

    def send(self, image: np.ndarray) -> None:
        self.sent.append(image)

    def sleep_until_next_frame(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_clip_as_camera_into_a_file_and_a_virtual_camera(
    talking_clip: Path,
    tmp_path: Path,
    tiny_weights: Path,
    fake_engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(virtualcam_module, "pyvirtualcam_factory", FakeCamera)
    out = tmp_path / "live.mp4"
    argv = ["--camera", str(talking_clip), "--output", str(out), "--virtualcam", "--frames", "20"]
    assert live.main([*argv, "--weights", str(tiny_weights)]) == 0
    err = capsys.readouterr().err
    assert "fps | latency p50" in err  # the live status line
    assert "p2c-stream: " in err.strip().splitlines()[-1] and "dropped" in err
    camera = FakeCamera.last
    assert camera.closed and 0 < len(camera.sent) <= 20 and camera.sent[0].shape == (512, 512, 3)
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == len(camera.sent)
    assert fake_engine[0].closed


def test_a_registered_sink_is_an_option_of_p2c_stream(
    talking_clip: Path, tiny_weights: Path, fake_engine, tally_sink, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--camera", str(talking_clip), "--tally", "--frames", "6", "--weights", str(tiny_weights)]
    assert live.main(argv) == 0
    (tally,) = tally_sink.opened
    assert 0 < len(tally.indexes) <= 6 and tally.expected_shape == (512, 512, 3)
    capsys.readouterr()
    assert live.main(["--camera", "0", "--weights", str(tiny_weights)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "nothing to send the cartoon to" in error and "--tally" in error


class CountingSink(FrameSink):
    name = "count"

    def _write(self, frame: Frame, image: np.ndarray) -> None:
        pass


def test_live_policy_keeps_latency_bounded_with_a_slow_engine(talking_clip: Path, invert_engine) -> None:
    # 0.2 s per engine call against a 25 fps camera: queued instead of dropped, the 3.1 s clip
    # would come out ~12 s late by its end.
    slow = invert_engine(delay=0.2)
    source = ClipCameraSource(talking_clip)
    with source:
        sink = CountingSink(source.info.width, source.info.height)
        stats = cartoonize(source, [sink], slow, VideoConfig(batch_size=1))
    assert stats.frames_in == 78
    assert stats.dropped > 0 and stats.frames_out + stats.dropped == 78
    assert stats.latency_p95_ms < 2000


def test_a_camera_that_cannot_be_opened_is_one_line(
    tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert live.main(["--camera", "97", "--preview", "--weights", str(tiny_weights)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("p2c-stream: error: cannot open camera 97") and len(err.splitlines()) == 1


def test_no_virtual_camera_device_says_how_to_create_one(
    talking_clip: Path, tiny_weights: Path, fake_engine, capsys: pytest.CaptureFixture[str]
) -> None:
    if glob.glob("/dev/video*"):
        pytest.skip("a video device exists here; the missing-device message cannot be provoked")
    argv = ["--camera", str(talking_clip), "--virtualcam", "--frames", "3", "--weights", str(tiny_weights)]
    assert live.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "modprobe v4l2loopback" in err and "OBS" in err and "Traceback" not in err


def test_a_camera_that_disconnects_stops_cleanly_and_says_so(
    tmp_path: Path, tiny_weights: Path, fake_engine, flaky_camera, capsys
) -> None:
    flaky_camera(frames=12, shape=(48, 64, 3), value=90)
    out = tmp_path / "rec.mp4"
    assert live.main(["--camera", "0", "--output", str(out), "--weights", str(tiny_weights)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("p2c-stream: error: camera 0 disconnected after 12 frames")
    written = int(err[-2].split("p2c-stream: ")[1].split(" frames")[0])  # a live run may drop some
    with av.open(str(out)) as container:  # the recording was finalised
        assert sum(1 for _ in container.decode(video=0)) == written >= 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--camera", "0"], "nothing to send the cartoon to"),
        (["--camera", "/no/such/clip.mp4", "--preview"], "not found"),
        (["--camera", "0", "--output", "/no/such/folder/out.mp4"], "output folder"),
    ],
)
def test_bad_options_are_one_line(
    argv: list[str], message: str, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert live.main([*argv, "--weights", str(tiny_weights)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_without_weights_it_says_so_before_opening_the_camera(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import cv2

    def no_camera(*_: object) -> None:
        raise AssertionError("the camera must not be opened without weights")

    monkeypatch.setattr(cv2, "VideoCapture", no_camera)
    monkeypatch.setattr("p2c.models.weights._DEFAULT_DIR", tmp_path)  # a package without the model
    assert live.main(["--camera", "0", "--preview"]) == 2
    assert "no default model" in capsys.readouterr().err


def test_virtual_camera_sink_with_the_real_backend_when_a_device_exists() -> None:
    import pyvirtualcam  # a core dependency: only the device may be missing

    try:
        pyvirtualcam.Camera(width=64, height=48, fps=25).close()
    except RuntimeError as error:
        pytest.skip(f"no virtual camera device on this machine: {error}")
    with VirtualCameraSink(64, 48, fps=25) as sink:
        sink.write(Frame.at_seconds(0, 0.0, np.zeros((48, 64, 3), np.uint8)))
    assert sink.frames_written == 1


def test_a_live_run_with_one_face_gives_the_engine_two_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """One face live: the engine sits on every frame's path and a core is idle part of each frame,
    so it gets two threads; a file, several faces, or --threads keep their own."""
    import argparse

    from p2c.stream.commands import video_options

    made = []
    monkeypatch.setattr("p2c.engine.create_engine", lambda weights, config: made.append(config.threads))

    def args(max_faces: int, threads: int | None = None) -> argparse.Namespace:
        parser = live.build_parser()
        argv = ["--camera", "clip.mp4", "--null", "--max-faces", str(max_faces)]
        return parser.parse_args(argv + ([] if threads is None else ["--threads", str(threads)]))

    video_options.open_engine(args(1), live=True)
    video_options.open_engine(args(1), live=False)
    video_options.open_engine(args(2), live=True)
    video_options.open_engine(args(1, threads=1), live=True)
    assert made == [2, None, None, 1]


def test_flow_quality_is_fine_for_files_and_balanced_live() -> None:
    config = VideoConfig()
    assert config.flow_quality(live=False) == "fine" and config.flow_quality(live=True) == "balanced"
    assert VideoConfig(flow="coarse").flow_quality(live=False) == "coarse"
    assert VideoConfig(flow=None).flow_quality(live=True) is None
    with pytest.raises(ValueError, match="flow must be 'auto'"):
        VideoConfig(flow="sharp")
