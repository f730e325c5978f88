from __future__ import annotations

import gc
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from p2c.errors import InputNotFoundError, InvalidInputError
from p2c.stream.sources import ClipCameraSource, VideoFileSource, WebcamSource, open_camera


def test_file_source_yields_every_frame_with_container_timestamps(make_clip) -> None:
    path = make_clip(count=12, width=64, height=48, fps=25)
    with VideoFileSource(path) as source:
        frames = list(source)
        info = source.info
    assert (info.width, info.height, info.fps, info.frame_count) == (64, 48, 25.0, 12)
    assert [f.index for f in frames] == list(range(12))
    assert frames[0].image.shape == (48, 64, 3) and frames[0].image.dtype == np.uint8
    assert [round(f.timestamp, 3) for f in frames] == [round(i / 25, 3) for i in range(12)]
    assert source.damaged == 0 and not source.live


def test_file_source_reports_audio_and_selects_a_window(talking_clip_with_audio: Path) -> None:
    with VideoFileSource(talking_clip_with_audio, start=1.0, duration=0.5) as source:
        frames = list(source)
        info = source.info
    assert info.audio is not None and info.audio.codec == "aac" and info.audio.channels == 2
    assert info.time_base == Fraction(1, 15360) and info.fps == 30.0
    assert len(frames) == 15 == info.frame_count
    assert frames[0].timestamp == pytest.approx(1.0, abs=1e-3)


def test_file_source_honours_rotation_metadata(tmp_path: Path) -> None:
    path = tmp_path / "rotated.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(-90)  # shot with the phone turned: show it rotated clockwise
        image = np.zeros((32, 64, 3), np.uint8)
        image[:, :8] = 255  # a white band on the left edge
        for _ in range(3):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with VideoFileSource(path) as source:
        frame = next(iter(source))
        assert (source.info.width, source.info.height) == (32, 64)
    assert frame.image.shape == (64, 32, 3)
    assert frame.image[:8].mean() > 200 and frame.image[-8:].mean() < 50  # the band is now on top


def test_missing_and_non_video_files_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="does not exist"):
        VideoFileSource(tmp_path / "nope.mp4").open()
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(InvalidInputError, match=r"cannot read .* as a video"):
        VideoFileSource(text).open()


def _faststart_copy(source: Path, target: Path) -> Path:
    """Remux with the index first, so a copy cut in half still opens (like a stream cut mid-way)."""
    with av.open(str(source)) as src, av.open(str(target), "w", options={"movflags": "faststart"}) as out:
        video = src.streams.video[0]
        copy = out.add_stream_from_template(video)
        for packet in src.demux(video):
            if packet.dts is None:
                continue
            packet.stream = copy
            out.mux(packet)
    return target


def test_truncated_file_gives_every_decodable_frame_and_counts_damage(
    talking_clip: Path, tmp_path: Path
) -> None:
    whole = _faststart_copy(talking_clip, tmp_path / "whole.mp4")
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with VideoFileSource(cut) as source:
        frames = list(source)
    assert 10 < len(frames) < 78
    assert source.damaged >= 78 - len(frames) and source.missing == 78 - len(frames)


def test_truncated_file_without_index_is_one_clear_error(talking_clip: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(talking_clip.read_bytes()[:100_000])
    with pytest.raises(InvalidInputError, match="damaged or cut short"):
        VideoFileSource(cut).open()


def test_clip_camera_plays_at_its_own_rate(make_clip) -> None:
    path = make_clip(count=10, fps=25)
    started = time.monotonic()
    with ClipCameraSource(path) as source:
        frames = list(source)
    assert source.live and len(frames) == 10
    assert time.monotonic() - started >= 9 / 25 * 0.9  # paced like a camera, not as fast as decoding
    assert frames[-1].arrived - frames[0].arrived == pytest.approx(9 / 25, abs=0.1)


def test_open_camera_picks_the_source_kind(make_clip, tmp_path: Path) -> None:
    assert isinstance(open_camera(str(make_clip())), ClipCameraSource)
    assert isinstance(open_camera("3"), WebcamSource)
    with pytest.raises(InputNotFoundError, match="not found"):
        open_camera(str(tmp_path / "missing.mp4"))


def test_a_camera_that_cannot_be_opened_is_one_clear_error() -> None:
    with pytest.raises(InputNotFoundError, match="cannot open camera 97"):
        WebcamSource(97).open()


def test_webcam_that_disconnects_ends_the_stream(monkeypatch: pytest.MonkeyPatch, flaky_camera) -> None:
    flaky_camera(frames=5, shape=(24, 32, 3))
    monkeypatch.setattr("p2c.stream.sources.time.sleep", lambda _s: None)
    with WebcamSource(0, mirror=True) as source:
        frames = list(source)
    assert len(frames) == 5 and source.disconnected


def _colour_frames(count: int, width: int = 96, height: int = 64) -> list[np.ndarray]:
    """Smooth RGB frames with a distinct colour in each corner (JPEG keeps them within a few levels)."""
    rows, cols = np.mgrid[0:height, 0:width]
    frames = []
    for index in range(count):
        image = np.zeros((height, width, 3), np.uint8)
        image[..., 0] = 200 * cols // width
        image[..., 1] = 200 * rows // height
        image[..., 2] = 40 * index
        frames.append(image)
    return frames


def test_an_mjpeg_file_gives_every_frame_in_rgb(tmp_path: Path) -> None:
    """A webcam's format as a file (what the 1080p MJPEG scenario plays): every frame, RGB."""
    import cv2

    frames = _colour_frames(4)
    path = tmp_path / "camera.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, (96, 64))
    for image in frames:
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()
    with VideoFileSource(path) as source:
        got = list(source)
        assert source.info.codec == "mjpeg" and source.damaged == 0
    assert [frame.index for frame in got] == [0, 1, 2, 3]
    for frame, image in zip(got, frames, strict=True):
        assert frame.image.shape == (64, 96, 3)
        assert np.abs(frame.image.astype(int) - image).mean() < 3  # the colours, in RGB order


class _MjpegCapture:
    """A fake MJPEG camera through OpenCV: JPEGs raw once CONVERT_RGB is off (``raw_works``: they
    decode), else BGR images as OpenCV's own decoding gives them."""

    def __init__(self, frames: list[np.ndarray], raw_works: bool = True) -> None:
        import cv2

        self.frames, self.raw_works, self.reads = frames, raw_works, 0
        self.settings: dict[int, float] = {cv2.CAP_PROP_FOURCC: 0.0, cv2.CAP_PROP_CONVERT_RGB: 1.0}

    def __call__(self, *_: object) -> _MjpegCapture:
        return self

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def set(self, prop: int, value: float) -> bool:
        self.settings[prop] = value
        return True

    def get(self, prop: int) -> float:
        return float(self.settings.get(prop, 30.0))

    def read(self) -> tuple[bool, np.ndarray | None]:
        import cv2

        if self.reads >= len(self.frames):
            return False, None
        image = self.frames[self.reads]
        self.reads += 1
        if self.settings[cv2.CAP_PROP_CONVERT_RGB] == 0:
            if not self.raw_works:
                return True, np.zeros((1, 100), np.uint8)  # not a JPEG
            _, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            return True, jpeg.reshape(1, -1)
        return True, cv2.cvtColor(image, cv2.COLOR_RGB2BGR)

    def release(self) -> None:
        pass


@pytest.mark.parametrize("raw_works", [True, False])
def test_an_hd_webcam_is_asked_for_mjpeg_and_its_frames_come_out_rgb(
    monkeypatch: pytest.MonkeyPatch, raw_works: bool
) -> None:
    import cv2

    from p2c.stream.mjpeg import MJPG

    frames = _colour_frames(3)
    camera = _MjpegCapture(frames, raw_works)
    monkeypatch.setattr(cv2, "VideoCapture", camera)
    monkeypatch.setattr("p2c.stream.sources.time.sleep", lambda _s: None)
    with WebcamSource(0, width=1920, height=1080) as source:
        got = [frame.image for frame in source]
    assert camera.settings[cv2.CAP_PROP_FOURCC] == MJPG  # asked for MJPEG at an HD size
    # Raw JPEGs decoded by p2c when the backend gives them; else OpenCV's decoding, read again.
    assert camera.settings[cv2.CAP_PROP_CONVERT_RGB] == (0 if raw_works else 1)
    assert len(got) == (3 if raw_works else 2) and source.info.width == 96 and source.info.height == 64
    for image, original in zip(got, frames[-len(got) :], strict=True):
        assert np.abs(image.astype(int) - original).mean() < 3  # RGB, not BGR


def test_a_damaged_or_empty_jpeg_decodes_to_nothing() -> None:
    from p2c.stream.mjpeg import MjpegDecoder

    decoder = MjpegDecoder()
    assert decoder.decode(b"") is None and decoder.decode(b"not a jpeg at all") is None
    assert decoder.decode(np.zeros((1, 64), np.uint8)) is None


def _decoder_threads() -> int:
    """FFmpeg's decoding threads alive in this process (Linux names them ``av:CODEC:...``)."""
    tasks = Path("/proc/self/task")
    return sum((task / "comm").read_text().startswith("av:") for task in tasks.iterdir())


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="thread names are read from Linux's /proc")
def test_a_clip_played_as_a_camera_decodes_in_its_reading_thread(talking_clip: Path) -> None:
    """Live, at the camera's rate, no FFmpeg frame threads: the stages already use every core."""
    gc.collect()  # an earlier test's file decoder, not yet collected, may still hold its threads
    before = _decoder_threads()
    with ClipCameraSource(talking_clip) as source:
        frames = iter(source)
        for _ in range(3):
            next(frames)
        assert _decoder_threads() <= before
    with VideoFileSource(talking_clip) as source:  # a file decodes on FFmpeg's frame threads: seen
        frames = iter(source)
        for _ in range(3):
            next(frames)
        assert _decoder_threads() > before
