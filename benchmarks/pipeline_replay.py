"""The GPU pipeline end to end, replayed from recorded faces: no MediaPipe, no PyAV needed.

    python benchmarks/pipeline_replay.py RECORDING.json [--frames N] [--out DIR] [--tiny | --weights W]
                                          [engine options, e.g. --backend inductor]

RECORDING is what ``benchmarks/record_faces.py`` wrote (JSON + npz, the clip beside it or ``--clip``).
The clip is decoded with OpenCV and each frame is made into four test frames, as
``pipeline_scenarios.py`` does: 1280x720 and 1920x1080 with one face (the frame resized and padded)
and with four faces (a 2x2 tiling at half size), the recorded crop transforms moved to match. Each
scenario then runs the device pipeline of :mod:`p2c.stream.gpu_compositing`, per frame:

    upload (frame once, uint8 masks) -> crops warped and whitened on the device -> generator on device
    tensors -> composite on the device -> one download

- **offline**: frames back to back: fps, ms per frame (p50, p95), ms per stage (CUDA events on a
  GPU, so stages are device time; wall time on the CPU), peak GPU memory;
- **live**: frames arrive at the clip's rate; a frame that is late when the previous one finishes is
  dropped for the newest (as a live source does): latency from arrival to download (p50, p95), drops.

Decoding runs before the clock (a product pipeline decodes on its own thread); its cost per frame is
reported beside. ``--tiny``: a random ngf-8 generator at 64 px and a few frames (CI, on the CPU);
without ``--weights`` a random full-size generator (ngf 32, 256 px, seed 0; ``--arch compact``: the
compact generator's default config) stands in: the speed is the same as trained weights, the
pictures are noise. Writes ``pipeline_replay.json``, ``.md`` and
``.png`` (when matplotlib is installed) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reporting import benchmark_command, pyplot, save_figure, write_report
from scenario_clips import SCENARIOS, Scenario

__all__ = ["Recording", "load_recording", "main", "run_replay", "scenario_frames"]

log = logging.getLogger("p2c.benchmarks.pipeline_replay")

NAME = "pipeline_replay"
STAGES = ("upload", "crops", "engine", "composite", "download")
WARMUP_FRAMES = 3


@dataclass
class Recording:
    """Recorded faces of a clip: per frame, the rows of ``arrays`` holding its faces."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]
    clip: Path

    def faces_on(self, index: int) -> np.ndarray:
        return np.flatnonzero(self.arrays["frame"] == index)


def load_recording(path: Path, clip: Path | None = None) -> Recording:
    """A recording written by ``record_faces.py``; one clear error when it or its clip is missing."""
    from p2c.errors import InputNotFoundError, InvalidInputError

    path = path if path.suffix == ".json" else path.with_suffix(".json")
    if not path.is_file():
        raise InputNotFoundError(f"recording {path} not found; make one with benchmarks/record_faces.py")
    meta = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("format") != "p2c-face-recording/1":
        raise InvalidInputError(f"{path} is not a face recording (format {meta.get('format')!r})")
    with np.load(path.with_name(meta["arrays"])) as data:
        arrays = {name: data[name] for name in data.files}
    clip = clip or path.with_name(meta["clip"])
    if not clip.is_file():
        raise InputNotFoundError(f"clip {clip} not found; pass --clip, or record with --copy-clip")
    return Recording(meta, arrays, clip)


def decode_clip(clip: Path, frames: int) -> tuple[list[np.ndarray], float]:
    """The first ``frames`` frames as RGB, and the milliseconds per frame OpenCV took to decode them."""
    import cv2

    capture = cv2.VideoCapture(str(clip))
    images: list[np.ndarray] = []
    started = time.perf_counter()
    try:
        while len(images) < frames:
            ok, bgr = capture.read()
            if not ok:
                break
            images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    return images, 1000 * (time.perf_counter() - started) / max(len(images), 1)


# --- scenario geometry ----------------------------------------------------------------------------


def _placement(source: tuple[int, int], scenario: Scenario) -> tuple[float, list[tuple[float, float]]]:
    """Scale of the source frame in each tile (aspect kept) and the tiles' offsets (centred, padded)."""
    width, height = source
    tile_w, tile_h = scenario.width // scenario.grid, scenario.height // scenario.grid
    scale = min(tile_w / width, tile_h / height)
    pad_x, pad_y = (tile_w - round(width * scale)) // 2, (tile_h - round(height * scale)) // 2
    offsets = [
        (col * tile_w + pad_x, row * tile_h + pad_y)
        for row in range(scenario.grid)
        for col in range(scenario.grid)
    ]
    return scale, [(float(x), float(y)) for x, y in offsets]


def moved_transform(transform: np.ndarray, scale: float, offset: tuple[float, float]) -> np.ndarray:
    """The image -> crop matrix once the image is resized by ``scale`` (pixel centres kept, as
    cv2.resize does) and placed at ``offset``."""
    shift = np.array([0.5 * scale - 0.5 + offset[0], 0.5 * scale - 0.5 + offset[1]])
    moved = np.empty((2, 3))
    moved[:, :2] = transform[:, :2] / scale
    moved[:, 2] = transform[:, 2] - moved[:, :2] @ shift
    return moved


def scenario_frames(
    images: Sequence[np.ndarray], recording: Recording, scenario: Scenario
) -> tuple[list[np.ndarray], list[list[np.ndarray]], list[np.ndarray]]:
    """Per frame: the scenario's image, its faces' transforms, and the rows of their masks."""
    import cv2

    height, width = images[0].shape[:2]
    scale, offsets = _placement((width, height), scenario)
    size = (round(width * scale), round(height * scale))
    frames, transforms, rows = [], [], []
    for index, image in enumerate(images):
        canvas = np.zeros((scenario.height, scenario.width, 3), np.uint8)
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        for x, y in offsets:
            canvas[int(y) : int(y) + size[1], int(x) : int(x) + size[0]] = small
        faces = recording.faces_on(index)
        frames.append(canvas)
        transforms.append(
            [moved_transform(recording.arrays["transform"][f], scale, o) for o in offsets for f in faces]
        )
        rows.append(np.array([f for _ in offsets for f in faces], dtype=np.int64))
    return frames, transforms, rows


# --- timing ---------------------------------------------------------------------------------------


class StageClock:
    """Stage times of one frame: CUDA events on a GPU (device time, no waits in between), else wall."""

    def __init__(self, device: Any) -> None:
        import torch

        self._torch = torch
        self._cuda = device.type == "cuda"
        self._marks: list[Any] = []

    def start(self) -> None:
        self._marks = [self._mark()]

    def lap(self) -> None:
        self._marks.append(self._mark())

    def _mark(self) -> Any:
        if not self._cuda:
            return time.perf_counter()
        event = self._torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def stage_ms(self) -> list[float]:
        """Milliseconds between consecutive marks (call after the frame's download has synchronised)."""
        pairs = zip(self._marks, self._marks[1:], strict=False)
        if self._cuda:
            return [float(a.elapsed_time(b)) for a, b in pairs]
        return [1000 * (b - a) for a, b in pairs]


class DevicePipeline:
    """One frame through upload -> crops -> engine -> composite -> download, timed per stage."""

    def __init__(self, engine: Any, masks: np.ndarray, size: int) -> None:
        from p2c.engine.tensors import backend_device
        from p2c.stream.gpu_compositing import FrameTransfer

        self.engine = engine
        self.device = backend_device(engine.device)
        self.transfer = FrameTransfer(self.device)
        self.masks = masks
        self.size = size
        self.clock = StageClock(self.device)

    def __call__(self, image: np.ndarray, transforms: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
        from p2c.stream.gpu_compositing import batch_to_pixels, engine_inputs, masks_tensor, paste_batch

        clock = self.clock
        clock.start()
        frame = self.transfer.upload(image)
        masks = masks_tensor(self.masks[rows], self.device) if len(rows) else None
        clock.lap()
        if masks is not None:
            inputs = engine_inputs(frame, transforms, masks, self.size)
            clock.lap()
            cartoons = self.engine.run(inputs)
            clock.lap()
            paste_batch(frame, transforms, batch_to_pixels(cartoons), masks)
            clock.lap()
        else:
            clock.lap()
            clock.lap()
            clock.lap()
        output = self.transfer.download(frame)
        clock.lap()
        return output


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "max": 0.0}
    p50, p95 = np.percentile(values, [50, 95])
    return {"p50": float(p50), "p95": float(p95), "max": float(max(values))}


def time_offline(pipeline: DevicePipeline, frames: list, transforms: list, rows: list) -> dict[str, Any]:
    """Frames back to back: fps, ms per frame, mean ms per stage."""
    for i in range(min(WARMUP_FRAMES, len(frames))):
        pipeline(frames[i], transforms[i], rows[i])
    per_frame, stages = [], []
    started = time.perf_counter()
    for image, moved, face_rows in zip(frames, transforms, rows, strict=True):
        begin = time.perf_counter()
        pipeline(image, moved, face_rows)
        per_frame.append(1000 * (time.perf_counter() - begin))
        stages.append(pipeline.clock.stage_ms())
    wall = time.perf_counter() - started
    faces = sum(len(r) for r in rows)
    return {
        "frames": len(frames),
        "fps": len(frames) / wall,
        "faces_per_s": faces / wall,
        "ms_per_frame": _percentiles(per_frame),
        "stage_ms": {name: float(np.mean([s[i] for s in stages])) for i, name in enumerate(STAGES)},
    }


def time_live(
    pipeline: DevicePipeline,
    frames: list,
    transforms: list,
    rows: list,
    fps: float,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Frames arriving at ``fps``; a frame is taken when the previous one is done, the newest that
    has arrived (older ones dropped). Latency: arrival to the end of its download."""
    period = 1.0 / fps
    latencies: list[float] = []
    dropped = 0
    start = clock() + period  # the first frame arrives one period from now
    index = 0
    while index < len(frames):
        arrival = start + index * period
        now = clock()
        if now < arrival:
            time.sleep(arrival - now)
        newest = min(len(frames) - 1, int((clock() - start) / period))
        if newest > index:  # frames arrived while the last one was processed: keep only the newest
            dropped += newest - index
            index = newest
            arrival = start + index * period
        pipeline(frames[index], transforms[index], rows[index])
        latencies.append(1000 * (clock() - arrival))
        index += 1
    return {
        "fps_in": fps,
        "frames": len(frames),
        "processed": len(latencies),
        "dropped": dropped,
        "latency_ms": _percentiles(latencies),
    }


# --- the run --------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    from p2c.cli import positive_int
    from p2c.engine import add_engine_arguments

    parser = argparse.ArgumentParser(prog=NAME, description=__doc__.split("\n\n")[0])
    parser.add_argument("recording", type=Path, help="NAME.json written by benchmarks/record_faces.py")
    parser.add_argument("--clip", type=Path, default=None, help="the recorded clip (default: beside it)")
    parser.add_argument("--frames", type=positive_int, default=None, help="frames per scenario (default 120)")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmarks"), help="folder for the results")
    parser.add_argument("--tiny", action="store_true", help="random ngf-8 generator at 64 px, 4 frames (CI)")
    parser.add_argument(
        "--arch",
        choices=("photo2cartoon", "compact"),
        default="photo2cartoon",
        help="the random generator's architecture without --weights (default: photo2cartoon)",
    )
    parser.add_argument("--no-live", action="store_true", help="skip the live (arrival-paced) runs")
    parser.add_argument(
        "--save-frames", action="store_true", help="write each scenario's last output frame as a JPEG"
    )
    parser.add_argument(
        "--scenarios", nargs="+", type=int, metavar="I", help="indexes into the four scenarios (default all)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    add_engine_arguments(parser)
    return parser


def random_weights(folder: Path, tiny: bool, arch: str = "photo2cartoon") -> tuple[Path, int]:
    """A random generator (seed 0): ngf 8 at 64 px for --tiny, else the full size at 256 px (the
    compact one: its default config at that size).

    Saved as p2c safetensors, or as a bare ``.pt`` state dict where safetensors is not installed."""
    import importlib.util

    import torch

    from p2c.models.architectures import build_generator
    from p2c.models.compact import CompactConfig
    from p2c.models.generator import GeneratorConfig

    torch.manual_seed(0)
    size = 64 if tiny else 256
    if arch == "photo2cartoon":
        ngf = 8 if tiny else 32
        generator = build_generator(arch, GeneratorConfig(ngf=ngf, img_size=size)).eval()
        name = f"random_ngf{ngf}"
    else:
        generator, name = build_generator(arch, CompactConfig(img_size=size)).eval(), f"random_{arch}"
    if importlib.util.find_spec("safetensors") is None and size == 256:
        path = folder / f"{name}.pt"
        torch.save({"genA2B": generator.state_dict()}, path)
        return path, size
    from p2c.models.weights import save_generator

    return save_generator(generator, folder / name, dtype=torch.float32), size


def _machine(engine: Any) -> dict[str, Any]:
    import cv2

    from generator_throughput import machine_info

    machine: dict[str, Any] = machine_info()
    machine["versions"]["opencv"] = cv2.__version__
    machine["engine"] = f"{engine.name} {engine.precision} on {engine.device}"
    return machine


def _gpu_memory(device: Any) -> dict[str, float] | None:
    import torch

    if device.type != "cuda":
        return None
    return {
        "peak_allocated_mib": torch.cuda.max_memory_allocated(device) / 2**20,
        "peak_reserved_mib": torch.cuda.max_memory_reserved(device) / 2**20,
    }


def run_scenario(
    scenario: Scenario,
    images: list[np.ndarray],
    recording: Recording,
    engine: Any,
    size: int,
    live: bool,
    save_to: Path | None = None,
) -> dict[str, Any]:
    import torch

    frames, transforms, rows = scenario_frames(images, recording, scenario)
    pipeline = DevicePipeline(engine, recording.arrays["mask"], size)
    if pipeline.device.type == "cuda":
        torch.cuda.synchronize(pipeline.device)
        torch.cuda.reset_peak_memory_stats(pipeline.device)
    result: dict[str, Any] = {
        "name": scenario.name,
        "size": [scenario.width, scenario.height],
        "faces_per_frame": float(np.mean([len(r) for r in rows])),
        "offline": time_offline(pipeline, frames, transforms, rows),
    }
    if live:
        result["live"] = time_live(pipeline, frames, transforms, rows, float(recording.meta["fps"]))
    result["gpu_memory"] = _gpu_memory(pipeline.device)
    if save_to is not None:  # what the last frame looks like: faces pasted where they belong
        import cv2

        output = pipeline(frames[-1], transforms[-1], rows[-1])
        cv2.imwrite(str(save_to), cv2.cvtColor(output, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return result


def run_replay(args: argparse.Namespace) -> dict[str, Any]:
    from p2c.engine import create_engine, engine_config_from_args

    recording = load_recording(args.recording, args.clip)
    frames = args.frames or (4 if args.tiny else 120)
    images, decode_ms = decode_clip(recording.clip, min(frames, int(recording.meta["frames"])))
    scenarios = [SCENARIOS[i] for i in args.scenarios] if args.scenarios else list(SCENARIOS)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        if args.weights is None:
            weights, size = random_weights(Path(scratch), args.tiny, args.arch)
        else:
            from p2c.models.weights import load_generator

            weights, size = args.weights, load_generator(args.weights).config.img_size
        started = time.perf_counter()
        engine = create_engine(weights, engine_config_from_args(args))
        engine_start_s = time.perf_counter() - started
        try:
            machine = _machine(engine)
            results = []
            for index, scenario in enumerate(scenarios):
                save_to = args.out / f"{NAME}_{index}.jpg" if args.save_frames else None
                results.append(
                    run_scenario(scenario, images, recording, engine, size, not args.no_live, save_to)
                )
                offline = results[-1]["offline"]
                print(f"{scenario.name}: {offline['fps']:.1f} fps offline", file=sys.stderr)
        finally:
            engine.close()
    report = {
        "machine": machine,
        "settings": {
            "recording": str(args.recording),
            "clip": recording.clip.name,
            "clip_fps": recording.meta["fps"],
            "frames": len(images),
            "weights": "random (seed 0)" if args.weights is None else str(args.weights),
            "generator_px": size,
            "engine_start_s": engine_start_s,
            "decode_ms_per_frame": decode_ms,
            "stages": "upload (frame + uint8 masks) / crops (warp + whiten) / engine / composite / download",
            "stage_timing": "CUDA events (device time)" if "cuda" in engine.device else "wall time",
        },
        "scenarios": results,
    }
    write_report(args.out, NAME, report, markdown_table(report), _plot)
    return report


def markdown_table(report: dict[str, Any]) -> str:
    """The scenarios as a Markdown table (the one in docs/benchmarks.md)."""
    gpu, settings = report["machine"].get("gpu") or {}, report["settings"]
    lines = [
        f"Engine: {report['machine']['engine']}; GPU: {gpu.get('name', 'none')}; {settings['frames']} frames "
        f"per scenario; stage ms are {settings['stage_timing']}.",
        "",
        "| scenario | faces | fps offline | ms/frame p50 / p95 | ms per stage: upload / crops / engine / "
        "composite / download | live p50 / p95 latency (ms) | live dropped | peak GPU MiB |",
        "| --- | ---: | ---: | --- | --- | --- | ---: | ---: |",
    ]
    for row in report["scenarios"]:
        offline, live = row["offline"], row.get("live")
        stages = " / ".join(f"{offline['stage_ms'][name]:.2f}" for name in STAGES)
        latency = f"{live['latency_ms']['p50']:.1f} / {live['latency_ms']['p95']:.1f}" if live else "-"
        dropped = f"{live['dropped']} of {live['frames']}" if live else "-"
        memory = row["gpu_memory"]["peak_allocated_mib"] if row["gpu_memory"] else None
        lines.append(
            f"| {row['name']} | {row['faces_per_frame']:g} | {offline['fps']:.1f} "
            f"| {offline['ms_per_frame']['p50']:.2f} / {offline['ms_per_frame']['p95']:.2f} | {stages} "
            f"| {latency} | {dropped} | {'-' if memory is None else f'{memory:.0f}'} |"
        )
    return "\n".join(lines) + "\n"


def _plot(report: dict[str, Any], path: Path) -> None:
    try:
        plt = pyplot()
    except ImportError:
        log.warning("matplotlib is not installed: no plot written")
        return

    rows = report["scenarios"]
    figure, axes = plt.subplots(figsize=(8, 4))
    bottom = np.zeros(len(rows))
    for name in STAGES:
        values = np.array([r["offline"]["stage_ms"][name] for r in rows])
        axes.bar([r["name"] for r in rows], values, bottom=bottom, label=name)
        bottom += values
    for i, row in enumerate(rows):
        axes.annotate(f"{row['offline']['fps']:.0f} fps", (i, bottom[i]), ha="center", va="bottom")
    axes.set_ylabel("ms per frame, by stage")
    axes.set_title(f"{report['machine']['engine']}"[:80])
    axes.legend(fontsize=8)
    save_figure(figure, path)


main = benchmark_command(NAME, _parser, run_replay, markdown_table)


if __name__ == "__main__":
    sys.exit(main())
