"""``p2c-video IN OUT``: cartoonize every face of a video file, keeping its timing and sound."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from p2c.cli import run_command
from p2c.errors import InvalidInputError
from p2c.files import require_folder
from p2c.stream.commands.video_options import (
    add_file_window_arguments,
    add_strength_argument,
    add_video_arguments,
    check_weights,
    open_engine,
    video_config_from_args,
)
from p2c.stream.sinks import add_sink_arguments, check_outputs, offered_outputs, outputs_from_args
from p2c.stream.stats import write_stats_json

__all__ = ["build_parser", "main"]

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p2c-video",
        description="Turn the people in a video file into cartoons. Every frame is kept, with its "
        "timestamp; the audio track is copied.",
    )
    parser.add_argument(
        "input", type=Path, help="video file (anything FFmpeg reads), or builtin:astronaut-clip to try it"
    )
    add_sink_arguments(parser, positional="file")
    add_file_window_arguments(parser)
    add_strength_argument(parser)
    parser.add_argument(
        "--stats-json",
        type=Path,
        default=None,
        metavar="PATH",
        help="write the run's counters (frames, fps, time per stage) as JSON",
    )
    add_video_arguments(parser)
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    outputs = outputs_from_args(args)
    if not outputs:
        raise InvalidInputError(f"nothing to write the cartoon to: pass OUT, or {offered_outputs('file')}")
    check_weights(args)
    check_outputs(outputs, source=args.input)
    if args.stats_json is not None:
        require_folder(args.stats_json, what="--stats-json")
    config = video_config_from_args(args)

    from p2c.stream.pipeline import cartoonize_video
    from p2c.stream.sources import open_video
    from p2c.stream.view import LiveControls

    with open_video(args.input, start=args.start, duration=args.duration) as source:
        engine = open_engine(args)
        try:
            view = LiveControls(strength=args.strength) if args.strength < 1 else None
            stats = cartoonize_video(
                source, outputs, engine, config, progress=True, title="p2c-video", view=view
            )
        finally:
            engine.close()
    if args.stats_json is not None:
        report = stats.to_report()
        report["run"] = {"command": "p2c-video", "input": str(args.input), "outputs": list(outputs)}
        write_stats_json(args.stats_json, report)
    damaged = f", {stats.damaged} damaged frames skipped" if stats.damaged else ", 0 damaged frames"
    where = f"wrote {outputs['file']}" if "file" in outputs else f"into {', '.join(outputs)}"
    print(
        f"p2c-video: {where}: {stats.frames_out} frames, {stats.faces} faces, "
        f"{stats.detections} detections{damaged}, {stats.fps:.1f} fps",
        file=sys.stderr,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv, prog="p2c-video")


if __name__ == "__main__":
    sys.exit(main())
