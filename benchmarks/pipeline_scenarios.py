"""End-to-end fps at 720p and 1080p with 1 and 4 faces, beside photo2cartoon's way of doing it.

    python benchmarks/pipeline_scenarios.py [CLIP] [--frames N] [--out DIR] [--tiny | --weights W]

From one real talking-head clip (default: ``../shared/media/talking_1280x720_30fps_audio.mp4``)
it writes four short test clips with PyAV: 1280x720 and 1920x1080, with one face (the clip
resized) and four faces (a 2x2 tiling of the clip scaled to half size: four real talking faces).
Each clip then runs two ways, in the same process and on the same frames:

- **ours**: ``p2c.stream.pipeline.cartoonize`` in file mode, as ``p2c-video`` runs it (threads,
  face tracking, batched engine chosen by the engine options, compositing);
- **reference**, photo2cartoon's way: per frame, detect and align from scratch with
  ``FaceAligner.align`` (no tracking), each face through PyTorch FP32 one at a time (batch 1,
  no compilation), paste back with ``paste_cartoons``; one thread, decode and encode included.

Both engines are warmed up once; face models are loaded before the clock starts. The speed-up
is ours / reference. Writes ``pipeline_scenarios.json``, ``.md`` (a table) and ``.png``.
``--tiny`` uses a random ``ngf=8`` generator (CI); without ``--weights`` a random full-size
generator (ngf 32) stands in: the speed is the same, the pictures are noise.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from generator_throughput import machine_info
from pipeline_fps import random_weights, require_video_libraries, time_pipeline, warm_up
from reporting import benchmark_command, pyplot, save_figure, write_report

__all__ = ["SCENARIOS", "Scenario", "main", "run_scenarios"]

DEFAULT_CLIP = Path(__file__).resolve().parents[2] / "shared" / "media" / "talking_1280x720_30fps_audio.mp4"
NAME = "pipeline_scenarios"
REFERENCE = (
    "photo2cartoon's way: per frame FaceAligner.align from scratch (no tracking), PyTorch FP32 "
    "one face at a time (batch 1, no compilation), paste_cartoons, one thread; decode and encode included"
)


@dataclass(frozen=True)
class Scenario:
    """One test clip: its frame size and how many copies of the source clip it tiles (1 or 2x2)."""

    name: str
    width: int
    height: int
    grid: int  # copies per side: 1 -> one face, 2 -> four faces

    @property
    def faces(self) -> int:
        return self.grid * self.grid


SCENARIOS = (
    Scenario("720p, 1 face", 1280, 720, 1),
    Scenario("720p, 4 faces", 1280, 720, 2),
    Scenario("1080p, 1 face", 1920, 1080, 1),
    Scenario("1080p, 4 faces", 1920, 1080, 2),
)


def _parser() -> argparse.ArgumentParser:
    from p2c.cli import positive_int
    from p2c.engine import add_engine_arguments

    parser = argparse.ArgumentParser(prog=NAME, description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", type=Path, nargs="?", default=DEFAULT_CLIP, help="a real clip with one face")
    parser.add_argument("--frames", type=positive_int, default=8, help="frames per scenario (default 8)")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmarks"), help="folder for the results")
    parser.add_argument("--tiny", action="store_true", help="random tiny generator (ngf 8) for CI")
    add_engine_arguments(parser)
    return parser


# --- test clips -----------------------------------------------------------------------------------


def _tile(image: np.ndarray, scenario: Scenario) -> np.ndarray:
    import cv2

    width, height = scenario.width // scenario.grid, scenario.height // scenario.grid
    tile = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    row = np.concatenate([tile] * scenario.grid, axis=1)
    tiled = np.concatenate([row] * scenario.grid, axis=0)
    if tiled.shape[:2] != (scenario.height, scenario.width):  # odd sizes: stretch the last pixel
        tiled = cv2.resize(tiled, (scenario.width, scenario.height), interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(tiled)


def write_scenario_clip(clip: Path, scenario: Scenario, frames: int, path: Path) -> Path:
    """The first ``frames`` frames of ``clip``, resized or tiled for ``scenario``, as H.264 in ``path``."""
    import av

    from p2c.errors import InvalidInputError

    with av.open(str(clip)) as source, av.open(str(path), mode="w") as target:
        stream = source.streams.video[0]
        rate = stream.average_rate or 30
        video = target.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = scenario.width, scenario.height, "yuv420p"
        video.options = {"crf": "18", "preset": "veryfast"}
        written = 0
        for decoded in source.decode(stream):
            image = _tile(decoded.to_ndarray(format="rgb24"), scenario)
            target.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            written += 1
            if written == frames:
                break
        target.mux(video.encode())  # flush the encoder
    if written == 0:
        raise InvalidInputError(f"clip {clip} has no decodable video frames; pass another clip")
    return path


# --- the reference path ---------------------------------------------------------------------------


def time_reference(clip: Path, engine: Any, aligner: Any, max_faces: int, video: Path) -> dict[str, Any]:
    """photo2cartoon's way, frame by frame on one thread; seconds per stage and per frame."""
    from p2c.engine import batch_to_images, images_to_batch
    from p2c.stream.compositing import paste_cartoons
    from p2c.stream.sinks import VideoFileSink
    from p2c.stream.sources import VideoFileSource

    stages = dict.fromkeys(("decode", "align", "engine", "composite", "encode"), 0.0)
    per_frame: list[float] = []
    faces_per_frame: list[int] = []
    with VideoFileSource(clip) as source:
        info = source.info
        with VideoFileSink(video, info.width, info.height, info.fps, info.time_base) as sink:
            started = time.perf_counter()
            frames = iter(source)
            while True:
                t0 = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                t1 = time.perf_counter()
                faces = aligner.align(frame.image, max_faces=max_faces)
                t2 = time.perf_counter()
                cartoons = [batch_to_images(engine.run(images_to_batch([face.crop])))[0] for face in faces]
                t3 = time.perf_counter()
                if faces:
                    frame.output = paste_cartoons(frame.image, faces, cartoons)
                t4 = time.perf_counter()
                sink.write(frame)
                t5 = time.perf_counter()
                for name, seconds in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                    stages[name] += seconds
                per_frame.append(t5 - t0)
                faces_per_frame.append(len(faces))
            wall = time.perf_counter() - started
    count = max(len(per_frame), 1)
    return {
        "frames": len(per_frame),
        "faces_per_frame": faces_per_frame,
        "fps": len(per_frame) / wall if wall > 0 else 0.0,
        "stage_ms_per_frame": {name: 1000 * seconds / count for name, seconds in stages.items()},
        "latency_ms": {
            "p50": float(np.percentile(per_frame, 50) * 1000) if per_frame else 0.0,
            "p95": float(np.percentile(per_frame, 95) * 1000) if per_frame else 0.0,
        },
    }


# --- the run --------------------------------------------------------------------------------------


def _weights_note(args: argparse.Namespace) -> str:
    if args.tiny:
        return "random tiny generator (ngf 8, seed 0): speed smoke test only"
    if args.weights is None:
        return "random full-size generator (ngf 32, light, 256 px, seed 0): same speed as trained weights"
    return str(args.weights)


def run_scenarios(args: argparse.Namespace) -> dict[str, Any]:
    """Make the four clips, time ours and the reference on each; write JSON, Markdown and PNG."""
    from p2c.engine import EngineConfig, create_engine, engine_config_from_args
    from p2c.errors import InputNotFoundError
    from p2c.stream.faces import AlignerConfig, FaceAligner

    require_video_libraries()
    if not args.clip.is_file():
        raise InputNotFoundError(f"clip {args.clip} not found; pass a video file with a face as CLIP")
    args.out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        weights = (
            random_weights(scratch, ngf=8 if args.tiny else 32)
            if args.tiny or args.weights is None
            else args.weights
        )
        ours = create_engine(weights, engine_config_from_args(args))
        reference = create_engine(
            weights, EngineConfig(backend="torch", precision="fp32", device=args.device, max_batch=1)
        )
        try:
            warm_up(ours, args.batch_size)
            warm_up(reference, 1)
            max_faces = max(s.faces for s in SCENARIOS)
            with FaceAligner(AlignerConfig(max_faces=max_faces)) as aligner:
                for index, scenario in enumerate(SCENARIOS):
                    clip = write_scenario_clip(args.clip, scenario, args.frames, scratch / f"in{index}.mp4")
                    mine, _ = time_pipeline(
                        clip,
                        ours,
                        scratch / f"ours{index}.mp4",
                        max_faces=scenario.faces,
                        batch_size=args.batch_size,
                    )
                    theirs = time_reference(
                        clip, reference, aligner, scenario.faces, scratch / f"ref{index}.mp4"
                    )
                    results.append(_scenario_result(scenario, mine, theirs))
                    print(f"{scenario.name}: {results[-1]['speedup']:.2f}x", file=sys.stderr)
            engines = {"ours": f"{ours.name} {ours.precision} on {getattr(ours, 'device', '?')}"}
            engines["reference"] = (
                f"{reference.name} {reference.precision} on {getattr(reference, 'device', '?')}"
            )
        finally:
            ours.close()
            reference.close()
    report = {
        "machine": _machine(),
        "settings": {
            "clip": str(args.clip),
            "frames": args.frames,
            "weights": _weights_note(args),
            "batch_size": args.batch_size,
            "engines": engines,
            "reference": REFERENCE,
            "fps_ours": "frames / (last frame written - first frame decoded); model loading excluded",
        },
        "scenarios": results,
    }
    write_report(args.out, NAME, report, markdown_table(report), _plot)
    return report


def _machine() -> dict[str, Any]:
    import av
    import cv2
    import mediapipe

    machine: dict[str, Any] = machine_info()  # generator_throughput's: CPU, GPU + driver, versions, load
    machine["versions"].update(
        {"av": av.__version__, "opencv": cv2.__version__, "mediapipe": mediapipe.__version__}
    )
    return machine


def _scenario_result(scenario: Scenario, ours: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    fps_ours, fps_reference = ours["fps_overall"], reference["fps"]
    return {
        "name": scenario.name,
        "size": [scenario.width, scenario.height],
        "faces_in_clip": scenario.faces,
        "fps_ours": fps_ours,
        "fps_reference": fps_reference,
        "speedup": fps_ours / fps_reference if fps_reference > 0 else 0.0,
        "ours": ours,
        "reference": reference,
    }


def markdown_table(report: dict[str, Any]) -> str:
    """The scenarios as a Markdown table (the one in docs/benchmarks.md)."""
    lines = [
        "| scenario | faces found per frame (ours / reference) | fps ours | fps reference | speed-up "
        "| ours ms/frame: tracker / engine / compositor | reference ms/frame: align / engine / paste "
        "| reference latency p50 / p95 (ms) |",
        "| --- | --- | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for row in report["scenarios"]:
        ours, ref = row["ours"], row["reference"]
        stages, ref_stages = ours["stage_ms_per_frame"], ref["stage_ms_per_frame"]
        found = f"{np.mean(ours['faces_per_frame']):.1f} / {np.mean(ref['faces_per_frame']):.1f}"
        lines.append(
            f"| {row['name']} | {found} | {row['fps_ours']:.2f} | {row['fps_reference']:.2f} "
            f"| {row['speedup']:.2f}x "
            f"| {' / '.join(f'{stages.get(name, 0):.0f}' for name in ('tracker', 'engine', 'compositor'))} "
            f"| {ref_stages['align']:.0f} / {ref_stages['engine']:.0f} / {ref_stages['composite']:.0f} "
            f"| {ref['latency_ms']['p50']:.0f} / {ref['latency_ms']['p95']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def _plot(report: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    rows = report["scenarios"]
    x = np.arange(len(rows))
    figure, axes = plt.subplots(figsize=(9, 4))
    axes.bar(x - 0.2, [r["fps_reference"] for r in rows], 0.4, label="reference (photo2cartoon's way)")
    axes.bar(
        x + 0.2, [r["fps_ours"] for r in rows], 0.4, label=f"ours ({report['settings']['engines']['ours']})"
    )
    for i, row in enumerate(rows):
        axes.annotate(f"{row['speedup']:.1f}x", (i + 0.2, row["fps_ours"]), ha="center", va="bottom")
    axes.set_xticks(x, [r["name"] for r in rows])
    axes.set_ylabel("frames per second, end to end")
    gpu = report["machine"].get("gpu") or {}
    axes.set_title(f"{gpu.get('name') or report['machine']['cpu']}, {report['settings']['frames']} frames")
    axes.legend()
    save_figure(figure, path)


main = benchmark_command(NAME, _parser, run_scenarios, markdown_table)


if __name__ == "__main__":
    sys.exit(main())
