"""The live and file scenarios of the CPU targets (issues 19 and 25), and what each costs per stage.

    python benchmarks/pipeline_scenarios.py [CLIP] [--close-clip CLIP] [--frames N] [--out DIR]
                                             [--runs NAME ...] [--paths NAME ...] [--tiny] [engine options]

The test clips are made at run time (:mod:`scenario_clips`) from the shared 1280x720 talking head
(``CLIP``; its face is small) and the 512x512 close-up (``--close-clip``): 720p and 1080p with one
face, 720p with four, the close-up scaled to 560 pixels high on a 720p canvas (the large face),
the face-size sweep (the close-up at 180 to 720 pixels) and 1080p as MJPEG (what a 1080p webcam
delivers). A run plays a clip one of three ways (``--runs``; the default is every row of issue
25's table, the sweep and the cost runs):

- ``live``: as a 30 fps camera (``p2c-stream --camera clip --null``:
  :class:`p2c.stream.sources.ClipCameraSource`, looped, into the null sink), at the adaptive
  policy's default level unless the machine falls behind (the run says how often it stepped);
- ``file``: every frame, H.264 out (``p2c-video``);
- ``cost``: the live path's work (segmentation every 2nd frame, balanced flow, the live engine
  threads, one frame per engine call) on every frame, unpaced, the policy off: the CPU each
  stage spends on a frame, measured the same whatever the machine's load does to the live
  runs' drops and policy levels. This is what each cut of issue 25 was measured by.

Each run goes up to three ways (``--paths``, default ``compact``): ``compact``, p2c's pipeline
with the compact generator (random weights, seed 0; ``--weights W`` for a trained one);
``full``, the same pipeline with photo2cartoon's full generator (ngf 32, random weights); and
``reference``, photo2cartoon's way (per frame detect and align from scratch, PyTorch FP32 one
face at a time, ``paste_cartoons``, one thread; live, the newest camera frame each time it is
free; not for cost runs).

Per run: delivered fps (frames out over the time from the first frame captured or decoded to the
last written); latency from capture to output, p50 / p95 / max, and past the first second; how
the latency splits into work in the stages and waiting in the queues (:mod:`latency_split`: over
the run, at the tail at or above the p95, and per stage); frames in / out / dropped; what the
adaptive policy lowered, how often it changed level and how many frames went out at each level;
the faces' size (pixels from brows to chin); and the profile: per stage, CPU milliseconds per
frame out and cores used, from every thread's CPU time (``thread_cpu.ThreadCpuSampler``:
MediaPipe's graph threads count to the tracker, the engine's pool to the engine, the decoder's
threads to the source, the encoder's to the sink), beside each stage's wall milliseconds per
frame. Engines are built and warmed up, face models loaded, before any clock starts.

With the MJPEG scenario it also times decoding its frames to RGB three ways (:mod:`jpeg_decoding`:
FFmpeg, as p2c reads a webcam's MJPEG; OpenCV to BGR and a conversion, as OpenCV's capture does;
OpenCV straight to RGB). Writes ``pipeline_scenarios.json`` (machine, versions, load average
before and after each run, every figure), ``.md`` (the tables) and ``.png``
(:mod:`scenario_report`). ``--tiny``: tiny random generators (CI). ``--clip-cache DIR`` keeps
the clips made and reuses them.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from generator_throughput import machine_info
from jpeg_decoding import time_jpeg_decoding
from latency_split import (
    STEADY_AFTER_S,
    FrameTiming,
    frame_timing,
    latency_split,
    percentiles,
    steady_percentiles,
)
from pipeline_fps import random_weights, require_video_libraries
from reference_path import time_reference
from reporting import benchmark_command, write_report
from scenario_clips import (
    CAMERA_FPS,
    CLOSE_CLIP,
    CLOSE_UPS,
    LARGE_FACE,
    MJPEG_1080P,
    SCENARIOS,
    WIDE_CLIP,
    Scenario,
    write_scenario_clip,
)
from scenario_report import PATHS, STAGES, markdown_table, plot
from thread_cpu import ThreadCpuSampler, os_thread_name, process_cpu

__all__ = ["MODES", "PATHS", "RUNS", "SCENARIOS", "Run", "Scenario", "main", "run_scenarios"]

DEFAULT_CLIP = WIDE_CLIP
NAME = "pipeline_scenarios"
REFERENCE = (
    "photo2cartoon's way: per frame FaceAligner.align from scratch (no tracking), PyTorch FP32 "
    "one face at a time (batch 1, no compilation), paste_cartoons, one thread; decode and encode "
    "included; live, the newest camera frame each time it is free"
)
MODES = ("live", "file", "cost")
_COST_FRAMES = 300  # a cost run's default frames (at most --frames)


@dataclass(frozen=True)
class Run:
    """A clip played one way (``mode``: live, file or cost), with issue 25's targets for the
    compact generator on a 2-core CPU (``None``: no target): delivered fps, p95 latency past
    start-up, and the share of camera frames dropped."""

    mode: str
    scenario: Scenario
    target_fps: float | None = None
    target_p95_ms: float | None = None
    target_dropped: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"Run.mode must be one of {MODES}, got {self.mode!r}")

    @property
    def name(self) -> str:
        return f"{self.mode} {self.scenario.name}"


SMALL, FOUR, FULL_HD, FULL_HD_FOUR = SCENARIOS
# Issue 25's table first (a 1080p webcam's MJPEG beside the H.264 1080p row, same target), then
# the face-size sweep live, then what each frame costs per stage, then extra runs.
TABLE = (
    Run("live", SMALL, target_fps=29.0, target_p95_ms=66.0),
    Run("live", LARGE_FACE, target_fps=28.0, target_p95_ms=80.0),
    Run("live", FULL_HD, target_fps=24.0, target_p95_ms=100.0),
    Run("live", MJPEG_1080P, target_fps=24.0, target_p95_ms=100.0),
    Run("live", FOUR, target_fps=15.0, target_p95_ms=150.0, target_dropped=0.25),
    Run("file", SMALL, target_fps=20.0),
    Run("file", LARGE_FACE, target_fps=20.0),
)
SWEEP = tuple(Run("live", scenario) for scenario in CLOSE_UPS if scenario != LARGE_FACE)
COSTS = tuple(Run("cost", scenario) for scenario in (SMALL, *CLOSE_UPS, FULL_HD, MJPEG_1080P, FOUR))
EXTRA = (Run("file", FOUR), Run("file", FULL_HD), Run("file", FULL_HD_FOUR))
RUNS = (*TABLE, *SWEEP, *COSTS, *EXTRA)
DEFAULT_RUNS = tuple(run.name for run in (*TABLE, *SWEEP, *COSTS))


def _parser() -> argparse.ArgumentParser:
    from p2c.cli import positive_int
    from p2c.engine import add_engine_arguments

    parser = argparse.ArgumentParser(prog=NAME, description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", type=Path, nargs="?", default=DEFAULT_CLIP, help="a real clip with one face")
    parser.add_argument(
        "--close-clip",
        type=Path,
        default=CLOSE_CLIP,
        help="a real close-up clip with one face, for the large face and the sweep (default: the "
        "shared 512x512 one)",
    )
    parser.add_argument(
        "--frames", type=positive_int, default=300, help="frames per run (live: at 30 fps; default 300)"
    )
    parser.add_argument(
        "--cost-frames",
        type=positive_int,
        default=None,
        help="frames per cost run (default: --frames, at most 300: its figures are means, steady sooner)",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/benchmarks"), help="folder for the results")
    parser.add_argument("--tiny", action="store_true", help="tiny random generators (CI)")
    parser.add_argument(
        "--clip-cache",
        type=Path,
        default=None,
        help="keep the test clips made in this folder and reuse them (default: made afresh each run)",
    )
    parser.add_argument(
        "--runs",
        nargs="+",
        default=list(DEFAULT_RUNS),
        choices=[run.name for run in RUNS],
        metavar="RUN",
        help="which runs (default: issue 25's table, the face-size sweep and the cost runs); also "
        + ", ".join(repr(run.name) for run in EXTRA),
    )
    parser.add_argument(
        "--paths", nargs="+", default=["compact"], choices=PATHS, help="which ways (default: compact)"
    )
    add_engine_arguments(parser)
    return parser


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
                self.clock["cpu"] = process_cpu()
                self.clock["wall"] = time.perf_counter()
            yield frame


# The latency past start-up (kept here by name: tests and older notes import it from here).
_steady_latencies = steady_percentiles
_latencies = percentiles


def _steady_split(timings: list[FrameTiming], arrived: list[float]) -> dict[str, Any]:
    """:func:`latency_split.latency_split` past start-up (all frames when the run was shorter)."""
    start = min(arrived, default=0.0) + STEADY_AFTER_S
    steady = [timing for timing, when in zip(timings, arrived, strict=True) if when >= start]
    split = latency_split(steady or timings)
    split["past_start_up"] = bool(steady)
    return split


def _source(run: Run, clip: Path) -> Any:
    from p2c.stream.sources import ClipCameraSource, VideoFileSource

    return ClipCameraSource(clip, loop=True, fps=CAMERA_FPS) if run.mode == "live" else VideoFileSource(clip)


def _sinks(run: Run, info: Any, video: Path) -> list[Any]:
    from p2c.stream.sinks import NullSink, VideoFileSink

    if run.mode == "file":
        return [VideoFileSink(video, info.width, info.height, info.fps, info.time_base)]
    return [NullSink(info.width, info.height)]


def _sink(run: Run, info: Any, video: Path) -> Any:
    """The run's one sink (photo2cartoon's way writes to one)."""
    return _sinks(run, info, video)[0]


def _video_config(run: Run, batch_size: int) -> Any:
    """What ``p2c-stream`` / ``p2c-video`` run with; cost runs: the live path's work on every frame."""
    from p2c.stream.pipeline import LIVE_FLOW, LIVE_SEGMENT_EVERY, VideoConfig

    faces = run.scenario.faces
    if run.mode != "cost":
        return VideoConfig(max_faces=faces, batch_size=batch_size)
    return VideoConfig(
        max_faces=faces, batch_size=1, segment_every=LIVE_SEGMENT_EVERY, flow=LIVE_FLOW, adaptive=False
    )


def _face_pixels(frame: Any) -> list[float]:
    """Each face's height from brows to chin (its landmark box), pixels."""
    return [float(np.ptp(face.landmarks[:, 1])) for face in frame.faces]


def time_ours(run: Run, clip: Path, engine: Any, frames: int, batch_size: int, video: Path) -> dict[str, Any]:
    """p2c's pipeline on ``clip`` as ``p2c-stream --null`` (live) or ``p2c-video`` (file) runs it,
    or the live path's work on every frame (cost)."""
    from p2c.stream.pipeline import cartoonize

    latencies: list[float] = []
    arrived: list[float] = []
    finished: list[float] = []
    timings: list[FrameTiming] = []
    faces: list[int] = []
    sizes: list[float] = []
    levels: dict[int, int] = {}
    clock: dict[str, float] = {}

    def record(frame: Any, stats: Any) -> None:
        now = time.monotonic()
        latencies.append(now - frame.arrived)
        arrived.append(frame.arrived)
        finished.append(time.perf_counter())
        timings.append(frame_timing(frame.arrived, frame.stages, now))
        faces.append(len(frame.faces))
        sizes.extend(_face_pixels(frame))
        levels[stats.policy_level] = levels.get(stats.policy_level, 0) + 1

    load_before = list(os.getloadavg())
    with ThreadCpuSampler() as sampler, os_thread_name("p2c-sink"):
        source = _Marked(_source(run, clip), sampler, clock)
        with source:
            config = _video_config(run, batch_size)
            stats = cartoonize(
                source, _sinks(run, source.info, video), engine, config, max_frames=frames, on_frame=record
            )
    cpu = process_cpu() - clock.get("cpu", process_cpu())
    wall = (finished[-1] - clock["wall"]) if finished and "wall" in clock else 0.0
    out = max(stats.frames_out, 1)
    stages = stats.stage_ms_per_frame()
    profile = sampler.stage_cpu(out)
    return {
        "frames": {"in": stats.frames_in, "out": stats.frames_out, "dropped": stats.dropped},
        "faces_per_frame": faces,
        "face_px": {"median": float(np.median(sizes)) if sizes else 0.0, "max": max(sizes, default=0.0)},
        "fps": stats.frames_out / wall if wall > 0 else 0.0,
        "latency_ms": _latencies(latencies),
        "latency_ms_steady": _steady_latencies(latencies, arrived),
        "latency_split": _steady_split(timings, arrived),
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
        "policy": {
            "level": stats.policy_level,
            "lowered": stats.policy,
            "changes": stats.adaptations,
            "frames_at_level": {str(level): count for level, count in sorted(levels.items())},
        },
        "load_average": {"before": load_before, "after": list(os.getloadavg())},
    }


# --- the run --------------------------------------------------------------------------------------


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
            weights = args.weights  # a trained compact model
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


def _live_engine(run: Run) -> bool:
    """Whether the run opens its engine as ``p2c-stream`` does for one face live (cost runs too)."""
    return run.mode != "file" and run.scenario.faces == 1


def _clip_for(run: Run, args: argparse.Namespace, scratch: Path, clips: dict[Scenario, Path]) -> Path:
    """The run's test clip, made the first time a run needs it."""
    scenario = run.scenario
    if scenario not in clips:
        source = args.close_clip if scenario.close_up is not None else args.clip
        if args.clip_cache is None:
            clips[scenario] = write_scenario_clip(
                source, scenario, args.frames, scratch / f"in{len(clips)}{scenario.suffix}"
            )
        else:
            name = "".join(c if c.isalnum() else "_" for c in scenario.name)
            path = args.clip_cache / f"{name}_{args.frames}_{source.stem}{scenario.suffix}"
            if not path.is_file():
                args.clip_cache.mkdir(parents=True, exist_ok=True)
                write_scenario_clip(
                    source, scenario, args.frames, path.with_suffix(".part" + scenario.suffix)
                )
                path.with_suffix(".part" + scenario.suffix).replace(path)
            clips[scenario] = path
    return clips[scenario]


def _check_clips(args: argparse.Namespace, runs: list[Run]) -> None:
    from p2c.errors import InputNotFoundError

    if not args.clip.is_file():
        raise InputNotFoundError(f"clip {args.clip} not found; pass a video file with a face as CLIP")
    if any(run.scenario.close_up is not None for run in runs) and not args.close_clip.is_file():
        raise InputNotFoundError(
            f"close-up clip {args.close_clip} not found; pass one with --close-clip, or leave out the "
            "large-face and sweep runs (--runs)"
        )


def run_scenarios(args: argparse.Namespace) -> dict[str, Any]:
    """Make the clips, time every path on every run; write JSON, Markdown and PNG."""
    from p2c.stream.faces import AlignerConfig, FaceAligner

    require_video_libraries()
    runs = [run for run in RUNS if run.name in args.runs]
    _check_clips(args, runs)
    args.out.mkdir(parents=True, exist_ok=True)
    machine = _machine()  # now: its load average is the one the runs start under
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        engines = _engines(args, scratch)
        live_one_face = engines
        if any(_live_engine(run) for run in runs):
            live_one_face = _engines(args, scratch, live_one_face=True)
            if "reference" in engines:  # photo2cartoon's way is the same whatever the run
                live_one_face["reference"] = engines["reference"]
        try:
            names = {path: f"{e.name} {e.precision} on {e.device}" for path, e in engines.items()}
            clips: dict[Scenario, Path] = {}
            with FaceAligner(AlignerConfig(max_faces=4)) as aligner:
                aligner.align(np.zeros((64, 64, 3), np.uint8))  # load its models before any clock
                for index, run in enumerate(runs):
                    clip = _clip_for(run, args, scratch, clips)
                    row = _row(run)
                    for path, engine in (live_one_face if _live_engine(run) else engines).items():
                        if path == "reference" and run.mode == "cost":
                            continue  # photo2cartoon's way has no live path to cost
                        video = scratch / f"out{index}_{path}.mp4"
                        row[path] = (
                            time_reference(
                                _source(run, clip),
                                functools.partial(_sink, run, video=video),
                                engine,
                                aligner,
                                args.frames,
                                run.scenario.faces,
                            )
                            if path == "reference"
                            else time_ours(run, clip, engine, _frames(run, args), args.batch_size, video)
                        )
                        print(f"{run.name}, {path}: {row[path]['fps']:.2f} fps", file=sys.stderr)
                    row["targets_met"] = _targets_met(run, row.get("compact"))
                    results.append(row)
        finally:
            for engine in {id(e): e for e in [*engines.values(), *live_one_face.values()]}.values():
                engine.close()
        mjpeg = clips.get(MJPEG_1080P)
        decoding = time_jpeg_decoding(mjpeg) if mjpeg is not None else None
    report = {"machine": machine, "settings": _settings(args, names), "runs": results}
    if decoding is not None:
        report["mjpeg_decoding"] = decoding
    write_report(args.out, NAME, report, markdown_table(report), plot)
    return report


def _frames(run: Run, args: argparse.Namespace) -> int:
    """Frames the run plays: ``--frames``; a cost run ``--cost-frames`` (at most ``--frames``)."""
    if run.mode != "cost":
        return int(args.frames)
    return int(min(args.cost_frames or _COST_FRAMES, args.frames))


def _row(run: Run) -> dict[str, Any]:
    scenario = run.scenario
    return {
        "name": run.name,
        "mode": run.mode,
        "size": [scenario.width, scenario.height],
        "codec": scenario.codec,
        "close_up_px": scenario.close_up,
        "faces_in_clip": scenario.faces,
        "target_fps": run.target_fps,
        "target_p95_ms": run.target_p95_ms,
        "target_dropped": run.target_dropped,
    }


def _settings(args: argparse.Namespace, names: dict[str, str]) -> dict[str, Any]:
    return {
        "clip": str(args.clip),
        "close_clip": str(args.close_clip),
        "frames": args.frames,
        "cost_frames": min(args.cost_frames or _COST_FRAMES, args.frames),
        "camera_fps": CAMERA_FPS,
        "weights": _weights_note(args),
        "batch_size": args.batch_size,
        "engines": names,
        "engine_threads": "onnxruntime threads as p2c-stream and p2c-video choose them: the engine's "
        "own (1 for the compact generator) except live with one face (p2c.stream.threads."
        "engine_threads: 2; cost runs of one face too)",
        "reference": REFERENCE,
        "fps": "frames out / (last frame out - first frame captured or decoded); models loaded before",
        "latency": "capture to the end of the sink's write; split into work in the stages and "
        "queueing between them past the first second (latency_split.py)",
        "cost": "the live path's work on every frame: segmentation every 2nd frame, balanced flow, "
        "one frame per engine call, the live engine threads, adaptive policy off, unpaced",
        "profile": "CPU ms per frame out and cores, per stage, from every thread's CPU time (thread_cpu.py)",
    }


def _targets_met(run: Run, result: dict[str, Any] | None) -> bool | None:
    if result is None or run.target_fps is None:
        return None
    met = result["fps"] >= run.target_fps
    if run.target_p95_ms is not None:  # past start-up (STEADY_AFTER_S); the whole run is reported beside
        latency = result.get("latency_ms_steady") or result["latency_ms"]  # a short run: all of it
        met = met and latency["p95"] <= run.target_p95_ms
    if run.target_dropped is not None:
        frames = result["frames"]
        met = met and frames["dropped"] <= run.target_dropped * max(frames["in"], 1)
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


main = benchmark_command(NAME, _parser, run_scenarios, markdown_table)


if __name__ == "__main__":
    sys.exit(main())
