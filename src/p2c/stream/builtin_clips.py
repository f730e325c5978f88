"""Built-in clips: short videos made at run time from images that ship with the dependencies.

``builtin:astronaut-clip`` is skimage's astronaut (public domain) filmed by a virtual camera: four
seconds at 1280x720 and 30 fps of a smooth pan, a slow zoom and a small tilt of the head, so
``p2c-video``, ``p2c-stream --camera``, the tests and ``make demo`` can show the live path with no
camera and no third-party media. The motion is a closed loop (whole periods over the clip), so
``--loop`` replays it without a jump, and each frame is a function of its index alone: the clip is
the same on every machine and every run.

:class:`BuiltinClipSource` plays a clip as a file (every frame, never dropped);
:class:`BuiltinClipCamera` as a camera (at its rate, live). :func:`is_builtin_clip` tells a
``builtin:`` name from a path; an unknown name is one sentence listing the known ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np

from p2c.errors import InvalidInputError
from p2c.resources import Closeable
from p2c.stream.frame import Frame
from p2c.stream.image_io import BUILTIN_PREFIX, read_image
from p2c.stream.sources import CameraPlayback, VideoInfo, check_span

__all__ = [
    "BUILTIN_CLIPS",
    "BuiltinClip",
    "BuiltinClipCamera",
    "BuiltinClipSource",
    "astronaut_clip",
    "builtin_clip",
    "is_builtin_clip",
]


@dataclass(frozen=True)
class BuiltinClip:
    """A clip made frame by frame: ``render(index)`` is frame ``index`` (RGB uint8, H x W x 3)."""

    name: str
    width: int
    height: int
    fps: int
    frame_count: int
    render: Callable[[int], np.ndarray]

    def __post_init__(self) -> None:
        if self.width < 2 or self.height < 2 or self.fps < 1 or self.frame_count < 1:
            raise ValueError(
                f"BuiltinClip {self.name}: size, rate and length must be positive, got "
                f"{self.width}x{self.height} at {self.fps} fps, {self.frame_count} frames"
            )

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps


# The virtual camera over the astronaut (512 x 512): where it looks, in image pixels, and how much
# of the image's width it shows. The face (landmark box about 93 pixels) is centred near (224, 126);
# the view, 16:9, keeps it in the upper middle, as a webcam frames a person at a desk.
_VIEW_CENTRE = (236.0, 152.0)
_PAN = (22.0, 10.0)  # pixels of the image, left-right and up-down
_VIEW_WIDTH = 420.0  # image pixels across the frame at the middle zoom (the face: ~280 px at 720p)
_ZOOM = 0.12  # +-12 % around it
_TILT_DEGREES = 6.0  # the head tilts (rolls) this much either way, about the face's centre
_FACE_CENTRE = (224.0, 126.0)


def _astronaut_frame(photo: np.ndarray, t: float, width: int, height: int) -> np.ndarray:
    """The astronaut at phase ``t`` in [0, 1) of the loop, as the virtual camera sees it."""
    turn = 2.0 * math.pi * t
    # Different whole numbers of periods: the path never repeats within the clip, but closes at its end.
    pan_x = _PAN[0] * math.sin(turn)
    pan_y = _PAN[1] * math.sin(2.0 * turn)
    zoom = 1.0 + _ZOOM * math.sin(turn + math.pi / 3.0)
    tilt = _TILT_DEGREES * math.sin(2.0 * turn + math.pi / 4.0)
    # Image -> frame: turn the picture about the face's centre, then frame the moving view.
    turned = np.vstack([cv2.getRotationMatrix2D(_FACE_CENTRE, tilt, 1.0), [0.0, 0.0, 1.0]])
    scale = width / (_VIEW_WIDTH / zoom)
    cx, cy = _VIEW_CENTRE[0] + pan_x, _VIEW_CENTRE[1] + pan_y
    framing = np.array(
        [[scale, 0.0, width / 2.0 - scale * cx], [0.0, scale, height / 2.0 - scale * cy], [0.0, 0.0, 1.0]]
    )
    matrix = (framing @ turned)[:2]
    # Outside the photo (the view's corners when it tilts): the photo mirrored, not black bars.
    return cv2.warpAffine(
        photo, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )


def astronaut_clip(width: int = 1280, height: int = 720, fps: int = 30, seconds: float = 4.0) -> BuiltinClip:
    """``builtin:astronaut-clip``: the astronaut panned, zoomed and tilted (see the module)."""
    photo = read_image(BUILTIN_PREFIX + "astronaut")
    count = max(1, round(seconds * fps))

    def render(index: int) -> np.ndarray:
        return _astronaut_frame(photo, (index % count) / count, width, height)

    return BuiltinClip("astronaut-clip", width, height, fps, count, render)


# Clips made from what ships with the dependencies, for demos and tests without a camera.
BUILTIN_CLIPS: dict[str, Callable[[], BuiltinClip]] = {"astronaut-clip": astronaut_clip}


def is_builtin_clip(spec: object) -> bool:
    """Whether ``spec`` (a string or path given as a video) names a built-in clip, known or not:
    ``builtin:`` and a name with no folder in it."""
    text = str(spec)
    return text.startswith(BUILTIN_PREFIX) and "/" not in text and "\\" not in text


def builtin_clip(spec: str) -> BuiltinClip:
    """The clip ``builtin:NAME`` names; :class:`InvalidInputError` listing the known ones otherwise."""
    name = str(spec)[len(BUILTIN_PREFIX) :] if str(spec).startswith(BUILTIN_PREFIX) else str(spec)
    if name not in BUILTIN_CLIPS:
        known = ", ".join(BUILTIN_PREFIX + key for key in sorted(BUILTIN_CLIPS))
        raise InvalidInputError(f"unknown built-in clip {BUILTIN_PREFIX + name!r}; choose one of {known}")
    return BUILTIN_CLIPS[name]()


# Clock ticks per frame: a fine clock, as video files have (FFmpeg gives 30 fps 1/15360 s).
_TICKS = 512


def _time_base(clip: BuiltinClip) -> Fraction:
    return Fraction(1, clip.fps * _TICKS)


class BuiltinClipSource(Closeable):
    """A built-in clip as a video file: every frame, in order, stamped at the clip's rate.

    ``start``/``duration`` (seconds) select a part of it, as for :class:`VideoFileSource`. It has no
    file and no audio (``path`` is its ``builtin:`` name).
    """

    name = "builtin"
    live = False

    def __init__(self, spec: str, start: float = 0.0, duration: float | None = None) -> None:
        check_span("BuiltinClipSource", start, duration)
        self.path = str(spec)
        self.start = start
        self.duration = duration
        self.damaged = 0
        self.info: VideoInfo
        self._clip: BuiltinClip | None = None
        self._first = 0
        self._count = 0

    def open(self) -> None:
        if self._clip is not None:
            return
        clip = builtin_clip(self.path)
        first = min(round(self.start * clip.fps), clip.frame_count)
        last = clip.frame_count
        if self.duration is not None:
            last = min(last, first + round(self.duration * clip.fps))
        if last <= first:
            raise InvalidInputError(
                f"{self.path} is {clip.duration_s:g} s long: nothing left after --start {self.start:g}"
            )
        self._clip, self._first, self._count = clip, first, last - first
        self.info = VideoInfo(
            width=clip.width,
            height=clip.height,
            fps=float(clip.fps),
            time_base=_time_base(clip),
            duration_s=self._count / clip.fps,
            frame_count=self._count,
            codec="builtin",
        )

    def close(self) -> None:
        self._clip = None

    def __iter__(self) -> Iterator[Frame]:
        clip = self._clip
        if clip is None:
            raise RuntimeError("open the source first (use it in a with block)")
        for index in range(self._count):
            number = self._first + index
            yield Frame(
                index=index, pts=number * _TICKS, time_base=_time_base(clip), image=clip.render(number)
            )


class BuiltinClipCamera(CameraPlayback, BuiltinClipSource):
    """A built-in clip played as a camera (``--camera builtin:astronaut-clip``): see
    :class:`p2c.stream.sources.CameraPlayback`."""

    name = "builtin-camera"

    def _one_pass(self) -> Iterator[Frame]:
        return BuiltinClipSource.__iter__(self)

    def _rewind(self) -> None:
        return None  # each pass renders the clip afresh
