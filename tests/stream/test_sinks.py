from __future__ import annotations

import glob
from fractions import Fraction
from pathlib import Path
from typing import ClassVar

import av
import numpy as np
import pytest

from p2c.errors import OutputError
from p2c.stream.frame import Frame
from p2c.stream.pipeline import Pipeline
from p2c.stream.sinks import (
    SINKS,
    NullSink,
    PreviewSink,
    SinkTarget,
    VideoFileSink,
    VirtualCameraSink,
    add_sink_arguments,
    build_sinks,
    check_outputs,
    create_sink,
    offered_outputs,
    outputs_from_args,
)
from p2c.stream.sources import VideoFileSource


def _frames(count: int, width: int = 64, height: int = 48, tb: Fraction = Fraction(1, 12800)) -> list[Frame]:
    ys, xs = np.mgrid[0:height, 0:width]
    return [
        Frame(
            index=i,
            pts=i * 512,
            time_base=tb,
            image=np.stack([(xs * 3 + i * 5) % 256, ys * 4 % 256, np.full_like(xs, 90)], -1).astype(np.uint8),
        )
        for i in range(count)
    ]


def test_file_sink_round_trip_keeps_count_rate_duration_and_pixels(tmp_path: Path) -> None:
    frames = _frames(20)
    path = tmp_path / "out.mp4"
    with VideoFileSink(path, 64, 48, fps=25, time_base=Fraction(1, 12800)) as sink:
        for frame in frames:
            sink.write(frame)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert stream.average_rate == 25 and float(stream.duration * stream.time_base) == pytest.approx(0.8)
    assert len(decoded) == 20 and decoded[0].shape == (48, 64, 3)
    error = np.abs(decoded[7].astype(int) - frames[7].image.astype(int)).mean()
    assert error < 4  # codec noise only


def test_file_sink_copies_the_audio_track(talking_clip_with_audio: Path, tmp_path: Path) -> None:
    out = tmp_path / "with_audio.mp4"
    source = VideoFileSource(talking_clip_with_audio, start=1.0, duration=1.0)
    with source:
        info = source.info
        sink = VideoFileSink(
            out, info.width, info.height, info.fps, info.time_base, audio_from=talking_clip_with_audio
        )
        stats = Pipeline(source, [], [sink]).run()
    assert sink.audio_mode == "copy" and stats.frames_out == 30
    with av.open(str(out)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert sum(1 for _ in container.decode(video)) == 30
        assert audio.codec_context.name == "aac"
        assert float(video.duration * video.time_base) == pytest.approx(1.0, abs=0.04)
        assert float(audio.duration * audio.time_base) == pytest.approx(1.0, abs=0.1)


def test_file_sink_can_reencode_the_audio_track(talking_clip_with_audio: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    source = VideoFileSource(talking_clip_with_audio, duration=0.5)
    with source:
        info = source.info
        sink = VideoFileSink(
            out,
            info.width,
            info.height,
            info.fps,
            info.time_base,
            audio_from=talking_clip_with_audio,
            copy_audio=False,
        )
        Pipeline(source, [], [sink]).run()
    assert sink.audio_mode == "re-encode aac -> aac"
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 15
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(audio=0)) > 10


def test_file_sink_in_a_missing_folder_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        VideoFileSink(tmp_path / "no" / "such" / "out.mp4", 64, 48, fps=25).open()


def test_file_sink_finalises_the_file_when_the_run_fails(tmp_path: Path) -> None:
    path = tmp_path / "partial.mp4"
    with (
        pytest.raises(RuntimeError),
        VideoFileSink(path, 64, 48, fps=25, time_base=Fraction(1, 12800)) as sink,
    ):
        for frame in _frames(10):
            sink.write(frame)
        raise RuntimeError("a stage failed")
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 10


def test_sinks_reject_a_frame_of_another_size(tmp_path: Path) -> None:
    frame = _frames(1, width=48, height=64)[0]
    with (
        VideoFileSink(tmp_path / "x.mp4", 64, 48, fps=25) as sink,
        pytest.raises(ValueError, match=r"expected frame shape \(48, 64, 3\) uint8, got \(64, 48, 3\)"),
    ):
        sink.write(frame)


class FakeCamera:
    """pyvirtualcam.Camera's surface: negotiates a size, records frames."""

    instances: ClassVar[list[FakeCamera]] = []

    def __init__(
        self, width: int, height: int, fps: float, force_size: tuple[int, int] | None = None
    ) -> None:
        self.width, self.height = force_size or (width, height)
        self.fps = fps
        self.device = "/dev/fake"
        self.sent: list[np.ndarray] = []
        self.sleeps = 0
        self.closed = False
        FakeCamera.instances.append(self)

    def send(self, image: np.ndarray) -> None:
        assert image.shape == (self.height, self.width, 3) and image.dtype == np.uint8
        self.sent.append(image.copy())

    def sleep_until_next_frame(self) -> None:
        self.sleeps += 1

    def close(self) -> None:
        self.closed = True


def test_virtual_camera_sink_sends_every_frame_to_the_backend() -> None:
    frames = _frames(5)
    with VirtualCameraSink(64, 48, fps=25, camera_factory=FakeCamera, pace=True) as sink:
        for frame in frames:
            sink.write(frame)
    camera = FakeCamera.instances[-1]
    assert len(camera.sent) == 5 and camera.sleeps == 5 and camera.closed
    assert np.array_equal(camera.sent[3], frames[3].image)


def test_virtual_camera_that_negotiates_another_size_is_one_clear_error() -> None:
    def factory(w: int, h: int, fps: float) -> FakeCamera:
        return FakeCamera(w, h, fps, force_size=(640, 480))

    with pytest.raises(OutputError, match="opened at 640x480, not 64x48"):
        VirtualCameraSink(64, 48, fps=25, camera_factory=factory).open()


def test_virtual_camera_without_a_device_says_how_to_create_one() -> None:
    if glob.glob("/dev/video*"):
        pytest.skip("a video device exists here; the missing-device message cannot be provoked")
    with pytest.raises(OutputError, match="modprobe v4l2loopback"):
        VirtualCameraSink(64, 48, fps=25).open()


def test_virtual_camera_on_a_real_device() -> None:
    import pyvirtualcam  # a core dependency: only the device may be missing

    try:
        pyvirtualcam.Camera(width=64, height=48, fps=25).close()
    except RuntimeError as error:
        pytest.skip(f"no virtual camera device on this machine: {error}")
    with VirtualCameraSink(64, 48, fps=25) as sink:
        for frame in _frames(3):
            sink.write(frame)
    assert sink.frames_written == 3


def test_sink_registry() -> None:
    assert set(SINKS) == {"file", "virtualcam", "preview", "null"}
    assert isinstance(
        create_sink("virtualcam", width=8, height=8, fps=5, camera_factory=FakeCamera), VirtualCameraSink
    )
    with pytest.raises(
        ValueError, match=r"unknown sink 'rtmp'; choose one of \['file', 'null', 'preview', 'virtualcam'\]"
    ):
        create_sink("rtmp")


def test_preview_stops_on_q(monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2

    from p2c.stream.sinks import PreviewSink, StopStream

    keys = iter([-1, ord("q")])
    shown: list[np.ndarray] = []
    monkeypatch.setattr(cv2, "namedWindow", lambda *a: None)
    monkeypatch.setattr(cv2, "imshow", lambda _title, image: shown.append(image))
    monkeypatch.setattr(cv2, "waitKey", lambda _ms: next(keys, -1))
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: 1.0)
    monkeypatch.setattr(cv2, "destroyWindow", lambda *a: None)
    frames = _frames(3)
    with PreviewSink(64, 48) as sink:
        sink.write(frames[0])
        with pytest.raises(StopStream):
            sink.write(frames[1])
    assert len(shown) == 2 and np.array_equal(shown[0][..., ::-1], frames[0].image)  # shown as BGR


def test_command_line_options_become_sinks_sized_for_the_run(tmp_path: Path) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_sink_arguments(parser)
    args = parser.parse_args(["--output", str(tmp_path / "o.mp4"), "--virtualcam"])
    outputs = outputs_from_args(args)
    assert outputs == {"file": tmp_path / "o.mp4", "virtualcam": True}
    target = SinkTarget(128, 48, 25.0, Fraction(1, 12800), live=False, audio_from=None)
    file_sink, camera = build_sinks(outputs, target)
    assert isinstance(file_sink, VideoFileSink) and file_sink.expected_shape == (48, 128, 3)
    assert file_sink.time_base == Fraction(1, 12800)
    # A file is faster than real time: the virtual camera holds each frame for its slot.
    assert isinstance(camera, VirtualCameraSink) and camera.pace and camera.fps == 25.0
    (preview,) = build_sinks({"preview": True}, target)
    assert isinstance(preview, PreviewSink) and preview.expected_shape == (48, 128, 3)
    assert offered_outputs() == "--output FILE, --virtualcam, --preview or --null"
    assert offered_outputs("file") == "--virtualcam, --preview or --null"
    (null,) = build_sinks({"null": True}, target)
    assert isinstance(null, NullSink) and null.expected_shape == (48, 128, 3)


def test_a_live_recording_encodes_with_a_faster_preset_than_a_file(tmp_path: Path) -> None:
    file_target = SinkTarget(64, 48, 25.0, Fraction(1, 12800), live=False)
    (file_sink,) = build_sinks({"file": tmp_path / "f.mp4"}, file_target)
    (live_sink,) = build_sinks(
        {"file": tmp_path / "l.mp4"}, SinkTarget(64, 48, 25.0, Fraction(1, 12800), live=True)
    )
    assert isinstance(file_sink, VideoFileSink) and file_sink.preset == "veryfast"
    assert isinstance(live_sink, VideoFileSink) and live_sink.preset == "superfast"
    with live_sink:
        for frame in _frames(4):
            live_sink.write(frame)
    with av.open(str(tmp_path / "l.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 4


def test_the_null_sink_checks_and_counts_frames_and_keeps_nothing() -> None:
    with NullSink(64, 48) as sink:
        for frame in _frames(3):
            sink.write(frame)
        with pytest.raises(
            ValueError, match=r"null: expected frame shape \(48, 64, 3\) uint8, got \(64, 48, 3\)"
        ):
            sink.write(Frame.at_seconds(3, 0.12, np.zeros((64, 48, 3), np.uint8)))
    assert sink.frames_written == 3


def test_p2c_video_takes_the_file_output_as_its_positional_argument(tmp_path: Path) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_sink_arguments(parser, positional="file")
    args = parser.parse_args([str(tmp_path / "o.mp4"), "--preview"])
    assert outputs_from_args(args) == {"file": tmp_path / "o.mp4", "preview": True}
    with pytest.raises(SystemExit):
        parser.parse_args(["--output", "x.mp4"])
    assert outputs_from_args(parser.parse_args(["--null"])) == {"null": True}  # OUT may be left out


def test_outputs_are_checked_before_anything_opens(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"output folder .*nowhere does not exist"):
        check_outputs({"file": tmp_path / "nowhere" / "o.mp4"})
    source = tmp_path / "in.mp4"
    with pytest.raises(OutputError, match="is the input"):
        check_outputs({"file": source}, source=source)
    with pytest.raises(ValueError, match="unknown sink 'rtmp'"):
        check_outputs({"rtmp": True})
    check_outputs({"file": tmp_path / "o.mp4", "preview": True}, source=source)
