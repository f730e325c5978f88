"""``p2c-stream --camera SRC``: cartoonize a camera live, into a virtual camera, a window or a file."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from p2c.cli import positive_float, positive_int, run_command
from p2c.errors import InputNotFoundError, InvalidInputError
from p2c.stream.commands.video_options import (
    add_video_arguments,
    check_weights,
    open_engine,
    video_config_from_args,
)
from p2c.stream.frame import Frame
from p2c.stream.sinks import add_sink_arguments, check_outputs, offered_outputs, outputs_from_args
from p2c.stream.stats import PipelineStats

__all__ = ["build_parser", "main"]

_STATUS_EVERY_S = 0.5


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p2c-stream",
        description="Cartoonize a camera live. Frames are dropped, not queued, when the machine falls "
        "behind, so the delay stays short.",
    )
    parser.add_argument(
        "--camera",
        required=True,
        metavar="SRC",
        help="camera index (0), device path (/dev/video2), or a video file played at its own rate",
    )
    add_sink_arguments(parser)
    parser.add_argument("--width", type=positive_int, default=None, help="requested camera width")
    parser.add_argument("--height", type=positive_int, default=None, help="requested camera height")
    parser.add_argument("--fps", type=positive_float, default=None, help="requested camera frame rate")
    parser.add_argument("--mirror", action="store_true", help="flip the camera left-right (selfie view)")
    parser.add_argument("--frames", type=positive_int, default=None, metavar="N", help="stop after N frames")
    parser.add_argument(
        "--reconnect",
        action="store_true",
        help="when the camera is unplugged, wait for it and carry on as soon as it is back (the outputs "
        "show a 'camera lost' card meanwhile) instead of stopping",
    )
    add_video_arguments(parser)
    return parser


class StatusLine:
    """One line on stderr, rewritten in place: fps, latency, faces, drops."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._last = 0.0

    def __call__(self, frame: Frame, stats: PipelineStats) -> None:
        now = time.monotonic()
        if now - self._last < _STATUS_EVERY_S:
            return
        self._last = now
        snap = stats.snapshot()
        out = self.stream or sys.stderr
        out.write(
            f"\r{snap.fps:5.1f} fps | latency p50 {snap.latency_p50_ms:4.0f} ms"
            f" p95 {snap.latency_p95_ms:4.0f} ms | faces {len(frame.faces)} | dropped {snap.dropped} "
        )
        out.flush()


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    outputs = outputs_from_args(args)
    if not outputs:
        raise InvalidInputError(f"nothing to send the cartoon to: pass {offered_outputs()}")
    check_weights(args)
    check_outputs(outputs)
    config = video_config_from_args(args)

    from p2c.stream.camera_watch import WatchedCamera
    from p2c.stream.pipeline import cartoonize, sink_target
    from p2c.stream.sinks import build_sinks
    from p2c.stream.sources import Source, WebcamSource, open_camera

    source: Source = open_camera(args.camera, args.width, args.height, args.fps, args.mirror)
    if isinstance(source, WebcamSource):  # read in a thread: a card while it stalls, hot-plug
        source = WatchedCamera.of(source, reconnect=args.reconnect)
    with source:
        sinks = build_sinks(outputs, sink_target(source.info, config, live=source.live, title="p2c-stream"))
        engine = open_engine(args)
        try:
            stats = cartoonize(source, sinks, engine, config, max_frames=args.frames, on_frame=StatusLine())
        finally:
            engine.close()
            sys.stderr.write("\n")
    print(
        f"p2c-stream: {stats.frames_out} frames at {stats.fps:.1f} fps, "
        f"latency p50 {stats.latency_p50_ms:.0f} ms p95 {stats.latency_p95_ms:.0f} ms, "
        f"{stats.faces} faces, {stats.detections} detections, "
        f"{stats.dropped} dropped, {stats.late} late",
        file=sys.stderr,
    )
    if getattr(source, "disconnected", False):
        frames = getattr(source, "live_frames", stats.frames_in)  # the camera's own, not its cards
        raise InputNotFoundError(
            f"camera {args.camera} disconnected after {frames} frames; the outputs were closed cleanly"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv, prog="p2c-stream")


if __name__ == "__main__":
    sys.exit(main())
