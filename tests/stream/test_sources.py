from __future__ import annotations

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
