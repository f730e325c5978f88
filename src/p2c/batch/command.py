"""``p2c-batch IN OUT``: cartoonize every video and photo under IN into OUT, on a Ray cluster's workers."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from p2c.batch.cluster import WORKER_RESTARTS
from p2c.batch.config import ClusterConfig, WorkerSettings
from p2c.batch.summary import SUMMARY_NAME
from p2c.cli import non_negative_float, positive_float, positive_int, run_command
from p2c.stream.commands.video_options import (
    add_file_window_arguments,
    add_video_arguments,
    check_weights,
    video_config_from_args,
)

__all__ = ["build_parser", "main"]


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p2c-batch",
        description="Turn the people in many videos and photos into cartoons, spread over the workers "
        "of a Ray cluster (a local one by default). Outputs mirror the input tree; finished outputs "
        "are skipped when run again.",
        epilog=f"Exit code 0 when every file is done, 1 when any failed; {SUMMARY_NAME} in OUT lists "
        "every file. Needs Ray: pip install 'p2c[cluster]'.",
    )
    parser.add_argument(
        "input",
        metavar="IN",
        help="a folder (searched recursively), a glob such as 'clips/**/*.mp4', "
        "or a text file with one path a line",
    )
    parser.add_argument("output", metavar="OUT", type=Path, help="output folder (created if missing)")
    cluster = parser.add_argument_group("cluster (Ray)")
    cluster.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="worker processes, each with its own warm engine (default: one per GPU, else one per machine)",
    )
    cluster.add_argument(
        "--gpus-per-worker",
        type=non_negative_float,
        default=None,
        metavar="G",
        help="GPUs each worker reserves; 0.5 puts two on a GPU, 0 runs on the CPU "
        "(default: 1 when the cluster has GPUs, else 0)",
    )
    cluster.add_argument(
        "--cpus-per-worker",
        type=positive_float,
        default=None,
        metavar="C",
        help="CPU cores each worker reserves (default: this machine's cores shared among the workers "
        "on a local Ray, 1 on a cluster)",
    )
    cluster.add_argument(
        "--address",
        default=os.environ.get("RAY_ADDRESS") or None,
        metavar="ADDR",
        help="join the Ray cluster at HOST:PORT, ray://HOST:PORT or auto (default: $RAY_ADDRESS; "
        "without it a local Ray is started and stopped)",
    )
    cluster.add_argument(
        "--retries",
        type=_non_negative_int,
        default=2,
        metavar="N",
        help="when the worker converting a file dies, try the file again on another worker up to N "
        f"times (default: 2; each worker process is restarted up to {WORKER_RESTARTS} times)",
    )
    add_file_window_arguments(parser)
    add_video_arguments(parser)
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    check_weights(args)
    from p2c.batch.run import run_batch
    from p2c.engine import engine_config_from_args

    settings = WorkerSettings(
        weights=args.weights,
        engine=engine_config_from_args(args),
        video=video_config_from_args(args),
        start=args.start,
        duration=args.duration,
    )
    cluster = ClusterConfig(
        address=args.address,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        cpus_per_worker=args.cpus_per_worker,
        retries=args.retries,
        verbose=args.verbose,
    )
    summary = run_batch(args.input, args.output, settings, cluster)
    print(f"p2c-batch: {summary.line()}; every file in {args.output / SUMMARY_NAME}", file=sys.stderr)
    return summary.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv, prog="p2c-batch")


if __name__ == "__main__":
    sys.exit(main())
