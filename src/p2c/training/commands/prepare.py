"""``p2c-prepare-data RAW_DIR OUT_DIR``: aligned, segmented 256x256 crops for training.

Photos:   p2c-prepare-data raw/photos data --domain A --split-test 40 --workers 4
Cartoons: p2c-prepare-data raw/cartoons data --domain B
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from p2c.cli import run_command
from p2c.errors import InvalidInputError
from p2c.training.preparation import PrepareConfig, prepare_dataset

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p2c-prepare-data",
        description="Align and segment every face image of RAW_DIR into OUT_DIR/train{A,B} (and test{A,B}) "
        "as 256x256 white-background PNG crops. RAW_DIR is never modified.",
    )
    parser.add_argument(
        "raw_dir", metavar="RAW_DIR", help="folder of raw photos (or cartoons), searched recursively"
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="dataset folder (outside RAW_DIR)")
    parser.add_argument("--domain", choices=("A", "B"), default="A", help="A: photos (default), B: cartoons")
    parser.add_argument(
        "--workers",
        type=int,
        default=max(1, min(8, os.cpu_count() or 1)),
        help="worker processes, each with its own aligner (default: cores, at most 8)",
    )
    parser.add_argument(
        "--allow-multiple-faces",
        action="store_true",
        help="keep the largest face of images with several (default: skip them)",
    )
    parser.add_argument(
        "--split-test",
        type=int,
        default=0,
        metavar="N",
        help="put N randomly chosen crops in test{domain} (default 0)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the test split (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = PrepareConfig(
            raw_dir=args.raw_dir,
            out_dir=args.out_dir,
            domain=args.domain,
            workers=args.workers,
            allow_multiple_faces=args.allow_multiple_faces,
            split_test=args.split_test,
            seed=args.seed,
        )
    except ValueError as error:
        raise InvalidInputError(str(error)) from error
    report = prepare_dataset(config, progress=not args.no_progress)
    print(report.summary())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv, prog="p2c-prepare-data")


if __name__ == "__main__":
    sys.exit(main())
