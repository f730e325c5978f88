"""A video file sink through PyAV: H.264 (libx264, yuv420p) by default, audio carried over.

The frames' own timestamps are written back (shifted so the file starts at zero), so the output
has the input's frame count, frame rate and duration, variable frame rate included. The input's
first audio track is copied packet by packet when the output container can hold its codec, and
re-encoded (AAC where the container takes it) otherwise.

A recording survives what a long run meets:

- **a crash** (SIGKILL, power loss): MP4 and MOV are written fragmented (an empty ``moov`` first,
  then a fragment at each keyframe or each second), MKV cluster by cluster, and the audio is
  interleaved with the video as it goes, so the file on disk always plays, sound included, up to
  its last complete fragment (at most about a second is lost);
- **a crash of a slow run**: a second of video is minutes of work with a slow model, and the encoder
  holds a dozen frames besides; so MP4 and MOV also end a fragment by the wall clock: when the
  oldest frame not yet on disk would otherwise grow :data:`FLUSH_EVERY_S` (2 s) old, that frame is
  made a keyframe, the encoder gives up every frame it holds, the keyframe closes the fragment, and
  a fresh encoder with the same settings (the same parameter sets, checked) goes on. A killed run
  keeps all but its last 2 s of work (or its last frame, when one frame takes longer than that);
- **Ctrl-C, SIGTERM, an error**: closing flushes the encoder and writes the rest, on every way out;
- **a full disk**: the write error stops the run with one line saying so; the torn last fragment
  is cut off, so the file decodes to its end;
- **the output folder removed while recording**: seen at the next frame; what was recorded is
  saved, from the still-open file, to the nearest folder that exists, and the run stops saying where.

A run that writes no frame leaves no file. Fragmenting costs nothing measurable: on a 720p clip
with sound, the same time within noise and a file 0.3 % smaller (docs/robustness.md).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from p2c.errors import InputNotFoundError, InvalidInputError, MissingDependencyError, OutputError
from p2c.files import require_folder
from p2c.stream.frame import Frame
from p2c.stream.sinks.base import FrameSink, OutputValue, SinkOption, SinkTarget
from p2c.stream.sinks.output_file import (
    FLUSH_EVERY_S,
    FileOpener,
    FlushDeadline,
    OutputFile,
    is_disk_full,
    trim_to_complete_boxes,
)

__all__ = ["CONTAINER_FORMATS", "FRAGMENTED_MP4", "VideoFileSink"]

logger = logging.getLogger(__name__)

# libx264 presets: files keep quality per bit; a live recording spends less CPU (see VideoFileSink).
FILE_PRESET = "veryfast"
LIVE_PRESET = "superfast"
# Output container per file suffix, for the formats p2c writes robustly (others: FFmpeg's guess).
CONTAINER_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
# MP4/MOV muxer options for a file that plays at every moment: the track headers first (empty
# moov), then one fragment per keyframe or per second, whichever comes first.
FRAGMENTED_MP4 = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "1000000"}
_FRAGMENTED_FORMATS = ("mp4", "mov")
# Frames x264 may reorder (B-frames): the first N packets hold every frame shown before N minus this.
_REORDER_MARGIN = 5


def _import_av() -> Any:
    try:
        import av
    except ImportError as error:  # pragma: no cover - av is a core dependency
        raise MissingDependencyError('writing video files needs PyAV: pip install "av>=12"') from error
    return av


class VideoFileSink(FrameSink):
    """Encode frames into ``path``.

    ``time_base`` is the clock of the frames' ``pts`` (the source's); ``audio_from`` a file whose
    first audio track goes along, cut to the span of the input the written frames cover (packets
    copied, unless ``copy_audio`` is false or the container cannot hold the codec: re-encoded).
    ``preset`` and ``threads`` are libx264's (threads default: one per core, not x264's 1.5 per
    core, which fights the pipeline's own threads). Files get ``veryfast``; a live recording
    ``superfast``: measured at CRF 18 on the 720p clip with 2 threads, 26.6 against 18.1 ms of CPU
    per frame at the same picture quality (43.6 / 43.9 dB PSNR against the input) for about twice
    the bitrate (1.7 / 3.6 Mbit/s), ``docs/benchmarks.md``.
    ``fragmented=False`` writes a classic MP4 (index at the end: unplayable if the run is killed);
    ``flush_every_s``: end a fragmented MP4's fragment by the wall clock so a killed run loses at
    most that many seconds of work (``None``: by the video's clock only); ``clock`` is its clock;
    ``opener`` opens the file (tests inject full disks).
    """

    name = "file"
    option = SinkOption(
        "--output", "record to a video file, .mp4, .mov or .mkv (its folder must exist)", "FILE"
    )

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: float,
        time_base: Fraction | None = None,
        codec: str = "libx264",
        pixel_format: str = "yuv420p",
        crf: int = 18,
        audio_from: str | Path | None = None,
        copy_audio: bool = True,
        preset: str = FILE_PRESET,
        threads: int | None = None,
        fragmented: bool = True,
        opener: FileOpener | None = None,
        flush_every_s: float | None = FLUSH_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(width, height)
        if fps <= 0:
            raise ValueError(f"VideoFileSink.fps must be positive, got {fps}")
        self.path = Path(path)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.time_base = time_base or Fraction(1, 90_000)
        self.codec = codec
        self.pixel_format = pixel_format
        self.crf = crf
        self.preset = preset
        self.threads = threads or os.cpu_count() or 1
        self.audio_from = Path(audio_from) if audio_from is not None else None
        self.copy_audio = copy_audio
        self.fragmented = fragmented
        self.audio_mode: str | None = None
        self._opener = opener
        self._file: OutputFile | None = None
        self._format = ""
        self._out: Any = None
        self._video: Any = None
        self._encoder: Any = None  # the stream's encoder, or the fresh one after a forced fragment
        self._video_packets = 0
        self._last_dts: int | None = None
        self._encoder_delay: int | None = None  # pts - dts of the current encoder's first packet
        self._file_delay: int | None = None  # ... of the file's: every encoder's decode times use it
        self._encoder_options: dict[str, str] = {}
        self._deadline = (
            FlushDeadline(flush_every_s, clock) if flush_every_s is not None and fragmented else None
        )
        self._audio_in: Any = None
        self._audio_out: Any = None
        self._audio: Iterator[tuple[float, list[Any]]] | None = None
        self._audio_next: tuple[float, list[Any]] | None = None
        self._first_pts: int | None = None
        self._last_pts: int | None = None
        self._failed = False

    # -- opening --------------------------------------------------------------------------------

    @staticmethod
    def _path(value: OutputValue) -> Path:
        if isinstance(value, bool):
            raise InvalidInputError("the file output needs a path, such as out.mp4")
        return require_folder(value)

    @classmethod
    def check_output(cls, value: OutputValue) -> None:
        cls._path(value)

    @classmethod
    def for_output(cls, value: OutputValue, target: SinkTarget) -> VideoFileSink:
        path = cls._path(value)
        return cls(
            path,
            target.width,
            target.height,
            target.fps,
            target.time_base,
            audio_from=target.audio_from,
            preset=LIVE_PRESET if target.live else FILE_PRESET,
        )

    def open(self) -> None:
        av = _import_av()
        require_folder(self.path)
        # Known suffixes name their container; others are left to FFmpeg to guess from the name.
        container = CONTAINER_FORMATS.get(self.path.suffix.lower())
        self._format = container or ""
        options = FRAGMENTED_MP4 if self.fragmented and self._format in _FRAGMENTED_FORMATS else {}
        try:
            self._file = OutputFile(self.path, self._opener)
        except OSError as error:
            raise OutputError(f"cannot write {self.path}: {error.strerror or error}") from error
        try:
            self._out = av.open(self._file.file, mode="w", format=container, options=dict(options))
            self._add_video_stream()
            if self.audio_from is not None:
                self._add_audio_stream()
        except BaseException as error:
            self._abandon()
            if isinstance(error, av.error.FFmpegError | ValueError):
                raise OutputError(
                    f"cannot write {self.path}: {error}; use a .mp4, .mov or .mkv name"
                ) from error
            raise

    def _add_video_stream(self) -> None:
        av = _import_av()
        pixel_format = self.pixel_format
        if pixel_format == "yuv420p" and (self.width % 2 or self.height % 2):
            # 4:2:0 needs even sizes; keep the input's size rather than crop or pad it.
            logger.warning("odd frame size %dx%d: encoding yuv444p", self.width, self.height)
            pixel_format = "yuv444p"
        try:
            stream = self._out.add_stream(self.codec, rate=self.fps)
        except (av.error.FFmpegError, ValueError) as error:
            raise OutputError(f"cannot encode {self.codec} into {self.path.name}: {error}") from error
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, pixel_format
        stream.codec_context.time_base = self.time_base
        stream.time_base = self.time_base
        if self.codec == "libx264":
            self._encoder_options = {
                "crf": str(self.crf),
                "preset": self.preset,
                "threads": str(self.threads),
            }
            stream.options = dict(self._encoder_options)
        self._video = stream
        self._encoder = stream.codec_context
        if self._format not in _FRAGMENTED_FORMATS:
            self._deadline = None  # only fragmented MP4 and MOV end a fragment at a keyframe

    def _fresh_encoder(self) -> Any:
        """A new encoder with the stream's settings, or None (and no more forced fragments) if its
        parameter sets differ from those in the file's header: a decoder would misread its frames."""
        av = _import_av()
        old = self._video.codec_context
        encoder = av.CodecContext.create(self.codec, "w")
        encoder.width, encoder.height, encoder.pix_fmt = old.width, old.height, old.pix_fmt
        encoder.time_base, encoder.framerate = old.time_base, old.framerate
        global_header = av.codec.context.Flags.global_header  # MP4 keeps the parameter sets in its header
        if old.flags & global_header:
            encoder.flags |= global_header
        encoder.options = dict(self._encoder_options)
        encoder.open()
        if encoder.extradata != old.extradata:
            logger.warning(
                "%s: cannot restart the encoder; fragments follow the video's clock only", self.path
            )
            self._deadline = None
            return None
        return encoder

    def _add_audio_stream(self) -> None:
        av = _import_av()
        assert self.audio_from is not None
        if not self.audio_from.is_file():
            raise InputNotFoundError(f"audio source {self.audio_from} does not exist")
        container = av.open(str(self.audio_from))
        if not container.streams.audio:
            container.close()
            return
        source = container.streams.audio[0]
        self._audio_in = container
        codec = source.codec_context.name
        if self.copy_audio and codec in self._out.supported_codecs:
            self._audio_out = self._out.add_stream_from_template(source)
            self.audio_mode = "copy"
        else:
            target = "aac" if "aac" in self._out.supported_codecs else self._out.default_audio_codec
            self._audio_out = self._out.add_stream(target, rate=source.codec_context.sample_rate)
            self.audio_mode = f"re-encode {codec} -> {target}"
        logger.info("audio track: %s", self.audio_mode)

    # -- writing --------------------------------------------------------------------------------

    def _write(self, frame: Frame, image: np.ndarray) -> None:
        av = _import_av()
        assert self._file is not None
        if self._file.lost():
            raise self._lost()
        pts = (
            frame.pts
            if frame.time_base == self.time_base
            else round(frame.pts * frame.time_base / self.time_base)
        )
        if self._first_pts is None:
            self._first_pts = pts
        pts -= self._first_pts
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1  # encoders need strictly increasing timestamps
        self._last_pts = pts
        video_frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        video_frame.pts = pts
        video_frame.time_base = self.time_base
        fresh = self._fresh_encoder() if self._deadline is not None and self._deadline.due() else None
        if fresh is not None:
            # This frame closes the fragment: a keyframe, and every frame the encoder holds comes out.
            video_frame.pict_type = av.video.frame.PictureType.I
        size, muxed = self._file.size(), self._video_packets
        packets = self._encode(video_frame)
        if fresh is not None:
            packets += self._encode(None, restart=True)
            self._encoder, self._encoder_delay = fresh, None
        self._mux(packets)
        if self._audio_out is not None:
            self._mux_audio_until(self._video_span_s()[1])
        if self._deadline is not None and self._file.size() > size:
            on_disk = self._deadline.frames - 1 if fresh is not None else muxed - _REORDER_MARGIN
            self._deadline.on_disk(on_disk)
            self._deadline.forced += fresh is not None

    def _encode(self, frame: Any, restart: bool = False) -> list[Any]:
        """The packets the current encoder gives for ``frame`` (None: all it still holds;
        ``restart``: to go on with a fresh encoder)."""
        packets = list(self._encoder.encode(frame))
        self._video_packets += len(packets)
        for packet in packets:
            packet.stream = self._video
            if packet.dts is not None and packet.pts is not None:
                packet.dts = self._decode_time(packet.pts, packet.dts, restart)
        return packets

    def _decode_time(self, pts: int, dts: int, restart: bool) -> int:
        """The decode time the file gets for a packet the current encoder stamped ``dts``.

        x264 starts its decode times a B-frame delay before its first frame (2 frames), but only
        once it has seen 3 frames: a fresh encoder drained sooner starts at its first frame. Every
        encoder's times are moved to the file's first delay (at least 2 frames), so decode times
        rise steadily across restarts, never pass a frame's own time, and the track lasts as long
        as its frames do. A run that never restarts keeps x264's own times.

        Only earlier, never later: at a variable frame rate (a live camera's clock) a fresh
        encoder's delay can exceed the file's, and a later decode time would pass a frame's own.
        """
        if self._encoder_delay is None:  # this encoder's first packet: its delay
            self._encoder_delay = pts - dts
            if self._file_delay is None:  # the file's first packet
                frames_2 = round(2 / (self.fps * self.time_base))
                self._file_delay = max(self._encoder_delay, frames_2) if restart else self._encoder_delay
        assert self._file_delay is not None
        dts += min(0, self._encoder_delay - self._file_delay)
        if self._last_dts is not None and dts <= self._last_dts:
            dts = self._last_dts + 1  # a variable frame rate's odd case: still strictly rising
        self._last_dts = dts
        return dts

    def _mux(self, packets: list[Any]) -> None:
        av = _import_av()
        try:
            for packet in packets:
                self._out.mux(packet)
        except (OSError, av.error.FFmpegError) as error:
            raise self._write_failed(error) from error

    def _write_failed(self, error: Exception) -> OutputError:
        self._failed = True
        done = f"recording stopped after {self.frames_written} frames"
        if is_disk_full(error):
            return OutputError(
                f"the disk holding {self.path} is full: {done}; the file keeps what was written before "
                "(all but the last second at most); free some space, or record elsewhere"
            )
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        return OutputError(f"cannot write {self.path} ({reason}): {done}")

    def _lost(self) -> OutputError:
        """The file or its folder vanished: finish the file we still hold open, then save it."""
        self._failed = True
        self._finish(flush=True)
        assert self._file is not None
        folder = self.path.parent
        what = (
            f"the output folder {folder} was removed" if not folder.is_dir() else f"{self.path} was deleted"
        )
        saved = self._file.rescue() if self.frames_written else None
        self._file.close()
        self._file = None
        if saved is not None:
            where = f"the {self.frames_written} frames recorded were saved to {saved}"
        else:
            where = f"the {self.frames_written} frames recorded could not be saved anywhere"
        return OutputError(f"{what} while recording; {where}")

    # -- audio ----------------------------------------------------------------------------------

    def _video_span_s(self) -> tuple[float, float]:
        """Seconds of the input the video covers: from its first frame to the end of its last."""
        assert self._first_pts is not None and self._last_pts is not None
        start = float(self._first_pts * self.time_base)
        return start, start + float(self._last_pts * self.time_base) + 1 / float(self.fps)

    def _mux_audio_until(self, end_s: float) -> None:
        """Mux the input's audio packets that start before ``end_s`` (input seconds)."""
        if self._audio is None:
            self._audio = self._audio_packets(self._video_span_s()[0])
            self._audio_next = next(self._audio, None)
        while self._audio_next is not None and self._audio_next[0] < end_s:
            self._mux(self._audio_next[1])
            self._audio_next = next(self._audio, None)

    def _audio_packets(self, start: float) -> Iterator[tuple[float, list[Any]]]:
        """``(input seconds, packets to mux)`` for the audio from ``start`` on, in order."""
        source = self._audio_in.streams.audio[0]
        tb = source.time_base
        if start > 0:
            self._audio_in.seek(int(start / tb), stream=source)
        offset = round(start / tb)
        encode = self.audio_mode != "copy"
        for packet in self._audio_in.demux(source):
            if packet.pts is None:
                if encode:
                    continue
                break
            seconds = float(packet.pts * tb)
            if seconds < start - 1e-3:
                continue
            if encode:
                out: list[Any] = []
                for audio_frame in packet.decode():
                    audio_frame.pts = audio_frame.pts - offset if audio_frame.pts is not None else None
                    out.extend(self._audio_out.encode(audio_frame))
                yield seconds, out
            else:
                packet.pts -= offset
                if packet.dts is not None:
                    packet.dts -= offset
                packet.stream = self._audio_out
                yield seconds, [packet]
        if encode:
            yield math.inf, list(self._audio_out.encode())

    # -- closing --------------------------------------------------------------------------------

    def _close(self) -> None:
        if self._out is None and self._file is None:
            return
        if self._file is not None and not self._failed and self._file.lost():
            error = self._lost()
            self._release_audio()
            raise error
        self._finish(flush=not self._failed)
        self._release_audio()
        if self._file is not None:
            if self._failed and self._format in _FRAGMENTED_FORMATS and self.fragmented:
                try:
                    trim_to_complete_boxes(self._file.file)
                except OSError as error:  # pragma: no cover - the disk refused even a truncate
                    logger.warning("could not cut the torn end of %s: %s", self.path, error)
            self._file.close()
            self._file = None
            if self.frames_written == 0 and not self._failed:
                self.path.unlink(missing_ok=True)  # a run that wrote no frame leaves no file

    def _finish(self, flush: bool) -> None:
        """Flush the encoder and the rest of the audio (``flush``) and close the container.

        After a failed write nothing more is flushed, and closing errors are logged, not raised:
        the first error is the one to report."""
        if self._out is None:
            return
        av = _import_av()
        try:
            if flush:
                self._mux(self._encode(None))  # the frames the encoder still holds
                if self._audio_out is not None and self._last_pts is not None:
                    self._mux_audio_until(self._video_span_s()[1])
                    if self.audio_mode != "copy":
                        self._mux_audio_until(math.inf)
        finally:
            out, self._out = self._out, None
            try:
                out.close()
            except (OSError, av.error.FFmpegError) as error:
                if not self._failed:
                    raise self._write_failed(error) from error
                logger.debug("closing %s after a failed write: %s", self.path, error)

    def _abandon(self) -> None:
        """Opening failed: close what was opened and leave no file behind."""
        if self._out is not None:
            try:
                self._out.close()
            except Exception as error:
                logger.debug("closing a half-opened %s: %s", self.path, error)
            self._out = None
        self._release_audio()
        if self._file is not None:
            self._file.close()
            self._file = None
            self.path.unlink(missing_ok=True)

    def _release_audio(self) -> None:
        if self._audio_in is not None:
            self._audio_in.close()
            self._audio_in = None
            self._audio = None
