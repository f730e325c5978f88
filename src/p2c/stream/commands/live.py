"""``p2c-stream --camera SRC``: cartoonize a camera live, into a virtual camera, a window or a file."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from p2c.cli import positive_float, positive_int, run_command
from p2c.errors import InputNotFoundError, InvalidInputError
from p2c.files import require_folder
from p2c.stream.commands.video_options import (
    add_strength_argument,
    add_video_arguments,
    check_weights,
    open_engine,
    video_config_from_args,
)
from p2c.stream.frame import Frame
from p2c.stream.sinks import add_sink_arguments, check_outputs, offered_outputs, outputs_from_args
from p2c.stream.stats import PipelineStats, StatsSnapshot, write_stats_json

__all__ = ["StatusLine", "build_parser", "main"]

_STATUS_EVERY_S = 0.5


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p2c-stream",
        description="Cartoonize a camera live. Frames are dropped, not queued, when the machine falls "
        "behind, so the delay stays short; before it drops frames it segments and searches for faces "
        "less often.",
    )
    parser.add_argument(
        "--camera",
        metavar="SRC",
        help="camera index (0), device path (/dev/video2), a video file played at its own rate, or "
        "builtin:astronaut-clip (a moving portrait made at run time, to try it without a camera)",
    )
    parser.add_argument(
        "--list-cameras",
        action="store_true",
        help="list the cameras found, with the sizes and frame rates each offers, and exit",
    )
    parser.add_argument("--json", action="store_true", help="with --list-cameras: print JSON, for scripts")
    add_sink_arguments(parser)
    parser.add_argument("--width", type=positive_int, default=None, help="requested camera width")
    parser.add_argument("--height", type=positive_int, default=None, help="requested camera height")
    parser.add_argument(
        "--fps",
        type=positive_float,
        default=None,
        help="requested camera frame rate; a video file plays at this rate instead of its own",
    )
    parser.add_argument("--mirror", action="store_true", help="flip the camera left-right (selfie view)")
    add_strength_argument(parser, "; change it live with + and -")
    parser.add_argument(
        "--no-keys",
        action="store_true",
        help="do not read live keys from standard input (the preview window's keys still work)",
    )
    parser.add_argument("--loop", action="store_true", help="a video file: replay it until stopped")
    parser.add_argument("--frames", type=positive_int, default=None, metavar="N", help="stop after N frames")
    parser.add_argument(
        "--stats-json",
        type=Path,
        default=None,
        metavar="PATH",
        help="write the run's counters (frames in/out/dropped, fps, latency, time per stage) as JSON",
    )
    parser.add_argument(
        "--reconnect",
        action="store_true",
        help="when the camera is unplugged, wait for it and carry on as soon as it is back (the outputs "
        "show a 'camera lost' card meanwhile) instead of stopping",
    )
    add_video_arguments(parser)
    return parser


class StatusLine:
    """One line on stderr, rewritten in place: fps, latency, faces, drops, and what the adaptive
    policy has lowered while the machine cannot keep up."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.stats: PipelineStats | None = None
        self._last = 0.0
        self._width = 0

    def __call__(self, frame: Frame, stats: PipelineStats) -> None:
        self.stats = stats
        now = time.monotonic()
        if now - self._last < _STATUS_EVERY_S:
            return
        self._last = now
        out = self.stream or sys.stderr
        line = self.format(stats.snapshot(), len(frame.faces))
        out.write("\r" + line.ljust(self._width))
        self._width = len(line)
        out.flush()

    @staticmethod
    def format(snap: StatsSnapshot, faces: int) -> str:
        line = (
            f"{snap.fps:5.1f} fps | latency p50 {snap.latency_p50_ms:4.0f} ms"
            f" p95 {snap.latency_p95_ms:4.0f} ms | faces {faces} | dropped {snap.dropped}"
        )
        if snap.policy:
            line += f" | busy: {snap.policy}"
        return line


def _report(
    snap: StatsSnapshot, args: argparse.Namespace, info: Any, outputs: Sequence[str], engine: Any
) -> dict[str, Any]:
    report = snap.to_report()
    report["run"] = {
        "command": "p2c-stream",
        "camera": args.camera,
        "size": [info.width, info.height],
        "camera_fps": info.fps,
        "outputs": list(outputs),
        "max_faces": args.max_faces,
        "engine": f"{engine.name} {engine.precision} on {engine.device}",
    }
    return report


def _list_cameras(as_json: bool) -> int:
    """``--list-cameras``: every camera with its modes, for a person or (``--json``) a script."""
    import json

    from p2c.stream.cameras import describe_cameras, list_cameras

    cameras = list_cameras()
    if as_json:
        print(json.dumps([camera.to_json() for camera in cameras], indent=2))
    else:
        print("\n".join(describe_cameras(cameras)))
    return 0


def _stdin_is_ours() -> bool:
    """Whether reading standard input is safe: there is one, and it is not the terminal of a job in
    the background (a read there would stop the whole process with SIGTTIN)."""
    if sys.stdin is None:
        return False
    try:
        fd = sys.stdin.fileno()
        return not os.isatty(fd) or os.tcgetpgrp(fd) == os.getpgrp()
    except (OSError, ValueError, AttributeError):  # no descriptor (a test's stream): read it
        return True


def _controlled(sinks: Sequence[Any], controls: Any, read_stdin: bool) -> Any:
    """The outputs behind the live view: keys from the preview window and (one line a frame) from
    standard input change what they show, while they stay open."""
    from p2c.stream.sinks import PreviewSink
    from p2c.stream.view import KEYS, StdinKeys, ViewedSinks

    for sink in sinks:
        if isinstance(sink, PreviewSink):
            sink.on_key = controls.press
    keys = StdinKeys(sys.stdin) if read_stdin and _stdin_is_ours() else None
    help_text = ", ".join(f"{key} {what.split(' (')[0]}" for key, what in KEYS.items())
    where = "in the window, or typed here and Enter" if keys is not None else "in the window"
    print(f"p2c-stream: keys ({where}): {help_text}", file=sys.stderr)
    return ViewedSinks(sinks, controls, keys)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_cameras:
        return _list_cameras(args.json)
    if args.camera is None:
        parser.error("the following arguments are required: --camera (or --list-cameras)")
    outputs = outputs_from_args(args)
    if not outputs:
        raise InvalidInputError(f"nothing to send the cartoon to: pass {offered_outputs()}")
    check_weights(args)
    check_outputs(outputs)
    if args.stats_json is not None:
        require_folder(args.stats_json, what="--stats-json")
    config = video_config_from_args(args)

    from p2c.stream.camera_watch import WatchedCamera
    from p2c.stream.pipeline import cartoonize, sink_target
    from p2c.stream.sinks import build_sinks
    from p2c.stream.sources import Source, WebcamSource, open_camera
    from p2c.stream.view import LiveControls

    source: Source = open_camera(args.camera, args.width, args.height, args.fps, args.mirror, loop=args.loop)
    if isinstance(source, WebcamSource):  # read in a thread: a card while it stalls, hot-plug
        source = WatchedCamera.of(source, reconnect=args.reconnect)
    status = StatusLine()
    controls = LiveControls(strength=args.strength)
    stats: StatsSnapshot | None = None
    with source:
        sinks = build_sinks(outputs, sink_target(source.info, config, live=source.live, title="p2c-stream"))
        engine = open_engine(args, live=source.live)  # before the keys line: a bad file is one line
        viewed = _controlled(sinks, controls, read_stdin=not args.no_keys)

        def on_frame(frame: Frame, run_stats: PipelineStats) -> None:
            controls.stats = run_stats
            status(frame, run_stats)

        try:
            stats = cartoonize(source, [viewed], engine, config, max_frames=args.frames, on_frame=on_frame)
        finally:
            engine.close()
            sys.stderr.write("\n")
            final = stats or (status.stats.snapshot() if status.stats is not None else None)
            if args.stats_json is not None and final is not None:
                write_stats_json(args.stats_json, _report(final, args, source.info, list(outputs), engine))
    assert stats is not None
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
