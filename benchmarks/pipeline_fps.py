"""End-to-end video pipeline benchmark: fps, time per stage, frame latency, flicker.

    python benchmarks/pipeline_fps.py CLIP [--frames N] [--out DIR] [--tiny] [engine options]

Runs CLIP through the whole pipeline (decode -> track -> engine -> composite -> encode) as
``p2c-video`` does and writes ``pipeline_fps.json`` and ``pipeline_fps.png`` into ``--out``:
end-to-end frames per second, seconds per frame of each stage (stages overlap on threads, so
they add up to more than the wall time), p50/p95 latency from decode to encode, and the flicker
figure (:mod:`p2c.stream.flicker`: output change over input change inside the faces). ``--tiny``
runs a random ``ngf=8`` generator so CI measures the pipeline without the real weights; with
``--camera`` the clip plays at its own rate as a live source (drops and latency as with a webcam).
The engine is warmed up on one batch first.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "run_benchmark"]


def _parser() -> argparse.ArgumentParser:
    from p2c.engine import add_engine_arguments

    parser = argparse.ArgumentParser(prog="pipeline_fps", description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", type=Path, help="video clip with a face")
    parser.add_argument("--frames", type=int, default=None, help="stop after this many frames")
    parser.add_argument(
        "--out", type=Path, default=Path("runs/benchmarks"), help="folder for the JSON and PNG"
    )
    parser.add_argument("--tiny", action="store_true", help="random tiny generator (no weights needed)")
    parser.add_argument(
        "--camera", action="store_true", help="play the clip at its own rate, as a live camera"
    )
    parser.add_argument("--max-faces", type=int, default=1)
    parser.add_argument("--no-smoothing", action="store_true", help="turn the cartoon EMA off")
    parser.add_argument("--keep-video", action="store_true", help="keep the encoded output beside the JSON")
    add_engine_arguments(parser)
    return parser


def _tiny_weights(folder: Path) -> Path:
    import torch
    from p2c.models.generator import ResnetGenerator
    from p2c.models.weights import save_generator

    torch.manual_seed(0)
    path = folder / "tiny.safetensors"
    save_generator(ResnetGenerator(ngf=8, img_size=256, light=True).eval(), path, dtype=torch.float32)
    return path


def _versions(engine: Any) -> dict[str, str]:
    import av
    import cv2
    import mediapipe
    import numpy
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": str(__import__("os").cpu_count()),
        "gpu": gpu,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "opencv": cv2.__version__,
        "mediapipe": mediapipe.__version__,
        "av": av.__version__,
        "engine": f"{engine.name} on {getattr(engine, 'device', '?')}",
    }


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Run the pipeline on ``args.clip``; return the report (also written as JSON and PNG)."""
    import numpy as np
    from p2c.engine import create_engine, engine_config_from_args
    from p2c.stream.flicker import FlickerMeter
    from p2c.stream.runner import VideoConfig, cartoonize
    from p2c.stream.sinks import VideoFileSink
    from p2c.stream.sources import ClipCameraSource, VideoFileSource

    args.out.mkdir(parents=True, exist_ok=True)
    latencies: list[float] = []
    finished: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        weights = _tiny_weights(Path(scratch)) if args.tiny else args.weights
        engine = create_engine(weights, engine_config_from_args(args))
        try:
            engine.run(np.zeros((min(args.batch_size, 4), 3, 256, 256), np.float32))  # warm-up
            source = ClipCameraSource(args.clip) if args.camera else VideoFileSource(args.clip)
            with source:
                info = source.info
                video = args.out / "pipeline_fps.mp4" if args.keep_video else Path(scratch) / "out.mp4"
                meter = FlickerMeter(info.width, info.height)
                sinks = [VideoFileSink(video, info.width, info.height, info.fps, info.time_base), meter]
                config = VideoConfig(
                    max_faces=args.max_faces,
                    batch_size=args.batch_size,
                    cartoon_weight=1.0 if args.no_smoothing else 0.5,
                )

                def record(frame: Any, _stats: Any) -> None:
                    now = time.monotonic()
                    latencies.append(now - frame.arrived)
                    finished.append(now)

                started = time.perf_counter()
                stats = cartoonize(source, sinks, engine, config, max_frames=args.frames, on_frame=record)
                wall = time.perf_counter() - started
        finally:
            engine.close()
    frames = max(stats.frames_out, 1)
    report: dict[str, Any] = {
        "clip": str(args.clip),
        "size": [info.width, info.height],
        "mode": "camera" if args.camera else "file",
        "tiny": bool(args.tiny),
        "batch_size": args.batch_size,
        "frames": stats.frames_out,
        "dropped": stats.dropped,
        "faces": stats.faces,
        "detections": stats.detections,
        "wall_s": wall,  # includes loading the models and warming up
        # Throughput between the first and the last output frame: warm-up and pipeline fill excluded.
        "fps": (len(finished) - 1) / (finished[-1] - finished[0]) if len(finished) > 1 else 0.0,
        "stage_ms_per_frame": {k: 1000 * v / frames for k, v in sorted(stats.stage_seconds.items())},
        "latency_ms": {
            "p50": float(np.percentile(latencies, 50) * 1000) if latencies else 0.0,
            "p95": float(np.percentile(latencies, 95) * 1000) if latencies else 0.0,
        },
        "flicker": meter.summary(),
        "versions": _versions(engine),
    }
    (args.out / "pipeline_fps.json").write_text(json.dumps(report, indent=2) + "\n")
    _plot(report, latencies, args.out / "pipeline_fps.png")
    return report


def _plot(report: dict[str, Any], latencies: Sequence[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (stages, latency) = plt.subplots(1, 2, figsize=(11, 4))
    names = list(report["stage_ms_per_frame"])
    stages.barh(names, [report["stage_ms_per_frame"][n] for n in names], color="tab:blue")
    stages.set_xlabel("ms per frame (stages overlap on threads)")
    stages.set_title(f"{report['fps']:.1f} fps end to end, {report['versions']['engine']}")
    latency.hist([1000 * x for x in latencies], bins=30, color="tab:orange")
    latency.axvline(report["latency_ms"]["p50"], color="k", linestyle="--", label="p50")
    latency.axvline(report["latency_ms"]["p95"], color="r", linestyle="--", label="p95")
    latency.set_xlabel("frame latency, decode to encode (ms)")
    latency.set_title(f"flicker ratio {report['flicker']['ratio']:.2f}")
    latency.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    report = run_benchmark(args)
    print(
        json.dumps({k: report[k] for k in ("fps", "stage_ms_per_frame", "latency_ms", "flicker")}, indent=2)
    )
    print(f"wrote {args.out / 'pipeline_fps.json'} and {args.out / 'pipeline_fps.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
