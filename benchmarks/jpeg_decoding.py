"""What decoding a webcam's MJPEG frame to RGB costs, three ways, on the MJPEG scenario's clip.

A 1080p webcam sends JPEGs. Through OpenCV's capture they are decoded by OpenCV to BGR and then
converted to RGB; p2c reads them raw and decodes them with FFmpeg (:mod:`p2c.stream.mjpeg`). This
times both, and OpenCV decoding straight to RGB where it can (4.10 and later), on the same frames:
CPU milliseconds per frame of the whole process (FFmpeg may use threads), the ways taking turns
so that load on the machine falls on all of them alike.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["time_jpeg_decoding"]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _ways() -> dict[str, Callable[[bytes], Any]]:
    import cv2

    from p2c.stream.mjpeg import MjpegDecoder

    ffmpeg = MjpegDecoder()

    def opencv_bgr(data: bytes) -> Any:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    ways: dict[str, Callable[[bytes], Any]] = {
        "ffmpeg_rgb (p2c)": ffmpeg.decode,
        "opencv_bgr_then_rgb (OpenCV's capture)": opencv_bgr,
    }
    if hasattr(cv2, "IMREAD_COLOR_RGB"):
        flag = cv2.IMREAD_COLOR_RGB
        ways["opencv_rgb"] = lambda data: cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    return ways


def time_jpeg_decoding(clip: Path, frames: int = 30, rounds: int = 3) -> dict[str, Any]:
    """CPU ms per frame of each way (mean over ``rounds`` turns of ``frames`` frames of ``clip``,
    an MJPEG AVI), with the frame size."""
    import av
    import cv2

    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        packets = [bytes(packet) for packet in container.demux(stream) if packet.size][:frames]
    ways = _ways()
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)  # as in a pipeline run (p2c.stream.threads)
    try:
        times: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(rounds):
            for name, decode in ways.items():
                started = _cpu()
                for packet in packets:
                    decode(packet)
                times[name].append(1000.0 * (_cpu() - started) / max(len(packets), 1))
    finally:
        cv2.setNumThreads(previous)
    height, width = ways["ffmpeg_rgb (p2c)"](packets[0]).shape[:2] if packets else (0, 0)
    return {
        "clip": clip.name,
        "size": [int(width), int(height)],
        "frames": len(packets),
        "rounds": rounds,
        "cpu_ms_per_frame": {name: float(np.mean(values)) for name, values in times.items()},
        "cpu_ms_per_frame_rounds": times,
    }
