"""``p2c-image IN OUT``: cartoonize the faces of one photo.

Default: the cartoon of the largest face on white, 256x256, as photo2cartoon's ``test.py`` makes.
``--composite``: the whole photo with every face replaced by its cartoon.
``--crop-only``: the aligned, background-whitened 256x256 crop the generator would see (no weights).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from p2c.cli import positive_int, run_command
from p2c.engine import add_engine_arguments, create_engine, engine_config_from_args
from p2c.stream import stills
from p2c.stream.commands.video_options import add_strength_argument
from p2c.stream.faces import AlignerConfig, FaceAligner
from p2c.stream.image_io import check_output_path, read_image, write_image
from p2c.stream.view import blend_strength

if TYPE_CHECKING:
    from p2c.engine import Backend

__all__ = ["build_parser", "main"]

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p2c-image",
        description="Turn the faces in a photo into cartoon portraits (photo2cartoon's generator).",
        epilog="IN may be builtin:astronaut to try it without a photo.",
    )
    parser.add_argument(
        "input", metavar="IN", help="input photo (any format OpenCV reads) or builtin:astronaut"
    )
    parser.add_argument("output", metavar="OUT", help="output image, .png or .jpg (its folder must exist)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--composite",
        dest="mode",
        action="store_const",
        const="composite",
        help="write the whole photo with every face replaced by its cartoon",
    )
    mode.add_argument(
        "--crop-only",
        dest="mode",
        action="store_const",
        const="crop",
        help="write the aligned 256x256 white-background crop of the largest face (needs no weights)",
    )
    parser.set_defaults(mode="portrait")
    parser.add_argument(
        "--max-faces",
        type=positive_int,
        default=AlignerConfig().max_faces,
        metavar="N",
        help="with --composite, cartoonize at most the N largest faces (default %(default)s)",
    )
    add_strength_argument(parser, " (with --composite)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details, keep MediaPipe's own logs")
    add_engine_arguments(parser)
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    output = check_output_path(args.output)  # fail before the slow part, not after it
    image = read_image(args.input)
    engine: Backend | None = None
    if args.mode != "crop":
        # Before detection: no model, or a file that is not one, is reported at once.
        engine = create_engine(args.weights, engine_config_from_args(args))
    try:
        with FaceAligner() as aligner:
            if engine is None:
                result = stills.aligned_crop(aligner, image, args.input)
            elif args.mode == "composite":
                result = stills.composite(engine, aligner, image, args.max_faces, args.input)
                result = blend_strength(image, result, args.strength)
            else:
                result = stills.portrait(engine, aligner, image, args.input)
    finally:
        if engine is not None:
            engine.close()
    write_image(output, result)
    described = {"crop": "aligned crop", "portrait": "cartoon", "composite": "every face cartoonized"}
    logger.info("wrote %s (%s)", output, described[args.mode])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv, prog="p2c-image")


if __name__ == "__main__":
    sys.exit(main())
