"""p2c-stream --list-cameras: V4L2's answers (from a fake driver), OpenCV's, and no camera at all."""

from __future__ import annotations

import errno
import json
from typing import ClassVar

import pytest

from p2c.stream import cameras as cameras_module
from p2c.stream.cameras import (
    VIDIOC_ENUM_FMT,
    VIDIOC_ENUM_FRAMEINTERVALS,
    VIDIOC_ENUM_FRAMESIZES,
    VIDIOC_QUERYCAP,
    CameraInfo,
    CameraMode,
    describe_cameras,
    opencv_cameras,
    v4l2_cameras,
)
from p2c.stream.commands import live


def _fourcc(text: str) -> int:
    return sum(ord(c) << (8 * i) for i, c in enumerate(text))


class FakeV4l2:
    """A webcam on fd 3 (MJPG: 1280x720 at 30 and 15 fps, 640x480 at 30; YUYV: 640x480 at 30 and a
    stepwise range of sizes) and its metadata node on fd 4, answering as the kernel's structs do."""

    formats: ClassVar = {3: ["MJPG", "YUYV"], 4: []}
    sizes: ClassVar = {"MJPG": [(1280, 720), (640, 480)]}
    rates: ClassVar = {(1280, 720): [(1, 30), (1, 15)], (640, 480): [(1, 30)]}

    def __call__(self, fd: int, request: int, data: bytes) -> bytes:
        s = cameras_module
        if request == VIDIOC_QUERYCAP:
            caps = 0x04200001 if fd == 3 else 0x04A00000  # capture + streaming / metadata capture
            return s._CAPABILITY.pack(
                b"uvcvideo", b"Integrated Camera: Integrated C", b"usb-0", 1, caps | 0x80000000, caps
            )
        if request == VIDIOC_ENUM_FMT:
            index, kind, *_ = s._FMTDESC.unpack(data)
            if kind != 1 or index >= len(self.formats[fd]):
                raise OSError(errno.EINVAL, "no more")
            name = self.formats[fd][index]
            return s._FMTDESC.pack(index, kind, 0, name.encode(), _fourcc(name), 0)
        if request == VIDIOC_ENUM_FRAMESIZES:
            index, fourcc, *_ = s._FRMSIZE.unpack(data)
            if fourcc == _fourcc("YUYV"):  # stepwise: 320x240 up to 1280x720
                if index:
                    raise OSError(errno.EINVAL, "no more")
                return s._FRMSIZE.pack(0, fourcc, 3, 320, 1280, 16, 240, 720, 16)
            sizes = self.sizes["MJPG"]
            if index >= len(sizes):
                raise OSError(errno.EINVAL, "no more")
            return s._FRMSIZE.pack(index, fourcc, 1, *sizes[index], 0, 0, 0, 0)
        if request == VIDIOC_ENUM_FRAMEINTERVALS:
            index, fourcc, width, height, *_ = s._FRMIVAL.unpack(data)
            rates = self.rates.get((width, height), [(1, 30)])
            if index >= len(rates):
                raise OSError(errno.EINVAL, "no more")
            return s._FRMIVAL.pack(index, fourcc, width, height, 1, *rates[index], 0, 0, 0, 0)
        raise OSError(errno.ENOTTY, "unknown ioctl")


def test_v4l2_lists_capture_devices_with_their_sizes_and_rates() -> None:
    nodes = {"/dev/video0": 3, "/dev/video1": 4}
    found = v4l2_cameras(list(nodes), ioctl=FakeV4l2(), opener=nodes.__getitem__)
    assert [(c.index, c.name, c.device) for c in found] == [
        (0, "Integrated Camera: Integrated C", "/dev/video0")
    ]
    modes = {(m.width, m.height): m for m in found[0].modes}
    assert list(modes) == [(1280, 720), (640, 480)]  # largest first; the metadata node is left out
    assert modes[(1280, 720)].fps == (30.0, 15.0) and set(modes[(1280, 720)].formats) == {"MJPG", "YUYV"}
    assert modes[(640, 480)].describe() == "640x480 at 30 fps (MJPG, YUYV)"


def test_a_node_that_cannot_be_opened_is_left_out() -> None:
    def refuse(path: str) -> int:
        raise PermissionError(errno.EACCES, "Permission denied")

    assert v4l2_cameras(["/dev/video0"], ioctl=FakeV4l2(), opener=refuse) == []


class FakeCapture:
    """OpenCV's view of one camera at index 1 that takes 640x480 and 1280x720 only."""

    def __init__(self, index: int) -> None:
        self.index, self.size = index, [640, 480]

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.index == 1

    def set(self, prop: int, value: float) -> bool:
        import cv2

        if prop == cv2.CAP_PROP_FRAME_WIDTH:
            self.size[0] = int(value) if value <= 1280 else 1280
        elif prop == cv2.CAP_PROP_FRAME_HEIGHT:
            self.size[1] = int(value) if value <= 720 else 720
        return True

    def get(self, prop: int) -> float:
        import cv2

        return {cv2.CAP_PROP_FRAME_WIDTH: self.size[0], cv2.CAP_PROP_FRAME_HEIGHT: self.size[1]}.get(
            prop, 30.0
        )

    def release(self) -> None:
        pass


def test_opencv_probing_finds_the_indexes_that_open_and_their_sizes() -> None:
    (camera,) = opencv_cameras(indexes=3, capture=FakeCapture)
    assert (camera.index, camera.device, camera.found_by) == (1, "1", "opencv")
    assert [(m.width, m.height, m.fps) for m in camera.modes] == [(1280, 720, (30.0,)), (640, 480, (30.0,))]


def test_the_listing_for_people_and_for_scripts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    camera = CameraInfo(
        0, "Integrated Camera", "/dev/video0", (CameraMode(1280, 720, (30.0, 15.0), ("MJPG",)),), "v4l2"
    )
    monkeypatch.setattr(cameras_module, "list_cameras", lambda: [camera])
    assert live.main(["--list-cameras"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "camera 0: Integrated Camera (/dev/video0)",
        "    1280x720 at 30, 15 fps (MJPG)",
    ]
    assert live.main(["--list-cameras", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == [
        {
            "index": 0,
            "name": "Integrated Camera",
            "device": "/dev/video0",
            "modes": [{"width": 1280, "height": 720, "fps": [30.0, 15.0], "formats": ["MJPG"]}],
            "found_by": "v4l2",
        }
    ]


def test_no_camera_is_said_cleanly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cameras_module.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(cameras_module, "opencv_cameras", lambda: [])
    assert live.main(["--list-cameras"]) == 0
    assert capsys.readouterr().out.strip() == "no camera found"
    assert live.main(["--list-cameras", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert describe_cameras([]) == ["no camera found"]


def test_the_real_listing_on_this_machine_works(capsys: pytest.CaptureFixture[str]) -> None:
    assert live.main(["--list-cameras", "--json"]) == 0  # whatever this machine has: valid JSON
    assert isinstance(json.loads(capsys.readouterr().out), list)


def test_without_camera_or_listing_it_asks_for_one(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        live.main(["--null"])
    assert stop.value.code == 2 and "--camera" in capsys.readouterr().err
