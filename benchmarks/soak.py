"""Soak: the live path for hours' worth of frames, watching memory, files and threads.

A clip is looped as a camera (``ClipCameraSource(loop=True)``, at its own frame rate, so the run
lasts frames / fps seconds whatever the machine) through ``p2c.stream.pipeline.cartoonize`` with
the compact generator (random weights: leaks do not depend on what the weights learnt), into a
sink that drops the frames, as ``p2c-stream`` runs. Every ``--every`` source frames it records the
process's RSS, the Python heap (blocks the allocator holds, and objects the collector tracks),
open file descriptors, Python threads and OS threads. The verdict, in the JSON: after warm-up
(the first ``--warm-up`` frames) RSS and the Python heap grow by under 1 % (least-squares trend
over the span), descriptors and Python threads never move, OS threads (native pools come and go)
do not climb, and once the run is over descriptors and threads are back to where they started.

    python benchmarks/soak.py ../shared/media/talking_512x512_25fps_noaudio.mp4 --out benchmarks/results/soak
    python benchmarks/soak.py CLIP --frames 300 --every 100 --warm-up 100 --out out/soak-short   # CI's
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline_fps import random_weights
from reporting import Report, benchmark_command, pyplot, save_figure, write_report

NAME = "soak"
MAX_MEMORY_GROWTH = 0.01  # 1 %


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path, help="a video file, looped as a camera")
    parser.add_argument("--frames", type=int, default=10_000, help="source frames to run (default 10,000)")
    parser.add_argument("--every", type=int, default=500, help="source frames between samples")
    parser.add_argument("--warm-up", type=int, default=1000, help="frames before growth is measured")
    parser.add_argument("--backend", default="auto", help="engine backend (default: auto)")
    parser.add_argument("--max-faces", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("out/soak"))
    return parser


def _rss_bytes() -> int:
    """Resident set size now (Linux: /proc; elsewhere the peak, which is what the OS gives)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _count(folder: str) -> int | None:
    try:
        return len(os.listdir(folder))
    except OSError:
        return None


def sample(phase: str, frames_in: int, frames_out: int, dropped: int, started: float) -> dict[str, Any]:
    """The counters now; ``phase``: before, running or after the pipeline."""
    return {
        "phase": phase,
        "frames_in": frames_in,
        "frames_out": frames_out,
        "dropped": dropped,
        "seconds": round(time.monotonic() - started, 2),
        "rss_mb": round(_rss_bytes() / 2**20, 2),
        "heap_blocks": sys.getallocatedblocks(),
        "gc_objects": len(gc.get_objects()),
        "open_fds": _count("/proc/self/fd") or _count("/dev/fd"),
        "python_threads": threading.active_count(),
        "os_threads": _count("/proc/self/task"),
    }


def _trend(frames: list[int], values: list[float]) -> float:
    """Growth over the span, relative to the mean, by least squares: noise (RSS moves by a few
    MB either way as buffers come and go) averages out, a leak's steady climb does not."""
    if len(frames) < 2 or not any(values):
        return 0.0
    slope = float(np.polyfit(frames, values, 1)[0])
    return slope * (frames[-1] - frames[0]) / float(np.mean(values))


def verdict(samples: list[dict[str, Any]], warm_up: int) -> dict[str, Any]:
    """Memory growth and counter drift over the samples taken while running after ``warm_up``
    frames; and whether the counters came back down once the run was over."""
    running = [s for s in samples if s["phase"] == "running"]
    settled = [s for s in running if s["frames_in"] >= warm_up] or running[-1:]
    before = next(s for s in samples if s["phase"] == "before")
    after = next((s for s in samples if s["phase"] == "after"), None)
    frames = [s["frames_in"] for s in settled]
    half = len(settled) // 2
    counters = [key for key in ("open_fds", "python_threads", "os_threads") if settled[0][key] is not None]
    # Descriptors and Python threads must not move at all; native thread pools (TFLite, ONNX
    # Runtime) start and stop workers, so OS threads must only not climb (second half vs first).
    flat: dict[str, bool] = {
        key: len({s[key] for s in settled}) == 1 for key in ("open_fds", "python_threads") if key in counters
    }
    if "os_threads" in counters:
        first, second = settled[: max(half, 1)], settled[half:]
        flat["os_threads"] = max(s["os_threads"] for s in second) <= max(s["os_threads"] for s in first)
    result: dict[str, Any] = {
        "from_frame": frames[0],
        "to_frame": frames[-1],
        "rss_growth": round(_trend(frames, [s["rss_mb"] for s in settled]), 5),
        "heap_blocks_growth": round(_trend(frames, [s["heap_blocks"] for s in settled]), 5),
        "rss_first_to_last": round((settled[-1]["rss_mb"] - settled[0]["rss_mb"]) / settled[0]["rss_mb"], 5),
        "rss_range_mb": [min(s["rss_mb"] for s in settled), max(s["rss_mb"] for s in settled)],
        "flat": flat,
        "released": None
        if after is None
        else {
            key: after[key] <= before[key]
            for key in ("open_fds", "python_threads")
            if before[key] is not None
        },
    }
    result["memory_ok"] = (
        result["rss_growth"] < MAX_MEMORY_GROWTH and result["heap_blocks_growth"] < MAX_MEMORY_GROWTH
    )
    result["counters_ok"] = all(flat.values()) and all((result["released"] or {}).values())
    result["passed"] = result["memory_ok"] and result["counters_ok"]
    return result


def run(args: argparse.Namespace) -> Report:
    from p2c.engine import EngineConfig, create_engine
    from p2c.stream.frame import Frame
    from p2c.stream.pipeline import VideoConfig, cartoonize
    from p2c.stream.sinks.base import FrameSink
    from p2c.stream.sources import ClipCameraSource
    from p2c.stream.stats import PipelineStats

    class DiscardSink(FrameSink):
        name = "discard"

        def _write(self, frame: Frame, image: Any) -> None:
            pass

    samples: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        weights = random_weights(Path(folder), arch="compact")
        engine = create_engine(weights, EngineConfig(backend=args.backend))
    started = time.monotonic()
    next_at = [args.every]

    def on_frame(frame: Frame, stats: PipelineStats) -> None:
        # Not at the very end: the reader has stopped there, the stream is winding down.
        if next_at[0] <= stats.frames_in < args.frames:
            next_at[0] += args.every
            snap = stats.snapshot()
            samples.append(sample("running", snap.frames_in, snap.frames_out, snap.dropped, started))
            last = samples[-1]
            print(
                f"\r{last['frames_in']:6d} frames  rss {last['rss_mb']:7.1f} MB  fds {last['open_fds']}  "
                f"threads {last['python_threads']}/{last['os_threads']}",
                end="",
                file=sys.stderr,
                flush=True,
            )

    try:
        source = ClipCameraSource(args.clip, loop=True)
        with source:
            samples.append(sample("before", 0, 0, 0, started))
            sink = DiscardSink(source.info.width, source.info.height)
            config = VideoConfig(max_faces=args.max_faces)
            stats = cartoonize(source, [sink], engine, config, max_frames=args.frames, on_frame=on_frame)
        print(file=sys.stderr)
        samples.append(sample("after", stats.frames_in, stats.frames_out, stats.dropped, started))
    finally:
        engine.close()
    report: Report = {
        "what": "the live path (clip looped as a camera -> track -> engine -> composite -> discard)",
        "clip": str(args.clip),
        "frames": stats.frames_in,
        "frames_out": stats.frames_out,
        "dropped": stats.dropped,
        "fps": round(stats.fps, 2),
        "faces": stats.faces,
        "detections": stats.detections,
        "engine": f"compact (random weights), backend {engine.name} on {engine.device}",
        "seconds": round(time.monotonic() - started, 1),
        "every": args.every,
        "warm_up": args.warm_up,
        "samples": samples,
        "verdict": verdict(samples, args.warm_up),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
    }
    write_report(args.out, NAME, report, _table(report), _plot)
    return report


def _table(report: Report) -> str:
    v = report["verdict"]
    flat = ", ".join(f"{key} {'flat' if ok else 'CHANGED'}" for key, ok in v["flat"].items())
    lines = [
        f"soak: {report['frames']} frames in {report['seconds']} s ({report['fps']} fps out, "
        f"{report['dropped']} dropped), {report['engine']}",
        f"frames {v['from_frame']}-{v['to_frame']}: RSS {100 * v['rss_growth']:+.2f} % (trend; "
        f"{v['rss_range_mb'][0]}-{v['rss_range_mb'][1]} MB), "
        f"Python heap {100 * v['heap_blocks_growth']:+.2f} %, "
        f"{flat}; released after the run: {v['released']}: {'PASSED' if v['passed'] else 'FAILED'}",
        "",
        "| phase | frames | RSS MB | heap blocks | gc objects | fds | threads (Python/OS) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in report["samples"]:
        lines.append(
            f"| {s['phase']} | {s['frames_in']} | {s['rss_mb']} | {s['heap_blocks']} | {s['gc_objects']} | "
            f"{s['open_fds']} | {s['python_threads']}/{s['os_threads']} |"
        )
    return "\n".join(lines) + "\n"


def _plot(report: Report, path: Path) -> None:
    plt = pyplot()
    samples = [s for s in report["samples"] if s["phase"] == "running"]
    frames = [s["frames_in"] for s in samples]
    figure, axes = plt.subplots(2, 2, figsize=(9, 6), sharex=True)
    panels = [
        ("rss_mb", "RSS (MB)"),
        ("heap_blocks", "Python heap (allocated blocks)"),
        ("open_fds", "open file descriptors"),
        ("os_threads", "threads (OS; Python dashed)"),
    ]
    for axis, (key, title) in zip(axes.flat, panels, strict=True):
        axis.plot(frames, [s[key] for s in samples], marker="o", markersize=3)
        if key == "os_threads":
            axis.plot(frames, [s["python_threads"] for s in samples], linestyle="--")
        axis.axvline(report["warm_up"], color="grey", linewidth=0.8)
        axis.set_title(title, fontsize=10)
    for axis in axes[1]:
        axis.set_xlabel("source frames")
    figure.suptitle(
        f"soak: {report['frames']} frames, {'passed' if report['verdict']['passed'] else 'FAILED'}",
        fontsize=11,
    )
    save_figure(figure, path)


main = benchmark_command(NAME, build_parser, run, _table)

if __name__ == "__main__":
    sys.exit(main())
