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
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from p2c.cli import positive_int, run_command
from p2c.engine import (
    add_engine_arguments,
    batch_to_images,
    create_engine,
    engine_config_from_args,
    images_to_batch,
)
from p2c.errors import NoFaceError
from p2c.stream.compositing import cartoon_on_white, paste_cartoons
from p2c.stream.faces import AlignedFace, AlignerConfig, FaceAligner
from p2c.stream.image_io import check_output_path, read_image, write_image

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
    parser.add_argument("-v", "--verbose", action="store_true", help="log details, keep MediaPipe's own logs")
    add_engine_arguments(parser)
    return parser


def _cartoonize(engine: Backend, faces: Sequence[AlignedFace]) -> list[np.ndarray]:
    """Every face's cartoon from one batch through the engine."""
    return batch_to_images(engine.run(images_to_batch([face.crop for face in faces])))


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    output = Path(args.output)
    check_output_path(output)  # fail before the slow part, not after it
    image = read_image(args.input)
    engine: Backend | None = None
    if args.mode != "crop":
        # Before detection: no model, or a file that is not one, is reported at once.
        engine = create_engine(args.weights, engine_config_from_args(args))
    try:
        max_faces = args.max_faces if args.mode == "composite" else 1
        with FaceAligner(AlignerConfig(max_faces=max_faces)) as aligner:
            faces = aligner.align(image)
        if not faces:
            raise NoFaceError(f"no face found in {args.input}; use a photo where a face is clearly visible")
        if args.mode == "crop":
            result = faces[0].crop
        else:
            assert engine is not None
            cartoons = _cartoonize(engine, faces)
            if args.mode == "composite":
                result = paste_cartoons(image, faces, cartoons)
            else:
                result = cartoon_on_white(cartoons[0], faces[0].mask)
    finally:
        if engine is not None:
            engine.close()
    write_image(output, result)
    described = {"crop": "aligned crop", "portrait": "cartoon", "composite": f"{len(faces)} cartoon face(s)"}
    logger.info("wrote %s (%s)", output, described[args.mode])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv, prog="p2c-image")


if __name__ == "__main__":
    sys.exit(main())
