"""Batch throughput: files/s and frames/s of ``p2c-batch`` with 1, 2, ... workers on a local Ray.

    python benchmarks/batch_throughput.py [--workers 1 2] [--clips N --stills N --seconds S] [--out DIR]
    python benchmarks/batch_throughput.py --tiny --out out/batch-tiny      # CI smoke test

Makes a batch in a scratch folder (``--clips`` copies of CLIP, each converted for ``--seconds``,
and ``--stills`` photos: skimage's astronaut at several sizes), then runs ``p2c.batch.run_batch``
on it once per worker count, each time into an empty output folder, on a fresh local Ray. It
reports files/s and frames/s over the conversion (from the first file handed out to the last one
back: Ray and the workers' engines already started), the start-up time (Ray, worker processes,
engines) and the wall time, and the scaling efficiency (frames/s over N times the 1-worker rate).
With CUDA, each worker gets one GPU (``--gpus-per-worker``), so the rows are per GPU. Writes
``batch_throughput.json``, ``.md`` and ``.png`` into ``--out``. Weights: ``--weights``, else a
random full-size generator (``--tiny``: ngf 8), the same speed as trained weights.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from generator_throughput import machine_info
from pipeline_fps import random_weights, require_video_libraries
from reporting import benchmark_command, pyplot, save_figure, write_report

NAME = "batch_throughput"
SHARED_CLIP = Path(__file__).resolve().parents[2] / "shared" / "media" / "talking_512x512_25fps_noaudio.mp4"

__all__ = ["main", "make_batch", "run_benchmark"]


def _parser() -> argparse.ArgumentParser:
    from p2c.cli import positive_float, positive_int
    from p2c.engine import add_engine_arguments

    parser = argparse.ArgumentParser(prog=NAME, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clip", type=Path, default=SHARED_CLIP, help="video with a face (default: ../shared)"
    )
    parser.add_argument("--clips", type=positive_int, default=6, help="copies of the clip in the batch")
    parser.add_argument("--stills", type=positive_int, default=6, help="photos in the batch")
    parser.add_argument(
        "--seconds", type=positive_float, default=2.0, help="seconds of each clip converted (--duration)"
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        nargs="+",
        default=None,
        help="worker counts (default: 1 2, or 1..GPUs)",
    )
    parser.add_argument(
        "--gpus-per-worker", type=float, default=None, help="default: 1 with CUDA, else 0 (CPU workers)"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/benchmarks"), help="folder for JSON/MD/PNG")
    parser.add_argument("--tiny", action="store_true", help="random ngf-8 generator and a small batch (CI)")
    add_engine_arguments(parser)
    return parser


def make_batch(folder: Path, clip: Path, clips: int, stills: int) -> Path:
    """``folder/in`` with ``clips`` copies of ``clip`` and ``stills`` astronaut photos of several sizes."""
    import cv2
    from skimage import data

    source = folder / "in"
    (source / "clips").mkdir(parents=True)
    (source / "stills").mkdir()
    for index in range(clips):
        shutil.copy(clip, source / "clips" / f"clip{index:03d}{clip.suffix}")
    photo = data.astronaut()[..., ::-1]
    for index in range(stills):
        size = 256 + 128 * (index % 3)
        cv2.imwrite(str(source / "stills" / f"astronaut{index:03d}.jpg"), cv2.resize(photo, (size, size)))
    return source


def _row(workers: int, gpus: float, summary: Any) -> dict[str, Any]:
    done = summary.count("done")
    convert = summary.convert_s
    return {
        "workers": workers,
        "gpus_per_worker": gpus,
        "files": done,
        "failed": summary.count("failed"),
        "frames": summary.frames,
        "convert_s": round(convert, 3),
        "startup_s": round(summary.elapsed_s - convert, 3),
        "wall_s": round(summary.elapsed_s, 3),
        "files_per_s": done / convert if convert else 0.0,
        "frames_per_s": summary.frames / convert if convert else 0.0,
        "engines": sorted({f"{w.backend} {w.precision} on {w.device}" for w in summary.workers}),
        "engine_loads": [w.engine_loads for w in summary.workers],
    }


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from p2c.batch import ClusterConfig, WorkerSettings, run_batch
    from p2c.engine import engine_config_from_args
    from p2c.errors import InputNotFoundError
    from p2c.stream.pipeline import VideoConfig

    require_video_libraries()
    if args.tiny:
        args.clips, args.stills, args.seconds = (
            min(args.clips, 2),
            min(args.stills, 2),
            min(args.seconds, 0.4),
        )
    if not args.clip.is_file():
        raise InputNotFoundError(f"clip {args.clip} not found; pass a video with a face as --clip")
    gpus = (
        args.gpus_per_worker
        if args.gpus_per_worker is not None
        else (1.0 if torch.cuda.is_available() else 0.0)
    )
    counts = args.workers or (list(range(1, torch.cuda.device_count() + 1)) if gpus else [1, 2])
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        weights = (
            random_weights(scratch, ngf=8 if args.tiny else 32) if args.weights is None else args.weights
        )
        source = make_batch(scratch, args.clip, args.clips, args.stills)
        settings = WorkerSettings(
            weights=weights,
            engine=engine_config_from_args(args),
            video=VideoConfig(batch_size=args.batch_size),
            duration=args.seconds,
        )
        for workers in counts:
            cluster = ClusterConfig(workers=workers, gpus_per_worker=gpus)
            summary = run_batch(source, scratch / f"out{workers}", settings, cluster, show_progress=False)
            rows.append(_row(workers, gpus, summary))
            print(f"{workers} worker(s): {rows[-1]['frames_per_s']:.2f} frames/s", file=sys.stderr)
    base = rows[0]["frames_per_s"] / rows[0]["workers"] if rows and rows[0]["frames_per_s"] else 0.0
    for row in rows:
        row["scaling_efficiency"] = row["frames_per_s"] / (row["workers"] * base) if base else 0.0
    report = {
        "machine": machine_info(),
        "settings": {
            "clip": str(args.clip),
            "clips": args.clips,
            "stills": args.stills,
            "seconds_per_clip": args.seconds,
            "weights": "random ngf 8 (tiny)"
            if args.tiny and args.weights is None
            else str(args.weights or "random ngf 32"),
            "engine": {"backend": args.backend, "precision": args.precision, "device": args.device},
            "rates": "over the conversion: first file handed out to last file back (Ray and engines started)",
        },
        "rows": rows,
    }
    write_report(args.out, NAME, report, markdown_table(report), _plot)
    return report


def markdown_table(report: dict[str, Any]) -> str:
    lines = [
        "| workers | GPUs each | files | frames | files/s | frames/s | scaling | start-up (s) | wall (s) "
        "| engine |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['workers']} | {row['gpus_per_worker']:g} | {row['files']} | {row['frames']} "
            f"| {row['files_per_s']:.2f} | {row['frames_per_s']:.2f} | {row['scaling_efficiency']:.0%} "
            f"| {row['startup_s']:.1f} | {row['wall_s']:.1f} | {', '.join(row['engines'])} |"
        )
    return "\n".join(lines) + "\n"


def _plot(report: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    rows = report["rows"]
    workers = [row["workers"] for row in rows]
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(workers, [row["frames_per_s"] for row in rows], "o-", label="measured")
    if rows:
        per_worker = rows[0]["frames_per_s"] / rows[0]["workers"]
        axes.plot(workers, [per_worker * n for n in workers], "--", color="gray", label="linear scaling")
    axes.set_xlabel("workers")
    axes.set_ylabel("frames per second (whole batch)")
    axes.set_xticks(workers)
    gpu = report["machine"].get("gpu") or {}
    load = report["machine"]["load_average_at_start"][0]
    where = gpu.get("name") or f"{report['machine']['cpu']} x{report['machine']['cpu_count']}"
    axes.set_title(f"p2c-batch on {where} (load {load:.1f} at start)")
    axes.legend()
    save_figure(figure, path)


main = benchmark_command(NAME, _parser, run_benchmark, markdown_table)


if __name__ == "__main__":
    sys.exit(main())
