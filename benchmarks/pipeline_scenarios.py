"""The live and file scenarios of the CPU target, three ways in one run: compact, full, photo2cartoon's.

    python benchmarks/pipeline_scenarios.py [CLIP] [--frames N] [--out DIR] [--tiny]
                                             [--runs NAME ...] [--paths NAME ...] [engine options]

From one real talking-head clip (default: ``../shared/media/talking_1280x720_30fps_audio.mp4``)
it writes test clips with PyAV: 1280x720 with one face (the clip) or four (a 2x2 tiling at half
size: four real talking faces), and 1920x1080 for the extra runs. The runs (``--runs``; the
default is the issue's three, with their targets on a 2-core CPU):

- ``live 720p, 1 face``: the clip played as a 30 fps camera (``p2c-stream --camera clip.mp4
  --null``: :class:`p2c.stream.sources.ClipCameraSource`, looped, into the null sink); target
  >= 24 fps delivered, p95 capture-to-output latency <= 80 ms;
- ``file 720p, 1 face``: every frame, H.264 out (``p2c-video``); target >= 15 fps;
- ``live 720p, 4 faces``: as the first with four faces; target >= 12 fps;
- extra: ``file 720p, 4 faces``, ``file 1080p, 1 face``, ``file 1080p, 4 faces``.

Each run goes three ways (``--paths``), in the same process, on the same clip:

- ``compact``: p2c's pipeline (``p2c.stream.pipeline.cartoonize``: threads, tracking, adaptive live
  policy) with the compact generator (random weights, seed 0, until the default model ships;
  ``--weights W`` times that model on this path instead);
- ``full``: the same pipeline with photo2cartoon's full generator (ngf 32, random weights);
- ``reference``: photo2cartoon's way with the full generator: per frame, detect and align from
  scratch (``FaceAligner.align``, no tracking), each face through PyTorch FP32 one at a time,
  ``paste_cartoons``, one thread; live, it takes the newest camera frame each time it is free.

Per run: delivered fps (frames out over the time from the first frame captured or decoded to the
last written), latency from capture to output (p50 / p95 / max; live only: in file mode it is
queue depth), frames in / out / dropped, what the adaptive policy lowered, and the profile: CPU
milliseconds per frame and cores used, per stage, from every thread's CPU time
(``thread_cpu.ThreadCpuSampler``: MediaPipe's graph threads count to the tracker, the engine's pool
to the engine, the encoder's threads to the sink), beside each stage's wall milliseconds per frame.
Engines are built and warmed up, face models loaded, before any clock starts.

Writes ``pipeline_scenarios.json`` (machine, versions, load average before and after each run,
every figure), ``.md`` (the tables) and ``.png``. ``--tiny``: tiny random generators (CI).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from generator_throughput import machine_info
from pipeline_fps import random_weights, require_video_libraries
from reporting import benchmark_command, pyplot, save_figure, write_report
from thread_cpu import ThreadCpuSampler, os_thread_name

__all__ = ["PATHS", "RUNS", "SCENARIOS", "Run", "Scenario", "main", "run_scenarios"]

DEFAULT_CLIP = Path(__file__).resolve().parents[2] / "shared" / "media" / "talking_1280x720_30fps_audio.mp4"
NAME = "pipeline_scenarios"
REFERENCE = (
    "photo2cartoon's way: per frame FaceAligner.align from scratch (no tracking), PyTorch FP32 "
    "one face at a time (batch 1, no compilation), paste_cartoons, one thread; decode and encode "
    "included; live, the newest camera frame each time it is free"
)
PATHS = ("compact", "full", "reference")
CAMERA_FPS = 30.0
STAGES = ("source", "tracker", "engine", "compositor", "sink")


@dataclass(frozen=True)
class Scenario:
    """A test clip: its frame size and how many copies of the source clip it tiles (1 or 2x2)."""

    name: str
    width: int
    height: int
    grid: int  # copies per side: 1 -> one face, 2 -> four faces

    @property
    def faces(self) -> int:
        return self.grid * self.grid


# The clips (also what benchmarks/pipeline_replay.py replays).
SCENARIOS = (
    Scenario("720p, 1 face", 1280, 720, 1),
    Scenario("720p, 4 faces", 1280, 720, 2),
    Scenario("1080p, 1 face", 1920, 1080, 1),
    Scenario("1080p, 4 faces", 1920, 1080, 2),
)


@dataclass(frozen=True)
class Run:
    """A clip played live (as a 30 fps camera, into the null sink) or as a file (every frame, H.264),
    with the issue's target for the compact generator on a 2-core CPU (``None``: no target)."""

    mode: str  # "live" or "file"
    scenario: Scenario
    target_fps: float | None = None
    target_p95_ms: float | None = None

    @property
    def name(self) -> str:
        return f"{self.mode} {self.scenario.name}"


RUNS = (
    Run("live", SCENARIOS[0], target_fps=24.0, target_p95_ms=80.0),
    Run("file", SCENARIOS[0], target_fps=15.0),
    Run("live", SCENARIOS[1], target_fps=12.0),
    Run("file", SCENARIOS[1]),
    Run("file", SCENARIOS[2]),
    Run("file", SCENARIOS[3]),
)
DEFAULT_RUNS = tuple(run.name for run in RUNS[:3])


def _parser() -> argparse.ArgumentParser:
    from p2c.cli import positive_int
    from p2c.engine import add_engine_arguments

    parser = argparse.ArgumentParser(prog=NAME, description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", type=Path, nargs="?", default=DEFAULT_CLIP, help="a real clip with one face")
    parser.add_argument(
        "--frames", type=positive_int, default=300, help="frames per run (live: at 30 fps; default 300)"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/benchmarks"), help="folder for the results")
    parser.add_argument("--tiny", action="store_true", help="tiny random generators (CI)")
    parser.add_argument(
        "--runs",
        nargs="+",
        default=list(DEFAULT_RUNS),
        choices=[run.name for run in RUNS],
        metavar="RUN",
        help=f"which runs (default: {', '.join(repr(n) for n in DEFAULT_RUNS)}); also "
        + ", ".join(repr(run.name) for run in RUNS[3:]),
    )
    parser.add_argument(
        "--paths", nargs="+", default=list(PATHS), choices=PATHS, help="which ways (default all)"
    )
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
    """``frames`` frames of ``clip`` (replayed from the start, back and forth, if it is shorter),
    resized or tiled for ``scenario``, as 30 fps H.264 in ``path``."""
    import av

    from p2c.errors import InvalidInputError

    with av.open(str(clip)) as source:
        images = [_tile(decoded.to_ndarray(format="rgb24"), scenario) for decoded in source.decode(video=0)]
    if not images:
        raise InvalidInputError(f"clip {clip} has no decodable video frames; pass another clip")
    order = images + images[-2:0:-1]  # forth and back: no jump where the clip restarts
    with av.open(str(path), mode="w") as target:
        video = target.add_stream("libx264", rate=int(CAMERA_FPS))
        video.width, video.height, video.pix_fmt = scenario.width, scenario.height, "yuv420p"
        video.options = {"crf": "18", "preset": "veryfast"}
        for index in range(frames):
            target.mux(video.encode(av.VideoFrame.from_ndarray(order[index % len(order)], format="rgb24")))
        target.mux(video.encode())  # flush the encoder
    return path


# --- measuring ------------------------------------------------------------------------------------


class _Marked:
    """A source that marks the profile's start when its first frame comes (after warm-up)."""

    def __init__(self, source: Any, sampler: ThreadCpuSampler, clock: dict[str, float]) -> None:
        self.source, self.sampler, self.clock = source, sampler, clock

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)

    def __enter__(self) -> _Marked:
        self.source.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.source.__exit__(*exc)

    def __iter__(self) -> Iterator[Any]:
        for index, frame in enumerate(self.source):
            if index == 0:
                self.sampler.mark()
                self.clock["cpu"] = _process_cpu()
                self.clock["wall"] = time.perf_counter()
            yield frame


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# Live latency is also given past start-up: frames captured from this long after the first one.
# The first frame's detection (60-70 ms at 720p here) and the queue behind it fill about 10
# frames, 3 % of a 300-frame run, which is what a call's first second costs, not its steady state.
STEADY_AFTER_S = 1.0


def _latencies(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "max": 0.0}
    ms = np.asarray(values) * 1000.0
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)), "max": float(ms.max())}


def _steady_latencies(values: list[float], arrived: list[float]) -> dict[str, float] | None:
    """:func:`_latencies` of the frames captured ``STEADY_AFTER_S`` or more after the first;
    ``None`` when the run was shorter."""
    if not arrived:
        return None
    start = min(arrived) + STEADY_AFTER_S
    steady = [value for value, when in zip(values, arrived, strict=True) if when >= start]
    return _latencies(steady) if steady else None


def _source(run: Run, clip: Path) -> Any:
    from p2c.stream.sources import ClipCameraSource, VideoFileSource

    return ClipCameraSource(clip, loop=True, fps=CAMERA_FPS) if run.mode == "live" else VideoFileSource(clip)


def _sinks(run: Run, info: Any, video: Path) -> list[Any]:
    from p2c.stream.sinks import NullSink, VideoFileSink

    if run.mode == "live":
        return [NullSink(info.width, info.height)]
    return [VideoFileSink(video, info.width, info.height, info.fps, info.time_base)]


def time_ours(run: Run, clip: Path, engine: Any, frames: int, batch_size: int, video: Path) -> dict[str, Any]:
    """p2c's pipeline on ``clip`` as ``p2c-stream --null`` (live) or ``p2c-video`` (file) runs it."""
    from p2c.stream.pipeline import VideoConfig, cartoonize

    latencies: list[float] = []
    arrived: list[float] = []
    finished: list[float] = []
    faces: list[int] = []
    clock: dict[str, float] = {}

    def record(frame: Any, _stats: Any) -> None:
        now = time.monotonic()
        latencies.append(now - frame.arrived)
        arrived.append(frame.arrived)
        finished.append(time.perf_counter())
        faces.append(len(frame.faces))

    load_before = list(os.getloadavg())
    with ThreadCpuSampler() as sampler, os_thread_name("p2c-sink"):
        source = _Marked(_source(run, clip), sampler, clock)
        with source:
            config = VideoConfig(max_faces=run.scenario.faces, batch_size=batch_size)
            stats = cartoonize(
                source, _sinks(run, source.info, video), engine, config, max_frames=frames, on_frame=record
            )
    cpu = _process_cpu() - clock.get("cpu", _process_cpu())
    wall = (finished[-1] - clock["wall"]) if finished and "wall" in clock else 0.0
    out = max(stats.frames_out, 1)
    stages = stats.stage_ms_per_frame()
    profile = sampler.stage_cpu(out)
    return {
        "frames": {"in": stats.frames_in, "out": stats.frames_out, "dropped": stats.dropped},
        "faces_per_frame": faces,
        "fps": stats.frames_out / wall if wall > 0 else 0.0,
        "latency_ms": _latencies(latencies),
        "latency_ms_steady": _steady_latencies(latencies, arrived),
        "cpu_ms_per_frame": 1000.0 * cpu / out,
        "cores": cpu / wall if wall > 0 else 0.0,
        "stages": {
            name: {
                "wall_ms_per_frame": stages.get(name, {}).get("wall_ms_per_frame", 0.0),
                "own_thread_cpu_ms_per_frame": stages.get(name, {}).get("cpu_ms_per_frame", 0.0),
                "frames": stages.get(name, {}).get("frames", 0),
                **profile.get(name, {"cpu_ms_per_frame": 0.0, "cores": 0.0}),
            }
            for name in STAGES
        },
        "other_threads": profile.get("other", {"cpu_ms_per_frame": 0.0, "cores": 0.0}),
        "detections": stats.detections,
        "segmentations": stats.segmentations,
        "policy": {"level": stats.policy_level, "lowered": stats.policy, "changes": stats.adaptations},
        "load_average": {"before": load_before, "after": list(os.getloadavg())},
    }


def _newest_frames(source: Any, frames: int, stop: threading.Event, counted: dict[str, int]) -> Iterator[Any]:
    """Live: a reader thread keeps only the newest camera frame; yield it each time one is asked for."""
    from p2c.stream.queues import Closed, FrameQueue

    inbox: FrameQueue[Any] = FrameQueue(1, "drop_oldest")

    def read() -> None:
        try:
            for frame in source:
                # The camera's frames so far: those read, and those it let go (read too late).
                if stop.is_set() or counted["in"] + getattr(source, "skipped", 0) >= frames:
                    break
                counted["in"] += 1
                inbox.put(frame, stop)
        finally:
            inbox.close()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while True:
            try:
                yield inbox.get(cancel=stop)
            except Closed:
                return
    finally:
        stop.set()
        reader.join()


def _every_frame(source: Any, frames: int, counted: dict[str, int]) -> Iterator[Any]:
    """File: decode in this thread, one frame after the other, as photo2cartoon's loop does."""
    for frame in source:
        if counted["in"] >= frames:
            return
        counted["in"] += 1
        yield frame


def time_reference(
    run: Run, clip: Path, engine: Any, aligner: Any, frames: int, video: Path
) -> dict[str, Any]:
    """photo2cartoon's way, frame by frame on one thread (live: a reader keeps the newest frame)."""
    from p2c.engine import batch_to_images, images_to_batch
    from p2c.stream.compositing import paste_cartoons

    stages = dict.fromkeys(("decode", "align", "engine", "composite", "encode"), 0.0)
    latencies: list[float] = []
    arrived: list[float] = []
    faces_per_frame: list[int] = []
    counted = {"in": 0}
    load_before = list(os.getloadavg())
    source = _source(run, clip)
    with source:
        (sink,) = _sinks(run, source.info, video)
        with sink:
            stop = threading.Event()
            cpu0, wall0 = _process_cpu(), time.perf_counter()
            feed = (
                _newest_frames(source, frames, stop, counted)
                if run.mode == "live"
                else _every_frame(source, frames, counted)
            )
            while True:
                t0 = time.perf_counter()
                frame = next(feed, None)
                if frame is None:
                    break
                t1 = time.perf_counter()
                faces = aligner.align(frame.image, max_faces=run.scenario.faces)
                t2 = time.perf_counter()
                cartoons = [batch_to_images(engine.run(images_to_batch([face.crop])))[0] for face in faces]
                t3 = time.perf_counter()
                if faces:
                    frame.output = paste_cartoons(frame.image, faces, cartoons)
                t4 = time.perf_counter()
                sink.write(frame)
                t5 = time.perf_counter()
                latencies.append(time.monotonic() - frame.arrived)
                arrived.append(frame.arrived)
                for name, seconds in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                    stages[name] += seconds
                faces_per_frame.append(len(faces))
            wall, cpu = time.perf_counter() - wall0, _process_cpu() - cpu0
    out = max(len(latencies), 1)
    taken = min(counted["in"] + getattr(source, "skipped", 0), frames)  # live: camera frames, shown or not
    return {
        "frames": {
            "in": taken,
            "out": len(latencies),
            "dropped": taken - len(latencies),
        },
        "faces_per_frame": faces_per_frame,
        "fps": len(latencies) / wall if wall > 0 else 0.0,
        "latency_ms": _latencies(latencies),
        "latency_ms_steady": _steady_latencies(latencies, arrived),
        "cpu_ms_per_frame": 1000.0 * cpu / out,
        "cores": cpu / wall if wall > 0 else 0.0,
        "stage_ms_per_frame": {name: 1000 * seconds / out for name, seconds in stages.items()},
        "load_average": {"before": load_before, "after": list(os.getloadavg())},
    }


# --- the run --------------------------------------------------------------------------------------


def _weights(scratch: Path, tiny: bool, path: str) -> Path:
    """Random generators: the compact one (tiny: widths 4/8/8, one block) and photo2cartoon's full
    one (tiny: ngf 8), seed 0."""
    if path == "compact" and tiny:
        import torch

        from p2c.models.compact import CompactConfig, CompactGenerator
        from p2c.models.weights import save_generator

        torch.manual_seed(0)
        target = scratch / "compact_tiny.safetensors"
        save_generator(
            CompactGenerator(CompactConfig(widths=(4, 8, 8), blocks=1)).eval(), target, dtype=torch.float32
        )
        return target
    if path == "compact":
        return random_weights(scratch, arch="compact")
    return random_weights(scratch, ngf=8 if tiny else 32)


def _engines(args: argparse.Namespace, scratch: Path, live_one_face: bool = False) -> dict[str, Any]:
    """One engine per path; ``live_one_face``: as ``p2c-stream`` opens it for one face live
    (:func:`p2c.stream.threads.engine_threads`), for p2c's paths."""
    from p2c.engine import EngineConfig, create_engine, engine_config_from_args
    from p2c.stream.threads import engine_config_for_run

    engines: dict[str, Any] = {}
    for path in args.paths:
        if path == "compact" and args.weights is not None:
            weights = args.weights  # a trained compact model (the default model, once it ships)
        else:
            weights = _weights(scratch, args.tiny, "compact" if path == "compact" else "full")
        if path == "reference":
            config = EngineConfig(backend="torch", precision="fp32", device=args.device, max_batch=1)
        else:
            config = engine_config_for_run(engine_config_from_args(args), live_one_face, 1)
        with os_thread_name("p2c-engine"):  # its pool threads take the name: the engine's CPU time
            engines[path] = create_engine(weights, config)
            engines[path].run(np.zeros((1, 3, 256, 256), np.float32))  # warm up
    return engines


def run_scenarios(args: argparse.Namespace) -> dict[str, Any]:
    """Make the clips, time every path on every run; write JSON, Markdown and PNG."""
    from p2c.errors import InputNotFoundError
    from p2c.stream.faces import AlignerConfig, FaceAligner

    require_video_libraries()
    if not args.clip.is_file():
        raise InputNotFoundError(f"clip {args.clip} not found; pass a video file with a face as CLIP")
    args.out.mkdir(parents=True, exist_ok=True)
    machine = _machine()  # now: its load average is the one the runs start under
    runs = [run for run in RUNS if run.name in args.runs]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        engines = _engines(args, scratch)
        if any(run.mode == "live" and run.scenario.faces == 1 for run in runs):
            live_one_face = _engines(args, scratch, live_one_face=True)
            if "reference" in engines:  # photo2cartoon's way is the same whatever the run
                live_one_face["reference"] = engines["reference"]
        else:
            live_one_face = engines
        try:
            names = {path: f"{e.name} {e.precision} on {e.device}" for path, e in engines.items()}
            clips: dict[Scenario, Path] = {}
            with FaceAligner(AlignerConfig(max_faces=4)) as aligner:
                aligner.align(np.zeros((64, 64, 3), np.uint8))  # load its models before any clock
                for index, run in enumerate(runs):
                    if run.scenario not in clips:
                        clips[run.scenario] = write_scenario_clip(
                            args.clip, run.scenario, args.frames, scratch / f"in{len(clips)}.mp4"
                        )
                    clip = clips[run.scenario]
                    row: dict[str, Any] = {
                        "name": run.name,
                        "mode": run.mode,
                        "size": [run.scenario.width, run.scenario.height],
                    }
                    row.update(
                        faces_in_clip=run.scenario.faces,
                        target_fps=run.target_fps,
                        target_p95_ms=run.target_p95_ms,
                    )
                    chosen = live_one_face if run.mode == "live" and run.scenario.faces == 1 else engines
                    for path, engine in chosen.items():
                        video = scratch / f"out{index}_{path}.mp4"
                        row[path] = (
                            time_reference(run, clip, engine, aligner, args.frames, video)
                            if path == "reference"
                            else time_ours(run, clip, engine, args.frames, args.batch_size, video)
                        )
                        print(f"{run.name}, {path}: {row[path]['fps']:.2f} fps", file=sys.stderr)
                    row["targets_met"] = _targets_met(run, row.get("compact"))
                    results.append(row)
        finally:
            for engine in {id(e): e for e in [*engines.values(), *live_one_face.values()]}.values():
                engine.close()
    report = {
        "machine": machine,
        "settings": {
            "clip": str(args.clip),
            "frames": args.frames,
            "camera_fps": CAMERA_FPS,
            "weights": _weights_note(args),
            "batch_size": args.batch_size,
            "engines": names,
            "engine_threads": "onnxruntime threads as p2c-stream and p2c-video choose them: the "
            "engine's own (1 for the compact generator) except live with one face "
            "(p2c.stream.threads.engine_threads: 2)",
            "reference": REFERENCE,
            "fps": "frames out / (last frame out - first frame captured or decoded); models loaded before",
            "profile": "CPU ms per frame out and cores, per stage, from every thread's CPU time "
            "(thread_cpu.py)",
        },
        "runs": results,
    }
    write_report(args.out, NAME, report, markdown_table(report), _plot)
    return report


def _targets_met(run: Run, result: dict[str, Any] | None) -> bool | None:
    if result is None or run.target_fps is None:
        return None
    met = result["fps"] >= run.target_fps
    if run.target_p95_ms is not None:  # past start-up (STEADY_AFTER_S); the whole run is reported beside
        latency = result.get("latency_ms_steady") or result["latency_ms"]  # a short run: all of it
        met = met and latency["p95"] <= run.target_p95_ms
    return bool(met)


def _weights_note(args: argparse.Namespace) -> str:
    if args.weights is not None:
        return f"compact path: {args.weights}; full generator: random (ngf 32, seed 0)"
    if args.tiny:
        return (
            "random tiny generators (compact widths 4/8/8, one block; photo2cartoon ngf 8; seed 0): "
            "smoke test only"
        )
    return (
        "random generators, seed 0: compact (1.1 GFLOP) and photo2cartoon's full one (ngf 32, light, "
        "256 px): same speed as trained weights, the pictures are noise"
    )


def _machine() -> dict[str, Any]:
    import av
    import cv2
    import mediapipe

    machine: dict[str, Any] = machine_info()  # generator_throughput's: CPU, GPU + driver, versions, load
    machine["versions"].update(
        {"av": av.__version__, "opencv": cv2.__version__, "mediapipe": mediapipe.__version__}
    )
    return machine


# --- tables and plot ------------------------------------------------------------------------------


def _fps_cell(result: dict[str, Any] | None) -> str:
    return "-" if result is None else f"{result['fps']:.1f}"


def markdown_table(report: dict[str, Any]) -> str:
    """The runs (targets first), then the per-stage profile of p2c's paths (docs/benchmarks.md)."""
    paths = [path for path in PATHS if any(path in row for row in report["runs"])]
    lines = [
        "| run | target (compact) | "
        + " | ".join(f"fps {path}" for path in paths)
        + " | compact: p50 / p95 / max latency (ms) | compact: p95 after 1 s | compact: dropped / in "
        "| compact: CPU ms/frame, cores | met |",
        "| --- | --- | " + " | ".join("---:" for _ in paths) + " | --- | ---: | --- | --- | --- |",
    ]
    for row in report["runs"]:
        compact = row.get("compact")
        target = "-" if row["target_fps"] is None else f">= {row['target_fps']:g} fps"
        if row["target_p95_ms"] is not None:
            target += f", p95 <= {row['target_p95_ms']:g} ms"
        if compact is None:
            latency = steady = dropped = cpu = "-"
        else:
            lat, frames = compact["latency_ms"], compact["frames"]
            live = row["mode"] == "live"
            latency = f"{lat['p50']:.0f} / {lat['p95']:.0f} / {lat['max']:.0f}" if live else "-"
            after = compact.get("latency_ms_steady")
            steady = f"{after['p95']:.0f}" if live and after else "-"
            dropped = f"{frames['dropped']} / {frames['in']}"
            cpu = f"{compact['cpu_ms_per_frame']:.0f}, {compact['cores']:.2f}"
        met = {True: "yes", False: "**no**", None: "-"}[row["targets_met"]]
        cells = " | ".join(_fps_cell(row.get(path)) for path in paths)
        lines.append(
            f"| {row['name']} | {target} | {cells} | {latency} | {steady} | {dropped} | {cpu} | {met} |"
        )
    lines += [
        "",
        "Profile of p2c's pipeline: per stage, CPU ms per frame out from every thread (the stage's own, "
        "MediaPipe's, the engine pool's, the codec's) / wall ms per frame of the stage's calls / cores",
        "",
        "| run | path | " + " | ".join(STAGES) + " | other threads | policy at the end |",
        "| --- | --- | " + " | ".join("---" for _ in STAGES) + " | --- | --- |",
    ]
    for row in report["runs"]:
        for path in ("compact", "full"):
            result = row.get(path)
            if result is None:
                continue
            cells = " | ".join(
                f"{s['cpu_ms_per_frame']:.1f} / {s['wall_ms_per_frame']:.1f} / {s['cores']:.2f}"
                for s in (result["stages"][name] for name in STAGES)
            )
            policy = result["policy"]["lowered"] or "-"
            other = result["other_threads"]["cpu_ms_per_frame"]
            lines.append(f"| {row['name']} | {path} | {cells} | {other:.1f} | {policy} |")
    return "\n".join(lines) + "\n"


def _plot(report: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    rows = report["runs"]
    paths = [p for p in PATHS if any(p in row for row in rows)]
    x = np.arange(len(rows))
    width = 0.8 / max(len(paths), 1)
    figure, (speed, profile) = plt.subplots(1, 2, figsize=(13, 4.5))
    for i, name in enumerate(paths):
        fps = [row[name]["fps"] if name in row else 0.0 for row in rows]
        speed.bar(x + (i - (len(paths) - 1) / 2) * width, fps, width, label=name)
    for i, row in enumerate(rows):
        if row["target_fps"] is not None:
            speed.hlines(row["target_fps"], i - 0.45, i + 0.45, colors="k", linestyles="--")
    speed.set_xticks(x, [row["name"] for row in rows], rotation=10)
    speed.set_ylabel("frames per second delivered (dashed: target)")
    speed.set_title(str(report["machine"].get("cpu")))
    speed.legend()
    bottom = np.zeros(len(rows))
    for stage in (*STAGES, "other"):
        values = np.array(
            [
                (row["compact"]["other_threads"] if stage == "other" else row["compact"]["stages"][stage])[
                    "cpu_ms_per_frame"
                ]
                if "compact" in row
                else 0.0
                for row in rows
            ]
        )
        profile.bar(x, values, 0.6, bottom=bottom, label=stage)
        bottom += values
    profile.set_xticks(x, [row["name"] for row in rows], rotation=10)
    profile.set_ylabel("CPU ms per frame, compact path")
    profile.legend(fontsize=8)
    save_figure(figure, path)


main = benchmark_command(NAME, _parser, run_scenarios, markdown_table)


if __name__ == "__main__":
    sys.exit(main())
