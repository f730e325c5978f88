"""A video file sink through PyAV: H.264 (libx264, yuv420p) by default, audio carried over.

The frames' own timestamps are written back (shifted so the file starts at zero), so the output
has the input's frame count, frame rate and duration, variable frame rate included. The input's
first audio track is copied packet by packet when the output container can hold its codec, and
re-encoded (AAC where the container takes it) otherwise. Closing flushes the encoder and writes
the container's index, on every way out (error, Ctrl-C): a partial run is still a playable file.
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from p2c.errors import InputNotFoundError, InvalidInputError, MissingDependencyError, OutputError
from p2c.files import require_folder
from p2c.stream.frame import Frame
from p2c.stream.sinks.base import FrameSink, OutputValue, SinkOption, SinkTarget

__all__ = ["VideoFileSink"]

logger = logging.getLogger(__name__)

# libx264 presets: files keep quality per bit; a live recording spends less CPU (see VideoFileSink).
FILE_PRESET = "veryfast"
LIVE_PRESET = "superfast"


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
        self.audio_mode: str | None = None
        self._out: Any = None
        self._video: Any = None
        self._audio_in: Any = None
        self._audio_out: Any = None
        self._first_pts: int | None = None
        self._last_pts: int | None = None

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
        try:
            self._out = av.open(str(self.path), mode="w")
        except (av.error.FFmpegError, ValueError, OSError) as error:
            raise OutputError(f"cannot write {self.path}: {error}; use a .mp4, .mov or .mkv name") from error
        try:
            self._add_video_stream()
            if self.audio_from is not None:
                self._add_audio_stream()
        except BaseException:
            self._out.close()
            self._out = None
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
            stream.options = {"crf": str(self.crf), "preset": self.preset, "threads": str(self.threads)}
        self._video = stream

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
        for packet in self._video.encode(video_frame):
            self._out.mux(packet)

    # -- closing --------------------------------------------------------------------------------

    def _close(self) -> None:
        if self._out is None:
            return
        try:
            for packet in self._video.encode():  # flush the frames the encoder still holds
                self._out.mux(packet)
            if self._audio_out is not None and self._last_pts is not None:
                self._write_audio()
        finally:
            self._out.close()
            self._out = None
            if self._audio_in is not None:
                self._audio_in.close()
                self._audio_in = None

    def _video_span_s(self) -> tuple[float, float]:
        """Seconds of the input the video covers: from its first frame to the end of its last."""
        assert self._first_pts is not None and self._last_pts is not None
        start = float(self._first_pts * self.time_base)
        return start, start + float(self._last_pts * self.time_base) + 1 / float(self.fps)

    def _write_audio(self) -> None:
        start, end = self._video_span_s()
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
            if seconds >= end:
                break
            if seconds < start - 1e-3:
                continue
            if encode:
                for audio_frame in packet.decode():
                    audio_frame.pts = audio_frame.pts - offset if audio_frame.pts is not None else None
                    for out_packet in self._audio_out.encode(audio_frame):
                        self._out.mux(out_packet)
            else:
                packet.pts -= offset
                if packet.dts is not None:
                    packet.dts -= offset
                packet.stream = self._audio_out
                self._out.mux(packet)
        if encode:
            for out_packet in self._audio_out.encode():
                self._out.mux(out_packet)
