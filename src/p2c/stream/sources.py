"""Sources: where frames come from (a webcam, a video file, a video file played as a camera).

Every source is a context manager that yields :class:`p2c.stream.frame.Frame` objects in RGB
``uint8`` (pixel formats convert here and in the sinks only), and exposes ``info`` (a
:class:`VideoInfo`: size after rotation, frame rate, time base, duration, audio), ``live`` (drop
frames rather than wait) and ``damaged`` (packets or frames that could not be decoded, reported
at the end instead of stopping the run). :func:`open_camera` turns ``--camera SRC`` into a source.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from p2c.errors import InputNotFoundError, InvalidInputError, MissingDependencyError
from p2c.resources import Closeable
from p2c.stream.frame import MICROSECONDS, Frame
from p2c.stream.mjpeg import MJPG, MjpegDecoder
from p2c.stream.threads import decode_in_thread

__all__ = [
    "AudioInfo",
    "CameraPlayback",
    "ClipCameraSource",
    "Source",
    "VideoFileSource",
    "VideoInfo",
    "WebcamSource",
    "open_camera",
    "open_video",
]

logger = logging.getLogger(__name__)

# Names a folder's videos are recognised by, to suggest one when a folder is given as a video.
_VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts"})
# A camera that returns this many failed reads in a row (about a second) is gone.
_MAX_FAILED_READS = 30
# A camera asked for at least this width or height is asked for MJPEG (see WebcamSource.open).
_MJPEG_FROM = (1280, 720)


@dataclass(frozen=True)
class AudioInfo:
    """The first audio stream of a file (what a file sink copies or re-encodes)."""

    codec: str
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class VideoInfo:
    """What a source delivers: frame size (after rotation), rate and clock, length, audio."""

    width: int
    height: int
    fps: float
    time_base: Fraction
    duration_s: float | None = None
    frame_count: int | None = None
    rotation: int = 0
    audio: AudioInfo | None = None
    codec: str = ""


@runtime_checkable
class Source(Protocol):
    """Where the pipeline's frames come from. Contract, for every source:

    - it is a context manager: ``__enter__`` opens it, raising ``InputNotFoundError`` or
      ``InvalidInputError`` (one sentence) when it cannot, after which ``info`` is exact;
      ``__exit__`` closes it on every way out;
    - iterating it yields RGB ``uint8`` :class:`p2c.stream.frame.Frame` objects in stream order;
    - ``live``: frames come at the source's own pace whether or not they are taken (a camera), so
      the pipeline drops the oldest rather than wait; otherwise every frame must come out;
    - ``damaged`` counts what could not be decoded; it is final once iteration has ended;
    - a live source may also count in ``skipped`` frames it let go because nobody took them in
      time (a camera overwrites them); the pipeline counts those as dropped.
    """

    name: str
    live: bool
    info: VideoInfo
    damaged: int

    def __enter__(self) -> Source: ...

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def __iter__(self) -> Iterator[Frame]: ...


def _import_av() -> Any:
    try:
        import av
    except ImportError as error:  # pragma: no cover - av is a core dependency
        raise MissingDependencyError('reading video files needs PyAV: pip install "av>=12"') from error
    return av


def check_span(owner: str, start: float, duration: float | None) -> None:
    """Refuse a part of a video that cannot be: a negative start, a duration not above 0."""
    if start < 0:
        raise ValueError(f"{owner}.start must be >= 0 seconds, got {start}")
    if duration is not None and duration <= 0:
        raise ValueError(f"{owner}.duration must be positive seconds, got {duration}")


def _rotate(image: np.ndarray, degrees_ccw: int) -> np.ndarray:
    """Rotate by a multiple of 90 degrees counter-clockwise (FFmpeg's display-matrix angle)."""
    quarter_turns = round(degrees_ccw / 90) % 4
    return np.ascontiguousarray(np.rot90(image, quarter_turns)) if quarter_turns else image


def _stream_rotation(stream: Any) -> int:
    """The rotation the old ``rotate`` tag asks for, as a counter-clockwise angle (tag is clockwise)."""
    tag = stream.metadata.get("rotate")
    try:
        return -int(float(tag)) if tag is not None else 0
    except ValueError:
        return 0


class VideoFileSource(Closeable):
    """Decode a video file with PyAV (any container FFmpeg reads); never drops a frame.

    Rotation metadata (display matrix or ``rotate`` tag) is applied so frames come out upright.
    Packets that fail to decode are skipped and counted in ``damaged``; so are frames FFmpeg
    marks corrupt and, for a file cut short, the frames the container promised but never gave.
    ``start``/``duration`` (seconds) select a part of the file.
    """

    name = "file"
    live = False

    def __init__(self, path: str | Path, start: float = 0.0, duration: float | None = None) -> None:
        check_span("VideoFileSource", start, duration)
        self.path = Path(path)
        self.start = start
        self.duration = duration
        self.damaged = 0
        self.decoded = 0
        self.missing = 0
        self.info: VideoInfo
        self._container: Any = None
        self._stream: Any = None
        self._first: Any = None
        self._packets: Iterator[Any] | None = None
        self._pending: list[Any] = []
        self._rotation = 0

    # -- opening --------------------------------------------------------------------------------

    def open(self) -> None:
        """Open the file and decode its first frame (so ``info`` is exact); opening twice is a no-op."""
        if self._container is not None:
            return
        av = _import_av()
        if self.path.is_dir():
            raise _folder_error(self.path, "the input", "(p2c-batch converts every video in a folder)")
        if not self.path.is_file():
            raise InputNotFoundError(f"video file {self.path} does not exist; check the path")
        try:
            self._container = av.open(str(self.path))
        except (av.error.FFmpegError, UnicodeDecodeError) as error:
            raise InvalidInputError(
                f"cannot read {self.path} as a video ({error.__class__.__name__}): it is not a video, or it "
                "is damaged or cut short; pass a video file such as .mp4, .mov, .mkv or .webm"
            ) from error
        if not self._container.streams.video:
            self.close()
            raise InvalidInputError(f"{self.path} has no video stream; pass a video file")
        self._stream = self._container.streams.video[0]
        decode_in_thread(self._stream, live=self.live)
        if self.start > 0:
            self._container.seek(int(self.start / self._stream.time_base), stream=self._stream)
        self._packets = iter(self._container.demux(self._stream))
        self._pending = []
        self._first = self._next_decoded()
        if self._first is None:
            self.close()
            raise InvalidInputError(f"{self.path} holds no decodable video frame; the file may be damaged")
        self.info = self._describe(self._first)

    def _describe(self, first: Any) -> VideoInfo:
        stream, container = self._stream, self._container
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate or 25
        rotation = int(first.rotation or 0) or _stream_rotation(stream)
        self._rotation = rotation
        width, height = first.width, first.height
        if round(rotation / 90) % 2:
            width, height = height, width
        duration = float(stream.duration * stream.time_base) if stream.duration else None
        if duration is None and container.duration:
            duration = container.duration / 1_000_000
        audio = None
        if container.streams.audio:
            ctx = container.streams.audio[0].codec_context
            audio = AudioInfo(
                codec=ctx.name, sample_rate=int(ctx.sample_rate or 0), channels=int(ctx.channels)
            )
        frames = int(stream.frames) if stream.frames else None
        if duration is not None:
            duration = max(duration - self.start, 0.0)
            if self.duration is not None:
                duration = min(duration, self.duration)
        if frames is not None and (self.start > 0 or self.duration is not None):
            frames = round(duration * float(rate)) if duration is not None else None
        return VideoInfo(
            width=width,
            height=height,
            fps=float(rate),
            time_base=Fraction(stream.time_base),
            duration_s=duration,
            frame_count=frames,
            rotation=rotation,
            audio=audio,
            codec=stream.codec_context.name,
        )

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    # -- decoding -------------------------------------------------------------------------------

    def _next_decoded(self) -> Any:
        """The next decodable frame, skipping (and counting) damaged packets; ``None`` at the end."""
        av = _import_av()
        assert self._packets is not None
        pending = self._pending
        while not pending:
            try:
                packet = next(self._packets)
            except StopIteration:
                return None
            except av.error.FFmpegError as error:
                # A demuxer error (a cut file) ends the stream: what came before is kept.
                logger.warning("%s: stopped reading at a damaged part: %s", self.path, error)
                self.damaged += 1
                return None
            try:
                pending = list(packet.decode())
            except av.error.FFmpegError as error:
                logger.debug("%s: undecodable packet at pts %s: %s", self.path, packet.pts, error)
                self.damaged += 1
        self._pending = pending[1:]
        return pending[0]

    def _in_window(self, seconds: float) -> int:
        """-1 before ``start``, 0 inside, 1 past the end of the selected part."""
        if seconds < self.start - 1e-6:
            return -1
        if self.duration is not None and seconds >= self.start + self.duration - 1e-6:
            return 1
        return 0

    def __iter__(self) -> Iterator[Frame]:
        if self._container is None:
            raise RuntimeError("open the source first (use it in a with block)")
        index = 0
        step = round(1 / (self.info.fps * self.info.time_base)) if self.info.fps else 1
        last_pts: int | None = None
        decoded, self._first = self._first, None
        while decoded is not None:
            pts = decoded.pts if decoded.pts is not None else (0 if last_pts is None else last_pts + step)
            where = self._in_window(float(pts * self.info.time_base))
            if where > 0:
                break
            if where == 0:
                damaged = bool(getattr(decoded, "is_corrupt", False))
                self.damaged += int(damaged)
                image = _rotate(decoded.to_ndarray(format="rgb24"), self._rotation)
                yield Frame(index=index, pts=pts, time_base=self.info.time_base, image=image, damaged=damaged)
                index += 1
            last_pts = pts
            decoded = self._next_decoded()
        self.decoded = index
        if self.info.frame_count is not None and self.duration is None and self.start == 0:
            self.missing = max(self.info.frame_count - index, 0)
            if self.missing:
                logger.warning("%s: %d frames missing at the end (truncated file?)", self.path, self.missing)
                self.damaged += self.missing


class CameraPlayback:
    """Plays a finite, non-live source at its frame rate, standing in for a camera (a mixin).

    It is live: frames come when their timestamp is due, whether or not the pipeline keeps up,
    so drops and latency behave as with a real camera; a frame read more than a frame interval
    after it was due is let go and counted in ``skipped``, as a camera overwrites a frame nobody
    took (the pipeline counts those as dropped). ``loop`` replays it; ``fps`` plays it at that
    rate instead of its own (frame after frame, restamped on that clock, as a camera running at
    ``fps`` would deliver them). The class it is mixed into gives one pass (:meth:`_one_pass`)
    and a way back to the start (:meth:`_rewind`).
    """

    live = True
    info: VideoInfo

    def __init__(self, source: Any, loop: bool = False, fps: float | None = None) -> None:
        super().__init__(source)  # type: ignore[call-arg]  # the class mixed in takes its source
        if fps is not None and fps <= 0:
            raise ValueError(f"{type(self).__name__}.fps must be positive, got {fps}")
        self.loop = loop
        self.fps = fps
        self.skipped = 0

    def open(self) -> None:
        super().open()  # type: ignore[misc]  # the class mixed in opens the source
        if self.fps is not None:
            self.info = replace(self.info, fps=float(self.fps))

    def _one_pass(self) -> Iterator[Frame]:
        raise NotImplementedError

    def _rewind(self) -> None:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        clock_start = time.monotonic()
        offset_s = 0.0
        while True:
            first_ts: float | None = None
            last_ts = 0.0
            for frame in self._one_pass():
                first_ts = frame.timestamp if first_ts is None else first_ts
                last_ts = frame.timestamp - first_ts
                if self.fps is not None:  # a camera at fps: one frame every 1 / fps seconds
                    due = clock_start + index / self.fps
                    frame.pts = round(index / self.fps / frame.time_base)
                else:
                    due = clock_start + offset_s + last_ts
                    if offset_s:  # a replay: timestamps go on from where the last pass ended
                        frame.pts += round(offset_s / frame.time_base)
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                elif -delay > 1.0 / self.info.fps:
                    # Read more than a frame too late: a camera would have overwritten it.
                    self.skipped += 1
                    index += 1
                    continue
                frame.index = index
                frame.arrived = time.monotonic()
                index += 1
                yield frame
            if not self.loop or first_ts is None:
                return
            offset_s += last_ts + 1 / max(self.info.fps, 1e-3)
            self._rewind()


class ClipCameraSource(CameraPlayback, VideoFileSource):
    """A video file played at its own frame rate, standing in for a camera (``--camera clip.mp4``):
    see :class:`CameraPlayback`."""

    name = "clip"

    def _one_pass(self) -> Iterator[Frame]:
        return VideoFileSource.__iter__(self)

    def _rewind(self) -> None:
        self.close()
        self.open()


class WebcamSource(Closeable):
    """An OpenCV camera (an index such as 0, or a device path such as /dev/video2).

    ``width``/``height``/``fps`` are requests: the camera picks the nearest mode it has, and
    ``info`` says what it gave. ``mirror`` flips left-right (what a user expects of a selfie view).
    A camera that stops delivering frames ends the stream with ``disconnected`` set.
    """

    name = "webcam"
    live = True

    def __init__(
        self,
        device: int | str,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        mirror: bool = False,
    ) -> None:
        self.device = device
        self.requested = (width, height, fps)
        self.mirror = mirror
        self.damaged = 0
        self.disconnected = False
        self.info: VideoInfo
        self._capture: Any = None
        self._jpeg: MjpegDecoder | None = None  # raw MJPEG frames (see _first_frame)

    def open(self) -> None:
        """Open the camera and read one frame (so ``info`` is exact); opening twice is a no-op."""
        if self._capture is not None:
            return
        import cv2

        capture = cv2.VideoCapture(self.device)
        width, height, fps = self.requested
        if capture.isOpened():
            if (width or 0) >= _MJPEG_FROM[0] or (height or 0) >= _MJPEG_FROM[1]:
                # HD at full rate comes as MJPEG (YUYV at 1080p fits USB 2 at about 5 fps).
                capture.set(cv2.CAP_PROP_FOURCC, MJPG)
            if width:
                capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            if height:
                capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            if fps:
                capture.set(cv2.CAP_PROP_FPS, fps)
        probe = self._first_frame(capture) if capture.isOpened() else None
        if probe is None:
            capture.release()
            raise InputNotFoundError(
                f"cannot open camera {self.device}: check that it is connected and not used by another "
                "program, or pass another index, a device path, or a video file to --camera"
            )
        self._capture = capture
        self._probe: np.ndarray | None = probe
        got_fps = capture.get(cv2.CAP_PROP_FPS) or fps or 30.0
        self.info = VideoInfo(
            width=int(probe.shape[1]), height=int(probe.shape[0]), fps=float(got_fps), time_base=MICROSECONDS
        )
        if (width and width != self.info.width) or (height and height != self.info.height):
            logger.info("camera %s gives %dx%d", self.device, self.info.width, self.info.height)

    def _first_frame(self, capture: Any) -> np.ndarray | None:
        """The camera's first frame in RGB. An MJPEG camera is read raw and its JPEGs decoded by
        FFmpeg (:mod:`p2c.stream.mjpeg`: less than half what OpenCV's decoding and a conversion to
        RGB cost), unless its backend will not give them raw."""
        import cv2

        if int(capture.get(cv2.CAP_PROP_FOURCC)) == MJPG and capture.set(cv2.CAP_PROP_CONVERT_RGB, 0):
            self._jpeg = MjpegDecoder()
            ok, raw = capture.read()
            rgb = self._to_rgb(raw) if ok and raw is not None else None
            if rgb is not None:
                return rgb
            self._jpeg = None
            capture.set(cv2.CAP_PROP_CONVERT_RGB, 1)
            logger.info("camera %s: MJPEG frames do not decode raw; reading them through OpenCV", self.device)
        ok, bgr = capture.read()
        return self._to_rgb(bgr) if ok and bgr is not None else None

    def _to_rgb(self, image: np.ndarray) -> np.ndarray | None:
        """A camera read as RGB: a BGR image converted, or a raw JPEG decoded (``None``: it does not)."""
        import cv2

        if image.ndim == 3 and image.shape[2] == 3:
            return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return None if self._jpeg is None else self._jpeg.decode(image)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def read_rgb(self) -> np.ndarray | None:
        """The camera's next image, RGB (mirrored if asked), or None when the read failed.

        The first call returns the frame :meth:`open` read. Blocks while the camera waits."""
        if self._capture is None:
            raise RuntimeError("open the source first (use it in a with block)")
        rgb, self._probe = self._probe, None
        if rgb is None:
            ok, image = self._capture.read()
            if not ok or image is None:
                return None
            rgb = self._to_rgb(image)
            if rgb is None:
                return None
        return np.ascontiguousarray(rgb[:, ::-1]) if self.mirror else rgb

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        index, failures = 0, 0
        while True:
            rgb = self.read_rgb()
            if rgb is None:
                failures += 1
                if failures >= _MAX_FAILED_READS:
                    self.disconnected = True
                    logger.warning("camera %s stopped sending frames after %d", self.device, index)
                    return
                time.sleep(1 / max(self.info.fps, 1.0))
                continue
            failures = 0
            now = time.monotonic()
            yield Frame(
                index=index, pts=round((now - start) * 1e6), time_base=MICROSECONDS, image=rgb, arrived=now
            )
            index += 1


def _folder_error(path: Path, what: str, instead: str) -> InvalidInputError:
    """A folder given where a file belongs: say so, name a video inside it when there is one."""
    videos = (
        sorted(p.name for p in path.iterdir() if p.is_file() and p.suffix.lower() in _VIDEO_SUFFIXES)
        if os.access(path, os.R_OK)
        else []
    )
    example = f" such as {path / videos[0]}" if videos else ""
    return InvalidInputError(
        f"{what} {path} is a folder, not a video file; pass a video file{example} {instead}"
    )


def open_video(spec: str | os.PathLike[str], start: float = 0.0, duration: float | None = None) -> Source:
    """A video file, or a built-in clip (``builtin:astronaut-clip``), as a source that keeps every frame.

    ``start``/``duration`` (seconds) select a part. Not opened yet (use it in a ``with`` block).
    """
    from p2c.stream.builtin_clips import BuiltinClipSource, is_builtin_clip

    if is_builtin_clip(spec):
        return BuiltinClipSource(str(spec), start=start, duration=duration)
    return VideoFileSource(Path(spec), start=start, duration=duration)


def open_camera(
    spec: str,
    width: int | None = None,
    height: int | None = None,
    fps: float | None = None,
    mirror: bool = False,
    loop: bool = False,
) -> Source:
    """``--camera SRC``: an index (``0``), a device path (``/dev/video2``), a video file or a built-in
    clip (``builtin:astronaut-clip``).

    A file or clip is played at its own rate (or at ``fps``, replayed with ``loop``) as a stand-in
    for a camera; ``mirror`` and the size requests apply to real cameras only.
    """
    from p2c.stream.builtin_clips import BuiltinClipCamera, is_builtin_clip

    spec = spec.strip()
    if spec.isdigit():
        return WebcamSource(int(spec), width, height, fps, mirror)
    if is_builtin_clip(spec):
        return BuiltinClipCamera(spec, loop=loop, fps=fps)
    path = Path(spec)
    if path.is_dir():
        raise _folder_error(
            path, "--camera", "(played as a camera), a camera index such as 0, or a device path"
        )
    if path.is_file() and not spec.startswith("/dev/"):
        return ClipCameraSource(path, loop=loop, fps=fps)
    if spec.startswith("/dev/") or path.exists():
        return WebcamSource(spec, width, height, fps, mirror)
    raise InputNotFoundError(
        f"camera {spec!r} not found: pass a camera index such as 0, a device path, a video file, "
        "or builtin:astronaut-clip"
    )
