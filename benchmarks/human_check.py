"""What the human checks cost per detected face: the mesh run again, dlib's HOG detector, skin or fur.

For every face of the photos (the shared portraits by default, or the astronaut with ``--tiny``)
it times, interleaved ``--repeat`` times: ``LandmarkDetector.detect`` without the checks, the mesh
check (:meth:`LandmarkDetector._is_steady`), the HOG check (:meth:`HogFaceCheck.score`) and the
skin check (:meth:`SkinCheck.score`), and
writes p50/p95 per face with the machine's load average, as JSON, Markdown and a plot.

    python benchmarks/human_check.py --photos ../shared/data/photo2cartoon/trainA --limit 60 --out out/human
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reporting import Report, benchmark_command, pyplot, save_figure, write_report

NAME = "human_check"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=None, help="a photo folder (default: the astronaut)")
    parser.add_argument("--limit", type=int, default=60, help="at most this many photos")
    parser.add_argument("--repeat", type=int, default=3, help="timings per face and step")
    parser.add_argument("--tiny", action="store_true", help="the astronaut only, once (CI's smoke test)")
    parser.add_argument("--out", type=Path, default=Path("out/human_check"))
    return parser


def _photos(args: argparse.Namespace) -> list[np.ndarray]:
    from p2c.stream.image_io import read_image

    if args.tiny or args.photos is None:
        return [read_image("builtin:astronaut")]
    return [read_image(path) for path in sorted(args.photos.iterdir())[: args.limit]]


def _ms(values: list[float]) -> dict[str, float]:
    array = np.asarray(values) * 1000.0
    return {"p50_ms": float(np.percentile(array, 50)), "p95_ms": float(np.percentile(array, 95))}


def run(args: argparse.Namespace) -> Report:
    from p2c.stream.human_check import HogFaceCheck
    from p2c.stream.landmarks import LandmarkDetector
    from p2c.stream.skin_check import SkinCheck

    repeat = 1 if args.tiny else args.repeat
    times: dict[str, list[float]] = {
        "detect_without_checks": [],
        "mesh_check": [],
        "hog_check": [],
        "skin_check": [],
    }
    load_before = os.getloadavg()
    faces = 0
    with LandmarkDetector(human_only=False) as detector, HogFaceCheck() as hog, SkinCheck() as skin:
        for photo in _photos(args):
            for _ in range(repeat):
                started = time.perf_counter()
                found = detector.detect(photo)
                times["detect_without_checks"].append((time.perf_counter() - started) / max(len(found), 1))
                for face in found:
                    started = time.perf_counter()
                    detector._is_steady(photo, face.landmarks)
                    times["mesh_check"].append(time.perf_counter() - started)
                    started = time.perf_counter()
                    hog.score(photo, face.landmarks)
                    times["hog_check"].append(time.perf_counter() - started)
                    started = time.perf_counter()
                    skin.score(photo, face.landmarks)
                    times["skin_check"].append(time.perf_counter() - started)
            faces += len(found)
    report: Report = {
        "what": "ms per detected face; detect_without_checks is LandmarkDetector.detect(human_only=False)",
        "faces": faces,
        "repeat": repeat,
        "steps": {step: _ms(values) for step, values in times.items() if values},
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
    }
    write_report(args.out, NAME, report, _table(report), _plot)
    return report


def _table(report: Report) -> str:
    lines = [
        f"{report['faces']} faces x {report['repeat']}, load average {report['load_average_before'][0]:.1f} "
        f"on {report['cpus']} CPUs",
        "",
        "| step | p50 ms | p95 ms |",
        "| --- | --- | --- |",
    ]
    for step, row in report["steps"].items():
        lines.append(f"| {step} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} |")
    return "\n".join(lines) + "\n"


def _plot(report: Report, path: Path) -> None:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 3))
    steps = list(report["steps"])
    axes.bar(steps, [report["steps"][s]["p50_ms"] for s in steps], label="p50")
    axes.scatter(steps, [report["steps"][s]["p95_ms"] for s in steps], color="k", label="p95", zorder=3)
    axes.set_ylabel("ms per face")
    axes.legend()
    save_figure(figure, path)


main = benchmark_command(NAME, build_parser, run, _table)

if __name__ == "__main__":
    sys.exit(main())
