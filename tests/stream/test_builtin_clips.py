"""builtin:astronaut-clip: a camera-free clip every source accepts; and a folder given as a video."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import av
import numpy as np
import pytest

from p2c.errors import InvalidInputError
from p2c.stream.builtin_clips import BuiltinClipCamera, BuiltinClipSource, astronaut_clip, is_builtin_clip
from p2c.stream.commands import image as image_command
from p2c.stream.commands import live, video
from p2c.stream.landmarks import LandmarkDetector
from p2c.stream.sources import open_camera, open_video

CLIP = "builtin:astronaut-clip"


@pytest.fixture
def fake_engines(monkeypatch: pytest.MonkeyPatch, invert_engine):
    engines: list = []

    def open_engine(_args: object, live: bool = False):
        engines.append(invert_engine())
        return engines[-1]

    monkeypatch.setattr(video, "open_engine", open_engine)
    monkeypatch.setattr(live, "open_engine", open_engine)
    return engines


def test_the_clip_is_four_seconds_of_720p_at_30_fps_and_the_same_every_time() -> None:
    clip = astronaut_clip()
    assert (clip.width, clip.height, clip.fps, clip.frame_count) == (1280, 720, 30, 120)
    first = clip.render(0)
    assert first.shape == (720, 1280, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, astronaut_clip().render(0))  # made at run time, deterministic


def test_the_camera_moves_smoothly_and_the_loop_closes() -> None:
    clip = astronaut_clip()
    frames = [clip.render(i).astype(np.int16) for i in range(0, clip.frame_count + 1, 2)]
    steps = [float(np.abs(b - a).mean()) for a, b in itertools.pairwise(frames)]
    assert min(steps) > 0.5  # it moves all the time ...
    assert max(steps) < 4 * float(np.median(steps))  # ... without a jump, the replay's seam included
    np.testing.assert_array_equal(clip.render(clip.frame_count), clip.render(0))


def test_the_face_is_found_and_moves_pans_zooms_and_tilts() -> None:
    clip = astronaut_clip()
    with LandmarkDetector() as detector:
        faces = [detector.detect(clip.render(i), max_faces=1) for i in range(0, 120, 15)]
    assert all(len(found) == 1 for found in faces)
    points = [found[0].landmarks for found in faces]
    centres = np.array([p.mean(axis=0) for p in points])
    widths = np.array([p[:, 0].max() - p[:, 0].min() for p in points])
    tilts = np.degrees([np.arctan2(*(p[45] - p[36])[::-1]) for p in points])  # outer eye corners
    assert np.ptp(centres[:, 0]) > 40 and np.ptp(centres[:, 1]) > 15  # pixels of the 720p frame
    assert widths.max() / widths.min() > 1.15
    assert np.ptp(tilts) > 6
    assert 180 < widths.mean() < 400  # a webcam's framing of a person at a desk


def test_the_clip_plays_as_a_file_with_a_window() -> None:
    with open_video(CLIP, start=1.0, duration=0.5) as source:
        assert isinstance(source, BuiltinClipSource) and not source.live
        frames = list(source)
        info = source.info
    assert (info.width, info.height, info.fps, info.frame_count, info.audio) == (1280, 720, 30.0, 15, None)
    assert [round(f.timestamp, 4) for f in frames] == [round(1.0 + i / 30, 4) for i in range(15)]
    np.testing.assert_array_equal(frames[0].image, astronaut_clip().render(30))


def test_the_clip_plays_as_a_camera_at_its_rate() -> None:
    source = open_camera(CLIP, fps=10)
    assert isinstance(source, BuiltinClipCamera)
    started = time.monotonic()
    with source:
        frames = [frame for frame, _ in zip(source, range(6), strict=False)]
    assert source.live and len(frames) == 6
    assert time.monotonic() - started >= 5 / 10 * 0.9  # paced like a camera


def test_an_unknown_builtin_clip_lists_the_known_ones() -> None:
    assert is_builtin_clip("builtin:nothing") and not is_builtin_clip("builtin:/x/y.mp4")
    with pytest.raises(InvalidInputError, match="builtin:astronaut-clip"):
        open_video("builtin:nothing").open()


def test_p2c_video_converts_the_clip(tmp_path: Path, fake_engines, tiny_weights: Path) -> None:
    out = tmp_path / "clip.mp4"
    assert video.main([CLIP, str(out), "--duration", "0.5", "--weights", str(tiny_weights)]) == 0
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert (stream.width, stream.height, float(stream.average_rate)) == (1280, 720, 30.0)
    assert len(frames) == 15
    original = astronaut_clip().render(0).astype(np.int16)
    changed = np.abs(frames[0].astype(np.int16) - original).max(axis=2) > 60
    assert 0.01 < changed.mean() < 0.3  # the face (inverted by the fake engine), not the whole frame


def test_p2c_stream_takes_the_clip_as_a_camera(
    tmp_path: Path, fake_engines, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "live.mp4"
    argv = ["--camera", CLIP, "--output", str(out), "--frames", "15", "--weights", str(tiny_weights)]
    assert live.main(argv) == 0
    assert "p2c-stream: " in capsys.readouterr().err
    with av.open(str(out)) as container:
        assert 0 < sum(1 for _ in container.decode(video=0)) <= 15


@pytest.mark.parametrize(
    ("main", "argv", "prog"),
    [
        (video.main, ["{dir}", "{tmp}/out.mp4"], "p2c-video"),
        (live.main, ["--camera", "{dir}", "--null"], "p2c-stream"),
        (image_command.main, ["{dir}", "{tmp}/out.png", "--crop-only"], "p2c-image"),
    ],
)
def test_a_folder_given_as_a_video_says_it_is_a_folder(
    main, argv: list[str], prog: str, tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(b"")
    args = [a.format(dir=folder, tmp=tmp_path) for a in argv]
    if prog != "p2c-image":
        args += ["--weights", str(tiny_weights)]
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"{prog}: error:") and "is a folder" in err[0] and "does not exist" not in err[0]
    if prog != "p2c-image":
        assert str(folder / "a.mp4") in err[0]  # what to pass instead


def test_the_clip_given_as_a_photo_says_where_it_belongs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert image_command.main([CLIP, str(tmp_path / "o.png"), "--crop-only"]) == 2
    err = capsys.readouterr().err.strip()
    assert "is a video, not a photo: use p2c-video or p2c-stream --camera" in err
