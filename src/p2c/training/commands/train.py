"""``p2c-train``: train photo2cartoon's GAN on prepared crops; resume; export the A->B generator.

The options are generated from :class:`~p2c.training.config.TrainConfig`'s field metadata, so the
command line and the configuration cannot drift apart. Exporting a checkpoint is ``p2c-export``'s
job (``--format safetensors`` or ``--format slice-state``).

Single process: ``p2c-train --data DATA --out RUN``. Several GPUs (also across machines):
``torchrun --nproc_per_node 4 -m p2c.training.commands.train --data DATA --out RUN``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from dataclasses import Field
from pathlib import Path
from typing import Any, get_type_hints

from p2c.cli import run_command
from p2c.errors import InvalidInputError
from p2c.training.config import LossWeights, TrainConfig

__all__ = ["build_parser", "config_from_args", "main"]

_MOVED = "{flag} moved to p2c-export: p2c-export CHECKPOINT OUT --format {fmt}"


def _option_names(field: Field[Any], prefix: str = "", suffix: str = "") -> tuple[str, str]:
    """(flag, argparse dest) of a config field: ``--batch-size``/``batch_size`` unless metadata says."""
    dest = f"{prefix}{field.name}{suffix}"
    return field.metadata["cli"].get("flag", "--" + dest.replace("_", "-")), dest


_OWN_KEYS = ("flag", "path", "negate", "parse")  # cli() metadata that is not add_argument's


def _add_field(parser: argparse.ArgumentParser, field: Field[Any], kind: Any, flag: str, dest: str) -> None:
    """One option from a dataclass field: its type, default and :func:`p2c.training.config.cli` metadata."""
    meta = field.metadata["cli"]
    passed = {key: value for key, value in meta.items() if key not in _OWN_KEYS}
    if kind is bool:
        action = "store_false" if meta.get("negate") else "store_true"
        parser.add_argument(flag, dest=dest, action=action, **passed)
        return
    parse = meta.get("parse")
    argument_type = _argparse_type(parse) if parse else (kind if kind in (int, float) else str)
    parser.add_argument(flag, dest=dest, type=argument_type, default=field.default, **passed)


def _argparse_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` whose ValueError becomes argparse's own one-line message."""

    def argument_type(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return argument_type


def _cli_fields(cls: type) -> list[tuple[Field[Any], Any]]:
    hints = get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls) if "cli" in f.metadata]


def build_parser() -> argparse.ArgumentParser:
    """Every :class:`TrainConfig` field with ``cli`` metadata, the loss weights, and the run options."""
    parser = argparse.ArgumentParser(
        prog="p2c-train",
        description="Train photo2cartoon's GAN (two generators, four discriminators) on prepared crops.",
    )
    for field, kind in _cli_fields(TrainConfig):
        _add_field(parser, field, kind, *_option_names(field))
    for field, kind in _cli_fields(LossWeights):
        _add_field(parser, field, kind, *_option_names(field, suffix="_weight"))
    add = parser.add_argument
    add("--stop-after", type=int, default=None, help="stop (with a checkpoint) at this step; --resume later")
    add(
        "--time-limit",
        type=float,
        default=None,
        metavar="MINUTES",
        help="stop (with a checkpoint) after the first step that ends past MINUTES of training",
    )
    add("--dry-run", action="store_true", help="print the resolved configuration as JSON and exit")
    add(
        "--preset",
        choices=["compact"],
        help="compact: p2c's compact generator with the one-sided CPU objective (the default model's "
        "recipe; p2c-train --preset compact --help lists its options)",
    )
    # Moved to p2c-export; kept hidden so that old scripts get a one-line pointer, not "unrecognized".
    add("--export", nargs=2, metavar=("CHECKPOINT", "OUT"), help=argparse.SUPPRESS)
    add("--to-slice-state", nargs=2, metavar=("CHECKPOINT", "OUT"), help=argparse.SUPPRESS)
    add("-v", "--verbose", action="store_true")
    return parser


def _field_value(args: argparse.Namespace, field: Field[Any], dest: str) -> Any:
    value = getattr(args, dest)
    if field.metadata["cli"].get("path") and value:
        return str(Path(value).resolve())
    return value


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    if not args.data_dir or not args.out_dir:
        raise InvalidInputError("--data and --out are required")
    values = {
        field.name: _field_value(args, field, _option_names(field)[1])
        for field, _ in _cli_fields(TrainConfig)
    }
    weights = {
        f.name: getattr(args, _option_names(f, suffix="_weight")[1]) for f, _ in _cli_fields(LossWeights)
    }
    try:
        return TrainConfig(**values, weights=LossWeights(**weights))
    except ValueError as error:
        raise InvalidInputError(str(error)) from error


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.export:
        raise InvalidInputError(_MOVED.format(flag="--export", fmt="safetensors"))
    if args.to_slice_state:
        raise InvalidInputError(_MOVED.format(flag="--to-slice-state", fmt="slice-state"))
    config = config_from_args(args)
    if args.stop_after is not None and args.stop_after < 1:
        raise InvalidInputError(f"--stop-after must be >= 1, got {args.stop_after}")
    if args.time_limit is not None and not args.time_limit > 0:
        raise InvalidInputError(f"--time-limit must be a positive number of minutes, got {args.time_limit}")
    if args.dry_run:
        print(config.to_json())
        return 0
    from p2c.training.trainer import train

    result = train(config, stop_after=args.stop_after, time_limit=args.time_limit)
    print(f"step {result.step}: run folder {result.run_dir}")
    if result.slice_state is not None:
        print(f"slice state: {result.slice_state}")
    if result.exported is not None:
        print(f"A->B generator: {result.exported}")
    return 0


def _wants_preset(argv: Sequence[str]) -> bool:
    return any(arg == "--preset" or arg.startswith("--preset=") for arg in argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if _wants_preset(arguments):
        from p2c.training.commands.train_compact import main as train_compact_main

        return train_compact_main(arguments)
    return run_command(_main, argv, prog="p2c-train")


if __name__ == "__main__":
    sys.exit(main())
