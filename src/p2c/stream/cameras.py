"""Which cameras this machine has, and the sizes and frame rates each one offers.

On Linux every ``/dev/video*`` node is asked through V4L2's own ioctls (the kernel's video API,
no extra tool): its name (``VIDIOC_QUERYCAP``), and for each pixel format its frame sizes and
frame intervals (``VIDIOC_ENUM_FMT``, ``VIDIOC_ENUM_FRAMESIZES``, ``VIDIOC_ENUM_FRAMEINTERVALS``).
Nodes that cannot capture (metadata nodes, a virtual camera's output side) are left out. Where
that does not work (another OS, a node the user may not open) OpenCV is asked instead: it opens
camera indexes in turn and reads back which of a few common sizes each one accepts; it knows no
names. :func:`list_cameras` is what ``p2c-stream --list-cameras`` and ``p2c-doctor`` print.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import struct
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "CameraInfo",
    "CameraMode",
    "describe_cameras",
    "list_cameras",
    "opencv_cameras",
    "v4l2_cameras",
]

logger = logging.getLogger(__name__)

# V4L2 ioctl numbers (linux/videodev2.h): _IOR/_IOWR('V', nr, struct), with the structs' sizes.
VIDIOC_QUERYCAP = 0x80685600  # struct v4l2_capability, 104 bytes
VIDIOC_ENUM_FMT = 0xC0405602  # struct v4l2_fmtdesc, 64 bytes
VIDIOC_ENUM_FRAMESIZES = 0xC02C564A  # struct v4l2_frmsizeenum, 44 bytes
VIDIOC_ENUM_FRAMEINTERVALS = 0xC034564B  # struct v4l2_frmivalenum, 52 bytes
_CAPABILITY = struct.Struct("16s32s32sIII12x")
_FMTDESC = struct.Struct("III32sII12x")
_FRMSIZE = struct.Struct("III6I8x")
_FRMIVAL = struct.Struct("IIIII6I8x")
_CAP_VIDEO_CAPTURE = 0x00000001
_CAP_DEVICE_CAPS = 0x80000000
_BUF_TYPE_VIDEO_CAPTURE = 1
_DISCRETE = 1
# A stepwise or continuous size range is shown by these common sizes inside it.
_COMMON_SIZES = ((640, 480), (1280, 720), (1920, 1080), (3840, 2160))
# OpenCV: how many indexes to try, and the sizes to ask each camera for.
_OPENCV_INDEXES = 6

Ioctl = Callable[[int, int, bytes], bytes]


@dataclass(frozen=True)
class CameraMode:
    """One size a camera offers, with its frame rates (highest first) and pixel formats."""

    width: int
    height: int
    fps: tuple[float, ...]
    formats: tuple[str, ...] = ()

    def describe(self) -> str:
        rates = ", ".join(f"{rate:g}" for rate in self.fps) or "?"
        formats = f" ({', '.join(self.formats)})" if self.formats else ""
        return f"{self.width}x{self.height} at {rates} fps{formats}"


@dataclass(frozen=True)
class CameraInfo:
    """A camera: what ``--camera`` takes for it (``index``, or ``device``), its name, and its modes."""

    index: int
    name: str
    device: str
    modes: tuple[CameraMode, ...]
    found_by: str

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["modes"] = [
            asdict(mode) | {"fps": list(mode.fps), "formats": list(mode.formats)} for mode in self.modes
        ]
        return data


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()


def _fourcc(code: int) -> str:
    return "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).strip()


def _ioctl_default(fd: int, request: int, data: bytes) -> bytes:
    import fcntl

    buffer = bytearray(data)
    fcntl.ioctl(fd, request, buffer, True)
    return bytes(buffer)


def _enumerate(ioctl: Ioctl, fd: int, request: int, pack: Callable[[int], bytes]) -> Iterator[bytes]:
    """Ask ``request`` with index 0, 1, ... until the driver says there is no more (EINVAL)."""
    for index in range(256):
        try:
            yield ioctl(fd, request, pack(index))
        except OSError:
            return


def _rates(ioctl: Ioctl, fd: int, fourcc: int, width: int, height: int) -> set[float]:
    rates: set[float] = set()
    for raw in _enumerate(
        ioctl, fd, VIDIOC_ENUM_FRAMEINTERVALS, lambda i: _FRMIVAL.pack(i, fourcc, width, height, 0, *[0] * 6)
    ):
        _, _, _, _, kind, *fraction = _FRMIVAL.unpack(raw)
        if kind == _DISCRETE:
            numerator, denominator = fraction[0], fraction[1]
            if numerator:
                rates.add(round(denominator / numerator, 2))
        else:  # a range of intervals: its fastest and slowest rates
            (min_num, min_den, max_num, max_den) = fraction[:4]
            rates.update(round(den / num, 2) for num, den in ((min_num, min_den), (max_num, max_den)) if num)
            break
    return rates


def _sizes(ioctl: Ioctl, fd: int, fourcc: int) -> list[tuple[int, int]]:
    sizes: list[tuple[int, int]] = []
    for raw in _enumerate(ioctl, fd, VIDIOC_ENUM_FRAMESIZES, lambda i: _FRMSIZE.pack(i, fourcc, 0, *[0] * 6)):
        _, _, kind, *values = _FRMSIZE.unpack(raw)
        if kind == _DISCRETE:
            sizes.append((values[0], values[1]))
        else:  # stepwise or continuous: min_w, max_w, step_w, min_h, max_h, step_h
            min_w, max_w, _, min_h, max_h, _ = values
            sizes += [(w, h) for w, h in _COMMON_SIZES if min_w <= w <= max_w and min_h <= h <= max_h]
            break
    return sizes


def _modes(ioctl: Ioctl, fd: int) -> tuple[CameraMode, ...]:
    """Every size the capture side offers, merged over pixel formats, largest first."""
    found: dict[tuple[int, int], tuple[set[float], list[str]]] = {}
    for raw in _enumerate(
        ioctl, fd, VIDIOC_ENUM_FMT, lambda i: _FMTDESC.pack(i, _BUF_TYPE_VIDEO_CAPTURE, 0, b"", 0, 0)
    ):
        _, _, _, _, fourcc, _ = _FMTDESC.unpack(raw)
        for width, height in _sizes(ioctl, fd, fourcc):
            rates, formats = found.setdefault((width, height), (set(), []))
            rates.update(_rates(ioctl, fd, fourcc, width, height))
            if _fourcc(fourcc) not in formats:
                formats.append(_fourcc(fourcc))
    return tuple(
        CameraMode(w, h, tuple(sorted(rates, reverse=True)), tuple(formats))
        for (w, h), (rates, formats) in sorted(
            found.items(), key=lambda item: item[0][0] * item[0][1], reverse=True
        )
    )


def _video_index(device: str) -> int:
    match = re.search(r"(\d+)$", device)
    return int(match.group(1)) if match else -1


def v4l2_cameras(
    devices: list[str] | None = None,
    ioctl: Ioctl | None = None,
    opener: Callable[[str], int] | None = None,
) -> list[CameraInfo]:
    """Linux: the capture devices among ``/dev/video*``, asked through V4L2's ioctls. A node that
    cannot be opened or asked is left out (and logged); ``ioctl`` and ``opener`` are for tests."""
    ask = ioctl or _ioctl_default
    open_node = opener or (lambda path: os.open(path, os.O_RDWR | os.O_NONBLOCK))
    paths = sorted(glob.glob("/dev/video*") if devices is None else devices, key=_video_index)
    cameras = []
    for path in paths:
        try:
            fd = open_node(path)
        except OSError as error:
            logger.info("cannot open %s: %s", path, error.strerror or error)
            continue
        try:
            _, card, _, _, capabilities, device_caps = _CAPABILITY.unpack(
                ask(fd, VIDIOC_QUERYCAP, bytes(_CAPABILITY.size))
            )
            caps = device_caps if capabilities & _CAP_DEVICE_CAPS else capabilities
            if not caps & _CAP_VIDEO_CAPTURE:
                continue  # a metadata node or an output-only device: nothing to read frames from
            cameras.append(CameraInfo(_video_index(path), _text(card) or path, path, _modes(ask, fd), "v4l2"))
        except OSError as error:
            logger.info("%s does not answer V4L2's questions: %s", path, error.strerror or error)
        finally:
            if opener is None:
                os.close(fd)
    return cameras


def opencv_cameras(
    indexes: int = _OPENCV_INDEXES, capture: Callable[[int], Any] | None = None
) -> list[CameraInfo]:
    """Any OS: the camera indexes OpenCV opens, with the common sizes each accepts (read back
    after asking) and the rate it reports. Slower than V4L2 (each camera is opened) and nameless."""
    import cv2

    open_capture = capture or cv2.VideoCapture
    cameras = []
    for index in range(indexes):
        camera = open_capture(index)
        try:
            if not camera.isOpened():
                continue
            modes: dict[tuple[int, int], float] = {}
            for width, height in _COMMON_SIZES:
                camera.set(cv2.CAP_PROP_FRAME_WIDTH, width)
                camera.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
                got = (int(camera.get(cv2.CAP_PROP_FRAME_WIDTH)), int(camera.get(cv2.CAP_PROP_FRAME_HEIGHT)))
                if got[0] > 0 and got[1] > 0:
                    modes[got] = float(camera.get(cv2.CAP_PROP_FPS) or 0.0)
            listed = tuple(
                CameraMode(w, h, (rate,) if rate > 0 else ())
                for (w, h), rate in sorted(
                    modes.items(), key=lambda item: item[0][0] * item[0][1], reverse=True
                )
            )
            cameras.append(CameraInfo(index, f"camera {index}", str(index), listed, "opencv"))
        finally:
            camera.release()
    return cameras


def list_cameras() -> list[CameraInfo]:
    """The cameras of this machine: V4L2 on Linux (OpenCV where no node answers), OpenCV elsewhere."""
    if sys.platform.startswith("linux"):
        nodes = glob.glob("/dev/video*")
        if not nodes:
            return []
        cameras = v4l2_cameras(nodes)
        if cameras or any(os.access(node, os.R_OK | os.W_OK) for node in nodes):
            return cameras
        return opencv_cameras()  # nodes this user may not open: OpenCV may have another way in
    return opencv_cameras()


def describe_cameras(cameras: list[CameraInfo]) -> list[str]:
    """Lines for a person: one per camera, then one per mode, indented."""
    if not cameras:
        return ["no camera found"]
    lines = []
    for camera in cameras:
        where = f" ({camera.device})" if camera.device != str(camera.index) else ""
        lines.append(f"camera {camera.index}: {camera.name}{where}")
        lines += [f"    {mode.describe()}" for mode in camera.modes] or ["    (sizes unknown)"]
    return lines
