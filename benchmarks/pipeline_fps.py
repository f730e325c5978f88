"""End-to-end video pipeline benchmark: fps, time per stage, frame latency, flicker, warping error.

    python benchmarks/pipeline_fps.py CLIP [--frames N] [--out DIR] [--tiny] [engine options]

Runs CLIP through the whole pipeline (decode -> track -> engine -> composite -> encode) as
``p2c-video`` does and writes ``pipeline_fps.json``, ``pipeline_fps.md`` and ``pipeline_fps.png``
into ``--out``: end-to-end frames per second, seconds per frame of each stage (stages overlap on
threads, so they add up to more than the wall time), p50/p95 latency from decode to encode, the
flicker figure (:mod:`p2c.stream.flicker`: output change over input change inside the faces) and
the temporal warping error (:mod:`p2c.stream.warping_error`, Lai et al. 2018: output over input,
after warping frame t+1 onto t with the input's optical flow, consistent pixels only). ``--tiny``
runs a random ``ngf=8`` generator (``--arch compact``: the compact one) so CI measures the
pipeline without the real weights; with
``--camera`` the clip plays at its own rate as a live source (drops and latency as with a webcam).
The engine is warmed up on one batch first. Needs PyAV and MediaPipe (one clear line if missing).
``benchmarks/pipeline_scenarios.py`` reuses these functions for 720p/1080p x 1/4 faces beside
photo2cartoon's own way.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "random_weights", "require_video_libraries", "run_benchmark", "time_pipeline", "warm_up"]


def _parser() -> argparse.ArgumentParser:
    from p2c.engine import add_engine_arguments
    from p2c.stream.smoothing import FLOW_QUALITIES

    parser = argparse.ArgumentParser(prog="pipeline_fps", description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", type=Path, help="video clip with a face")
    parser.add_argument("--frames", type=int, default=None, help="stop after this many frames")
    parser.add_argument(
        "--out", type=Path, default=Path("runs/benchmarks"), help="folder for the JSON and PNG"
    )
    parser.add_argument("--tiny", action="store_true", help="random tiny generator (no weights needed)")
    parser.add_argument(
        "--arch",
        choices=("photo2cartoon", "compact"),
        default="photo2cartoon",
        help="the random generator's architecture with --tiny (default: photo2cartoon)",
    )
    parser.add_argument(
        "--camera", action="store_true", help="play the clip at its own rate, as a live camera"
    )
    parser.add_argument("--max-faces", type=int, default=1)
    parser.add_argument("--no-smoothing", action="store_true", help="turn the cartoon EMA off")
    parser.add_argument(
        "--flow",
        choices=[*FLOW_QUALITIES, "none"],
        default="fine",
        help="the cartoon EMA's flow quality (p2c.stream.smoothing.FLOW_QUALITIES, or none; default fine)",
    )
    parser.add_argument("--keep-video", action="store_true", help="keep the encoded output beside the JSON")
    add_engine_arguments(parser)
    return parser


def require_video_libraries() -> None:
    """Raise one clear error when PyAV or MediaPipe is missing (GPU images often lack both)."""
    from p2c.errors import MissingDependencyError

    missing = [name for name in ("av", "mediapipe") if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingDependencyError(
            f"the end-to-end benchmark needs {' and '.join(missing)}: pip install {' '.join(missing)}, "
            "or time the generator alone with benchmarks/generator_throughput.py"
        )


def random_weights(folder: Path, ngf: int = 8, arch: str = "photo2cartoon") -> Path:
    """A random 256 px generator saved as FP32 safetensors (seed 0): speed figures need no trained
    weights. ``ngf`` is photo2cartoon's width; the compact generator has its default config."""
    import torch

    from p2c.models.architectures import build_generator
    from p2c.models.compact import CompactConfig
    from p2c.models.generator import GeneratorConfig
    from p2c.models.weights import save_generator

    torch.manual_seed(0)
    if arch == "photo2cartoon":
        generator, name = build_generator(arch, GeneratorConfig(ngf=ngf, img_size=256)), f"random_ngf{ngf}"
    else:
        generator, name = build_generator(arch, CompactConfig(img_size=256)), f"random_{arch}"
    path = folder / f"{name}.safetensors"
    save_generator(generator.eval(), path, dtype=torch.float32)
    return path


def warm_up(engine: Any, batch_size: int) -> None:
    """One untimed engine call, so lazy initialisation (sessions, kernels) stays out of the figures."""
    import numpy as np

    engine.run(np.zeros((min(batch_size, 4), 3, 256, 256), np.float32))


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
        "cpus": str(os.cpu_count()),
        "gpu": gpu,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "opencv": cv2.__version__,
        "mediapipe": mediapipe.__version__,
        "av": av.__version__,
        "engine": f"{engine.name} on {getattr(engine, 'device', '?')}",
    }


def time_pipeline(
    clip: Path,
    engine: Any,
    video: Path,
    frames: int | None = None,
    max_faces: int = 1,
    batch_size: int = 8,
    smoothing: bool = True,
    camera: bool = False,
    flow: str | None = "fine",
) -> tuple[dict[str, Any], list[float]]:
    """Run ``clip`` through ``cartoonize`` into ``video`` (and the flicker meter); the timings and latencies.

    ``fps`` is the steady rate between the first and the last output frame; ``fps_overall`` counts
    every frame from the first one decoded to the last one written (pipeline fill included), which
    is the fair figure for short runs. Model loading and the engine's warm-up stay outside both.
    """
    import numpy as np

    from p2c.stream.flicker import FlickerMeter
    from p2c.stream.pipeline import VideoConfig, cartoonize
    from p2c.stream.sinks import VideoFileSink
    from p2c.stream.smoothing import STILL_WEIGHT
    from p2c.stream.sources import ClipCameraSource, VideoFileSource

    latencies: list[float] = []
    arrived: list[float] = []
    finished: list[float] = []
    faces_per_frame: list[int] = []

    def record(frame: Any, _stats: Any) -> None:
        now = time.monotonic()
        latencies.append(now - frame.arrived)
        arrived.append(frame.arrived)
        finished.append(now)
        faces_per_frame.append(len(frame.faces))

    source = ClipCameraSource(clip) if camera else VideoFileSource(clip)
    with source:
        info = source.info
        meter = FlickerMeter(info.width, info.height)
        sinks = [VideoFileSink(video, info.width, info.height, info.fps, info.time_base), meter]
        config = VideoConfig(
            max_faces=max_faces,
            batch_size=batch_size,
            cartoon_weight=STILL_WEIGHT if smoothing else 1.0,
            flow=flow,
        )
        started = time.perf_counter()
        stats = cartoonize(source, sinks, engine, config, max_frames=frames, on_frame=record)
        wall = time.perf_counter() - started
    count = max(stats.frames_out, 1)
    report: dict[str, Any] = {
        "clip": str(clip),
        "size": [info.width, info.height],
        "mode": "camera" if camera else "file",
        "batch_size": batch_size,
        "flow": flow,
        "frames": stats.frames_out,
        "dropped": stats.dropped,
        "faces": stats.faces,
        "faces_per_frame": faces_per_frame,
        "detections": stats.detections,
        "wall_s": wall,  # includes loading the face models
        "fps": (len(finished) - 1) / (finished[-1] - finished[0]) if len(finished) > 1 else 0.0,
        "fps_overall": len(finished) / (finished[-1] - min(arrived)) if finished else 0.0,
        "stage_ms_per_frame": {k: 1000 * v / count for k, v in sorted(stats.stage_seconds.items())},
        "latency_ms": {
            "p50": float(np.percentile(latencies, 50) * 1000) if latencies else 0.0,
            "p95": float(np.percentile(latencies, 95) * 1000) if latencies else 0.0,
        },
        "flicker": meter.summary(),
    }
    return report, latencies


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Run the pipeline on ``args.clip``; return the report (also written as JSON and PNG)."""
    from p2c.engine import create_engine, engine_config_from_args

    require_video_libraries()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        weights = random_weights(Path(scratch), arch=args.arch) if args.tiny else args.weights
        engine = create_engine(weights, engine_config_from_args(args))
        try:
            warm_up(engine, args.batch_size)
            video = args.out / "pipeline_fps.mp4" if args.keep_video else Path(scratch) / "out.mp4"
            report, latencies = time_pipeline(
                args.clip,
                engine,
                video,
                frames=args.frames,
                max_faces=args.max_faces,
                batch_size=args.batch_size,
                smoothing=not args.no_smoothing,
                camera=args.camera,
                flow=None if args.flow == "none" else args.flow,
            )
        finally:
            engine.close()
    report["tiny"] = bool(args.tiny)
    report["versions"] = _versions(engine)
    (args.out / "pipeline_fps.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "pipeline_fps.md").write_text(markdown(report))
    _plot(report, latencies, args.out / "pipeline_fps.png")
    return report


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table (one row: this clip on this machine)."""
    flicker, warping = report["flicker"], report["flicker"]["warping_error"]
    stages = ", ".join(f"{name} {ms:.1f}" for name, ms in report["stage_ms_per_frame"].items())
    return (
        f"Clip `{Path(report['clip']).name}` ({report['size'][0]}x{report['size'][1]}, "
        f"{report['frames']} frames, {report['mode']} mode), engine {report['versions']['engine']}"
        f"{' (tiny random generator)' if report.get('tiny') else ''}.\n\n"
        "| fps | p50 / p95 latency (ms) | ms per frame by stage | flicker ratio "
        "| warping error in / out (x1e-3) | warping error ratio |\n"
        "| ---: | ---: | --- | ---: | ---: | ---: |\n"
        f"| {report['fps']:.1f} | {report['latency_ms']['p50']:.0f} / {report['latency_ms']['p95']:.0f} "
        f"| {stages} | {flicker['ratio']:.2f} "
        f"| {1000 * warping['input_error']:.2f} / {1000 * warping['output_error']:.2f} "
        f"| {warping['ratio']:.2f} |\n"
    )


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
    flicker = report["flicker"]
    latency.set_title(
        f"flicker ratio {flicker['ratio']:.2f}, warping error ratio {flicker['warping_error']['ratio']:.2f}"
    )
    latency.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    report = run_benchmark(args)
    print(
        json.dumps({k: report[k] for k in ("fps", "stage_ms_per_frame", "latency_ms", "flicker")}, indent=2)
    )
    print(f"wrote pipeline_fps.json, .md and .png into {args.out}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from p2c.cli import run_command

    return run_command(_main, argv, prog="pipeline_fps")


if __name__ == "__main__":
    sys.exit(main())
