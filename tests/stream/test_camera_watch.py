"""p2c-stream when the camera stalls, is unplugged, and comes back: a fake camera through OpenCV's
API and a fake virtual camera that records what it was sent, and when."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from p2c.stream.camera_watch import WatchedCamera, camera_lost_card
from p2c.stream.commands import live
from p2c.stream.sinks import virtualcam as virtualcam_module
from p2c.stream.sources import WebcamSource

SHAPE = (48, 64, 3)
LIVE_VALUE = 200  # the fake camera's frames are flat at this value; the card is dark


class CameraWorld:
    """A USB camera and its cable: ``stall(s)`` blocks reads for a while; ``unplug()`` kills every
    open capture (as a real device handle dies) and refuses new ones until ``plug()``."""

    def __init__(self) -> None:
        self.plugged = True
        self.generation = 0
        self.stall_until = 0.0
        self.reads = 0
        self.plugged_at: float | None = None

    def stall(self, seconds: float) -> None:
        self.stall_until = time.monotonic() + seconds

    def unplug(self) -> None:
        self.plugged = False
        self.generation += 1

    def plug(self) -> None:
        self.plugged = True
        self.plugged_at = time.monotonic()

    def capture(self):
        world = self

        class FakeCapture:
            def __init__(self, *_: object) -> None:
                self.generation = world.generation
                self.open = world.plugged

            def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
                return self.open

            def set(self, *_: object) -> bool:
                return True

            def get(self, _prop: int) -> float:
                return 30.0

            def read(self) -> tuple[bool, np.ndarray | None]:
                wait = world.stall_until - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if not (self.open and world.plugged and self.generation == world.generation):
                    return False, None
                time.sleep(1 / 30)
                world.reads += 1
                return True, np.full(SHAPE, LIVE_VALUE, np.uint8)

            def release(self) -> None:
                self.open = False

        return FakeCapture


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> CameraWorld:
    import cv2

    world = CameraWorld()
    monkeypatch.setattr(cv2, "VideoCapture", world.capture())
    return world


class RecordingVirtualCamera:
    """A virtual camera that keeps (time sent, mean value) of every frame, and when it closed."""

    last: RecordingVirtualCamera

    def __init__(self, width: int, height: int, fps: float) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.sent: list[tuple[float, float]] = []
        self.closed_at: float | None = None
        RecordingVirtualCamera.last = self

    def send(self, image: np.ndarray) -> None:
        assert self.closed_at is None, "a frame sent after the virtual camera closed"
        self.sent.append((time.monotonic(), float(image.mean())))

    def sleep_until_next_frame(self) -> None:
        pass

    def close(self) -> None:
        self.closed_at = time.monotonic()


@pytest.fixture
def virtual_camera(monkeypatch: pytest.MonkeyPatch, invert_engine) -> type[RecordingVirtualCamera]:
    monkeypatch.setattr(virtualcam_module, "pyvirtualcam_factory", RecordingVirtualCamera)
    monkeypatch.delattr(RecordingVirtualCamera, "last", raising=False)
    monkeypatch.setattr(live, "open_engine", lambda _args, live=False: invert_engine())
    return RecordingVirtualCamera


def _when(condition, then, timeout: float = 30.0) -> threading.Thread:
    """Run ``then()`` in a thread once ``condition()`` holds."""

    def wait() -> None:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.005)
        then()

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread


def _is_card(mean: float) -> bool:
    return mean < 100


def _sent(virtual_camera: type[RecordingVirtualCamera], live: bool) -> int:
    """Live frames (or cards) the virtual camera got so far (0 before it opened)."""
    camera = getattr(virtual_camera, "last", None)
    return 0 if camera is None else sum(_is_card(mean) != live for _, mean in list(camera.sent))


def _live_after_cards(virtual_camera: type[RecordingVirtualCamera]) -> int:
    cards = [_is_card(mean) for _, mean in list(virtual_camera.last.sent)]
    return cards[cards.index(True) :].count(False) if True in cards else 0


def test_the_card_says_the_camera_is_lost_and_shows_no_face() -> None:
    card = camera_lost_card(640, 360)
    assert card.shape == (360, 640, 3) and card.dtype == np.uint8
    assert np.median(card) == 40 and card.max() > 200  # dark, with light text


def test_a_stall_shows_the_card_then_an_unplug_ends_in_one_line(
    world: CameraWorld, virtual_camera, tiny_weights: Path, tmp_path: Path, capsys
) -> None:
    _when(lambda: _sent(virtual_camera, live=True) >= 10, lambda: world.stall(2.0))
    _when(
        lambda: _sent(virtual_camera, live=False) >= 5 and _live_after_cards(virtual_camera) >= 10,
        world.unplug,
    )
    out = tmp_path / "rec.mp4"
    argv = ["--camera", "0", "--virtualcam", "--output", str(out), "--weights", str(tiny_weights)]
    assert live.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("p2c-stream: error: camera 0 disconnected after "), err[-1]
    assert err[-1].endswith("the outputs were closed cleanly")
    sent = [_is_card(mean) for _, mean in virtual_camera.last.sent]
    # live frames, then cards while it stalls, live frames again, then cards until it is given up
    first_card = sent.index(True)
    assert not any(sent[:first_card]) and first_card >= 5
    assert False in sent[first_card:], "live frames came back after the stall"
    assert virtual_camera.last.closed_at is not None
    written = int(err[-2].split("p2c-stream: ")[1].split(" frames")[0])
    with av.open(str(out)) as container:  # the recording was finished, cards and all
        assert sum(1 for _ in container.decode(video=0)) == written == len(sent)


def test_an_unplugged_camera_is_back_within_2_s_and_the_virtual_camera_never_closes(
    world: CameraWorld, virtual_camera, tiny_weights: Path, capsys
) -> None:
    _when(lambda: _sent(virtual_camera, live=True) >= 10, world.unplug)
    _when(lambda: not world.plugged, lambda: (time.sleep(2.5), world.plug()))
    argv = ["--camera", "0", "--virtualcam", "--reconnect", "--frames", "200", "--weights", str(tiny_weights)]
    assert live.main(argv) == 0, capsys.readouterr().err
    camera = virtual_camera.last
    assert world.plugged_at is not None and camera.closed_at is not None
    cards = [t for t, mean in camera.sent if _is_card(mean)]
    back = [t for t, mean in camera.sent if not _is_card(mean) and t > world.plugged_at]
    assert cards and back, "cards while it was gone, live frames once it was back"
    assert back[0] - world.plugged_at < 2.0, f"live again {back[0] - world.plugged_at:.2f} s after the replug"
    # the virtual camera kept receiving frames through the outage: no gap longer than a second
    times = [t for t, _ in camera.sent]
    assert max(np.diff(times)) < 1.2 and camera.closed_at >= times[-1]


def test_a_watched_camera_that_cannot_be_opened_is_one_clear_error(world: CameraWorld) -> None:
    from p2c.errors import InputNotFoundError

    world.unplug()
    with pytest.raises(InputNotFoundError, match="cannot open camera 3"), WatchedCamera.of(WebcamSource(3)):
        pass
