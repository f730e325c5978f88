"""The engine options every ``p2c-*`` command line shares."""

from __future__ import annotations

import argparse
from pathlib import Path

from p2c.cli import positive_int
from p2c.engine.base import PRECISIONS, EngineConfig
from p2c.engine.registry import backend_names
from p2c.errors import InvalidInputError

__all__ = ["add_engine_arguments", "engine_config_from_args"]


def add_engine_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--weights --backend --precision --device --batch-size --threads --compile --cuda-graphs``."""
    group = parser.add_argument_group("inference engine")
    group.add_argument(
        "--weights",
        type=Path,
        default=None,
        metavar="PATH",
        help="photo2cartoon's .pt or .onnx, or a p2c .safetensors (default: the shipped model)",
    )
    group.add_argument(
        "--backend",
        default="auto",
        choices=["auto", *backend_names()],
        help="inference backend (default: auto, the fastest that works here)",
    )
    group.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="arithmetic precision (default: auto, fp16 on CUDA and fp32 on the CPU)",
    )
    group.add_argument("--device", default="auto", help="cpu, cuda or cuda:N (default: auto)")
    group.add_argument(
        "--batch-size",
        type=positive_int,
        default=8,
        metavar="N",
        help="largest batch run at once (default: 8)",
    )
    group.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        metavar="N",
        help="onnxruntime's CPU threads (default: 1 for the compact generator, one per core otherwise; "
        "p2c-stream with one face: 2)",
    )
    group.add_argument("--compile", action="store_true", help="torch backend: torch.compile the generator")
    group.add_argument(
        "--cuda-graphs", action="store_true", help="torch backend on CUDA: replay captured CUDA graphs"
    )
    return parser


def engine_config_from_args(args: argparse.Namespace) -> EngineConfig:
    """The EngineConfig the parsed options describe; InvalidInputError for a bad value."""
    try:
        return EngineConfig(
            backend=args.backend,
            precision=args.precision,
            device=args.device,
            max_batch=args.batch_size,
            compile=getattr(args, "compile", False),
            cuda_graphs=getattr(args, "cuda_graphs", False),
            threads=getattr(args, "threads", None),
        )
    except ValueError as error:
        raise InvalidInputError(f"invalid engine option: {error}") from error
