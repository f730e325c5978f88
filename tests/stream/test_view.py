"""Live controls: strength, original, mirror, stats overlay and quit, from keys and standard input."""

from __future__ import annotations

import io
import sys
from fractions import Fraction
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from p2c.stream.commands import live
from p2c.stream.frame import Frame
from p2c.stream.sinks import virtualcam as virtualcam_module
from p2c.stream.sinks.base import FrameSink, OutputValue, SinkOption, SinkTarget, StopStream
from p2c.stream.view import LiveControls, StdinKeys, ViewedSinks, blend_strength


def _frame(side_by_side: bool = False) -> Frame:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    cartoon = image.copy()
    cartoon[10:30, 20:40] = 255 - cartoon[10:30, 20:40]  # "the face"
    output = np.concatenate([image, cartoon], axis=1) if side_by_side else cartoon
    return Frame(index=0, pts=0, time_base=Fraction(1, 30), image=image, output=output)


def test_strength_blends_only_the_face_and_1_is_the_cartoon() -> None:
    frame = _frame()
    assert blend_strength(frame.image, frame.result, 1.0) is frame.result
    np.testing.assert_array_equal(blend_strength(frame.image, frame.result, 0.0), frame.image)
    half = blend_strength(frame.image, frame.result, 0.5)
    outside = np.ones(frame.image.shape[:2], bool)
    outside[10:30, 20:40] = False
    np.testing.assert_array_equal(half[outside], frame.image[outside])  # the photo's pixels, exactly
    expected = (frame.image[10:30, 20:40].astype(float) + frame.result[10:30, 20:40]) / 2
    assert np.abs(half[10:30, 20:40] - expected).max() <= 1


def test_keys_change_the_view() -> None:
    controls = LiveControls(strength=0.5)
    frame = _frame()
    assert controls.press("c") and not controls.cartoon
    np.testing.assert_array_equal(controls.view(frame), frame.image)  # the original
    controls.press("c")
    controls.press("m")
    np.testing.assert_array_equal(
        controls.view(frame), blend_strength(frame.image, frame.result, 0.5)[:, ::-1]
    )
    for _ in range(7):
        controls.press("+")
    assert controls.strength == 1.0  # clamped
    controls.press("-")
    controls.press("_")
    assert controls.strength == pytest.approx(0.8)
    plain = controls.view(frame)
    controls.press("s")
    assert np.any(controls.view(frame) != plain)  # the overlay is drawn
    assert not controls.press("x") and not controls.quit
    controls.press("\x1b")
    assert controls.quit


def test_side_by_side_keeps_the_original_half() -> None:
    frame = _frame(side_by_side=True)
    view = LiveControls(strength=0.3).view(frame)
    np.testing.assert_array_equal(view[:, :60], frame.image)
    assert view.shape == frame.result.shape


class _Keep(FrameSink):
    name = "keep"

    def __init__(self) -> None:
        super().__init__(60, 40)
        self.images: list[np.ndarray] = []

    def _write(self, frame: Frame, image: np.ndarray) -> None:
        self.images.append(image)


def test_one_line_of_standard_input_per_frame() -> None:
    keys = StdinKeys(io.StringIO("c\n\nc\nq\n"))
    keys._thread.join(5)
    controls = LiveControls()
    kept = _Keep()
    frame = _frame()
    with ViewedSinks([kept], controls, keys) as viewed:
        for _ in range(3):
            viewed.write(frame)
        with pytest.raises(StopStream):
            viewed.write(frame)
    assert [np.array_equal(image, frame.image) for image in kept.images] == [True, True, False]


class RecordSink(FrameSink):
    """``--record``: keeps each frame's original and what the outputs were shown."""

    name = "record"
    option = SinkOption("--record", "keep the frames")
    last: ClassVar[RecordSink | None] = None

    @classmethod
    def for_output(cls, value: OutputValue, target: SinkTarget) -> RecordSink:
        RecordSink.last = cls(target.width, target.height)
        return RecordSink.last

    def __init__(self, width: int, height: int) -> None:
        super().__init__(width, height)
        self.pairs: list[tuple[np.ndarray, np.ndarray]] = []

    def _write(self, frame: Frame, image: np.ndarray) -> None:
        self.pairs.append((frame.image, image))


class FakeCamera:
    opened: ClassVar[list[FakeCamera]] = []

    def __init__(self, width: int, height: int, fps: float) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.sent: list[np.ndarray] = []
        FakeCamera.opened.append(self)

    def send(self, image: np.ndarray) -> None:
        self.sent.append(image)

    def sleep_until_next_frame(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_standard_input_drives_a_live_run_while_the_virtual_camera_keeps_running(
    monkeypatch: pytest.MonkeyPatch, invert_engine, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from p2c.stream.sinks import SINKS

    monkeypatch.setitem(SINKS, "record", RecordSink)
    monkeypatch.setattr(virtualcam_module, "pyvirtualcam_factory", FakeCamera)
    monkeypatch.setattr(FakeCamera, "opened", [])
    monkeypatch.setattr(live, "open_engine", lambda _args, live=False: invert_engine())
    # Frames 0-2 the cartoon at 0.5, 3-5 the original, 6-8 the cartoon mirrored, then quit.
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n\n\nc\n\n\nc m\n\n\nq\n"))
    argv = ["--camera", "builtin:astronaut-clip", "--fps", "5", "--record", "--virtualcam", "--frames", "60"]
    assert live.main([*argv, "--strength", "0.5", "--weights", str(tiny_weights)]) == 0
    assert "keys (in the window, or typed here and Enter)" in capsys.readouterr().err
    pairs = RecordSink.last.pairs if RecordSink.last else []
    assert len(pairs) == 9  # 'q' stopped it before frame 10 of 60
    (camera,) = FakeCamera.opened  # one virtual camera, open all along, shown every frame
    assert len(camera.sent) == 9
    changed = [float(np.mean(np.abs(shown.astype(int) - image) > 40)) for image, shown in pairs]
    assert all(0.01 < share < 0.3 for share in changed[:3]), changed  # the face, half inverted
    assert all(share == 0.0 for share in changed[3:6]), changed  # the original
    for image, shown in pairs[6:]:
        mirrored_back = shown[:, ::-1].astype(int)
        assert 0.01 < float(np.mean(np.abs(mirrored_back - image) > 40)) < 0.3


def test_the_preview_window_passes_its_keys_to_the_controls(monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2

    from p2c.stream.sinks import PreviewSink

    keys = iter([ord("m"), -1, ord("+"), 27])
    monkeypatch.setattr(cv2, "namedWindow", lambda *a: None)
    monkeypatch.setattr(cv2, "imshow", lambda *a: None)
    monkeypatch.setattr(cv2, "waitKey", lambda _ms: next(keys, -1))
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: 1.0)
    monkeypatch.setattr(cv2, "destroyWindow", lambda *a: None)
    controls = LiveControls(strength=0.5)
    preview = PreviewSink(60, 40)
    preview.on_key = controls.press
    frame = _frame()
    with ViewedSinks([preview], controls) as viewed:
        for _ in range(3):
            viewed.write(frame)
        with pytest.raises(StopStream):  # Esc
            viewed.write(frame)
    assert controls.mirror and controls.strength == pytest.approx(0.6)


def test_strength_0_in_p2c_video_and_p2c_image_gives_the_photo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, invert_engine, tiny_weights: Path
) -> None:
    import av

    from p2c.stream.builtin_clips import astronaut_clip
    from p2c.stream.commands import image as image_command
    from p2c.stream.commands import video
    from p2c.stream.image_io import read_image

    monkeypatch.setattr(video, "open_engine", lambda _args, live=False: invert_engine())
    out = tmp_path / "photo.mp4"
    argv = ["builtin:astronaut-clip", str(out), "--duration", "0.2", "--strength", "0"]
    assert video.main([*argv, "--weights", str(tiny_weights)]) == 0
    with av.open(str(out)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert np.abs(first.astype(int) - astronaut_clip().render(0)).mean() < 2  # the face is not inverted
    still = tmp_path / "still.png"
    argv = ["builtin:astronaut", str(still), "--composite", "--strength", "0", "--weights", str(tiny_weights)]
    assert image_command.main(argv) == 0
    np.testing.assert_array_equal(read_image(still), read_image("builtin:astronaut"))
