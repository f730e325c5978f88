"""Options and set-up shared by ``p2c-video``, ``p2c-stream`` and ``p2c-batch``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from p2c.cli import non_negative_float, positive_float, positive_int
from p2c.errors import WeightsError
from p2c.stream.smoothing import STILL_WEIGHT

if TYPE_CHECKING:
    from p2c.engine.base import Backend
    from p2c.stream.pipeline import VideoConfig

__all__ = [
    "add_file_window_arguments",
    "add_strength_argument",
    "add_video_arguments",
    "check_weights",
    "open_engine",
    "video_config_from_args",
]


def add_file_window_arguments(parser: argparse.ArgumentParser) -> None:
    """``--start --duration``: which part of each video file to convert."""
    parser.add_argument(
        "--start", type=non_negative_float, default=0.0, metavar="SEC", help="start this many seconds in"
    )
    parser.add_argument(
        "--duration", type=positive_float, default=None, metavar="SEC", help="process this long"
    )


def strength(text: str) -> float:
    """A number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


def add_strength_argument(parser: argparse.ArgumentParser, what: str = "") -> None:
    """``--strength S``: how much cartoon, blended with the photo in the face region."""
    parser.add_argument(
        "--strength",
        type=strength,
        default=1.0,
        metavar="S",
        help=f"how much cartoon, 0 to 1: the cartoon blended with the photo in the face region; "
        f"1 (the default) is the full cartoon{what}",
    )


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    """``--max-faces --side-by-side --detect-every --no-smoothing`` and the engine's options."""
    from p2c.engine import add_engine_arguments

    group = parser.add_argument_group("faces")
    group.add_argument(
        "--max-faces", type=positive_int, default=1, metavar="N", help="faces per frame (default: 1)"
    )
    group.add_argument(
        "--detect-every",
        type=positive_int,
        default=15,
        metavar="K",
        help="frames between searches for new faces while fewer than --max-faces are tracked (default: 15)",
    )
    group.add_argument(
        "--no-smoothing",
        action="store_true",
        help="turn off the cartoon's temporal smoothing (landmarks stay smoothed)",
    )
    group.add_argument(
        "--side-by-side", action="store_true", help="write original | cartoon, twice the width"
    )
    add_engine_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what each stage does")


def video_config_from_args(args: argparse.Namespace) -> VideoConfig:
    from p2c.stream.pipeline import VideoConfig

    return VideoConfig(
        max_faces=args.max_faces,
        batch_size=args.batch_size,
        side_by_side=args.side_by_side,
        detect_every=args.detect_every,
        cartoon_weight=1.0 if args.no_smoothing else STILL_WEIGHT,
    )


def check_weights(args: argparse.Namespace) -> None:
    """Fail in one line, before anything heavy opens, when there is no model to run."""
    from p2c.models.weights import default_weights_path

    if args.weights is None and default_weights_path() is None:
        raise WeightsError(
            "no default model ships with this version yet; pass --weights PATH "
            "(photo2cartoon's .pt or .onnx, or a p2c .safetensors)"
        )


def open_engine(args: argparse.Namespace, live: bool = False) -> Backend:
    """The engine the options describe; ``--threads`` unset, a live run with one face gets
    :func:`p2c.stream.threads.engine_threads`' choice."""
    from p2c.engine import create_engine, engine_config_from_args
    from p2c.stream.threads import engine_config_for_run

    return create_engine(
        args.weights, engine_config_for_run(engine_config_from_args(args), live, args.max_faces)
    )
