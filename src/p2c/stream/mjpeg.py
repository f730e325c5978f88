"""MJPEG frames decoded to RGB with FFmpeg: what a 1080p webcam sends.

Most webcams deliver 1080p at 30 fps only as MJPEG (uncompressed YUYV at that size fits a USB 2
link at about 5 fps). Through OpenCV, a camera's JPEGs are decoded by OpenCV (libjpeg-turbo, to
BGR) and p2c then converted them to RGB. FFmpeg's decoder, through PyAV, decodes to YCbCr planes
and converts them to RGB in one swscale pass, and is much the cheaper: a 1080p frame of the MJPEG
scenario clip on the build machine (one thread, process CPU, interleaved runs under load): 4.7 to
5.1 ms, against 11.7 to 14.3 for OpenCV's decoding and conversion (12 to 15 for OpenCV decoding
straight to RGB). An MJPEG file already goes through FFmpeg (:class:`p2c.stream.sources.VideoFileSource`);
:class:`MjpegDecoder` does the same for a camera's raw JPEGs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["MJPG", "MjpegDecoder"]

# The four-character code cameras report for MJPEG (OpenCV's CAP_PROP_FOURCC), as an integer.
MJPG = int.from_bytes(b"MJPG", "little")


class MjpegDecoder:
    """``decode(data)``: one JPEG (its bytes, or a uint8 array of them) as an RGB uint8 image, or
    ``None`` when it does not decode (a damaged or cut frame). One per camera (FFmpeg's decoder
    keeps state between frames)."""

    def __init__(self) -> None:
        import av  # a core dependency; imported here so a camera without MJPEG never loads it

        self._av: Any = av
        self._context: Any = av.CodecContext.create("mjpeg", "r")

    def decode(self, data: bytes | np.ndarray) -> np.ndarray | None:
        payload = data if isinstance(data, bytes) else np.ascontiguousarray(data, np.uint8).tobytes()
        if not payload:
            return None
        try:
            frames = self._context.decode(self._av.Packet(payload))
        except self._av.error.FFmpegError:
            return None
        if not frames:
            return None
        image: np.ndarray = frames[-1].to_ndarray(format="rgb24")
        return image
