"""Generator throughput per architecture, backend, precision and batch size, beside each one's reference path.

Each architecture named (``--arch``; several in one run, each with its own random weights, or the one in
``--weights``) is timed in turn, its cost recorded beside it (GFLOP per face, counted by
``torch.utils.flop_counter.FlopCounterMode`` on one face at its input size, and its parameters). For each,
every installed backend is timed at each precision it supports and each batch size: faces per second
and milliseconds per batch (p50, p95), after warm-up, with ``torch.cuda.synchronize()`` around each
timed call on CUDA, with numpy batches in and out (``host``: the copies included) and, with
``--io host device`` (the default on CUDA), with tensors already on the device (``device``). The
``inductor`` backend is built (or loaded from the cache) before its timings; its start-up seconds are
recorded (``setup_s``). In the same run the reference path runs too: PyTorch FP32, one face at a time, no
compilation (what photo2cartoon's ``test.py`` does), so each speed-up is a ratio measured side by side.
Accuracy is measured against PyTorch FP32 on real face crops (max abs error; PSNR for FP16/BF16).
Every row of the report names its ``arch``; the reference path, the speed-ups, ``--interleave`` and the
head-to-head run are per architecture.

    python benchmarks/generator_throughput.py --out out/bench            # full model, all batch sizes
    python benchmarks/generator_throughput.py --arch compact photo2cartoon --out out/bench   # both, one run
    python benchmarks/generator_throughput.py --tiny --out out/bench     # ngf 8, 64 px, batch 1 and 2
    python benchmarks/generator_throughput.py --cases inductor:fp32 onnxruntime:fp32 --batch-sizes 1 8

Writes ``generator_throughput.json``, ``.png`` and ``.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from generator_archs import ARCHS, ArchCost, arch_cost, random_weights
from p2c.devices import resolve_device
from p2c.engine import EngineConfig, available_backends, create_engine, images_to_batch
from p2c.engine.base import Backend
from p2c.models.architectures import arch_of
from p2c.models.weights import load_generator, read_config
from throughput_report import write_markdown, write_plot
from timing import cached_start, interleaved_timings, time_calls

log = logging.getLogger("p2c.benchmarks.generator_throughput")

DEFAULT_ARCHS = ("photo2cartoon",)
BATCH_SIZES = (1, 2, 4, 8, 16, 32)
TINY_BATCH_SIZES = (1, 2)
PRECISIONS = {
    "torch": ("fp32", "fp16", "bf16"),
    "onnxruntime": ("fp32", "fp16"),
    "tensorrt": ("fp16", "fp32"),
    "inductor": ("fp16", "bf16", "fp32"),
}
# PyTorch has no fast FP16 convolutions on x86 CPUs: one full-size face takes minutes, so the CPU run
# leaves this case out unless asked for with --cases (it ran at 0.7x the reference in the --tiny run).
CPU_SKIPS = {
    ("torch", "fp16"): "PyTorch FP16 on x86 CPUs has no fast kernels (minutes per face); ask with --cases",
    ("inductor", "fp16"): "the inductor backend compiles fp32 only on the CPU",
    ("inductor", "bf16"): "the inductor backend compiles fp32 only on the CPU",
}
# A smoke test must not wait minutes for an AOTInductor build; name the backend to time it anyway.
TINY_SKIP = "the inductor build takes minutes, longer than a --tiny run; ask with --backends or --cases"
SHARED_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photo2cartoon" / "trainA"
NAME = "generator_throughput"
REFERENCE = (
    "PyTorch FP32, one face at a time, no compilation, as photo2cartoon's test.py runs it; "
    "timed before and after that architecture's backends, pooled"
)
REFERENCE_FTZ = "the same reference path with denormal floats flushed to zero (torch.set_flush_denormal)"


@dataclass
class Timing:
    """One architecture x backend x precision x batch size."""

    arch: str
    backend: str
    precision: str
    device: str
    batch: int
    iterations: int
    io: str  # "host": numpy in and out; "device": tensors on the engine's device
    faces_per_s: float
    ms_per_batch_p50: float
    ms_per_batch_p95: float
    speedup_vs_reference: float = 0.0
    speedup_vs_reference_ftz: float = 0.0
    setup_s: float = 0.0  # engine start (a compiled backend's build or cache load), then the first call


@dataclass
class Accuracy:
    arch: str
    backend: str
    precision: str
    max_abs_error: float
    psnr_db: float


@dataclass
class Report:
    """One run; every list holds rows of each architecture timed, each row naming its ``arch``."""

    machine: dict[str, Any]
    settings: dict[str, Any]
    archs: list[ArchCost] = field(default_factory=list)
    reference: list[dict[str, Any]] = field(default_factory=list)
    reference_ftz: list[dict[str, Any]] = field(default_factory=list)
    results: list[Timing] = field(default_factory=list)
    accuracy: list[Accuracy] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    head_to_head: list[dict[str, Any]] = field(default_factory=list)
    starts: list[dict[str, Any]] = field(default_factory=list)
    interleaved: list[dict[str, Any]] = field(default_factory=list)


# --- machine --------------------------------------------------------------------------------------


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu_info() -> dict[str, str]:
    if not torch.cuda.is_available():
        return {}
    info = {"name": torch.cuda.get_device_name(0), "cuda": str(torch.version.cuda)}
    try:
        query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        info["driver"] = subprocess.run(query, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        info["driver"] = "unknown"
    return info


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("torch", "numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "torch-tensorrt", "tensorrt"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def machine_info() -> dict[str, object]:
    return {
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": _gpu_info() or None,
        "platform": platform.platform(),
        # Other processes share the CPU on a busy machine; the load says how much (1, 5, 15 min averages).
        "load_average_at_start": list(os.getloadavg()),
        "versions": _versions(),
    }


# --- inputs ---------------------------------------------------------------------------------------


def _center_crop(image: np.ndarray, size: int) -> np.ndarray:
    import cv2

    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return cv2.resize(image[top : top + side, left : left + side], (size, size), interpolation=cv2.INTER_AREA)


def real_faces(count: int, size: int, photos: Path = SHARED_PHOTOS) -> tuple[np.ndarray, str]:
    """``count`` face crops from the shared photos (aligned by p2c's FaceAligner, else a centre crop)."""
    import cv2

    files = sorted(p for p in photos.glob("*") if p.is_file())[: count * 3] if photos.is_dir() else []
    images = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in files]
    images = [cv2.cvtColor(i, cv2.COLOR_BGR2RGB) for i in images if i is not None]
    if not images:
        rng = np.random.default_rng(0)
        noise = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(count)]
        return images_to_batch(noise), "random pixels (no photos found at ../shared)"
    crops, how = _aligned_crops(images, count, size)
    if len(crops) < count:
        crops += [_center_crop(image, size) for image in images[: count - len(crops)]]
        how = how or "fixed centre crops"
    return images_to_batch(crops[:count]), f"{how} of {photos}"


def _aligned_crops(images: list[np.ndarray], count: int, size: int) -> tuple[list[np.ndarray], str]:
    import cv2

    try:
        from p2c.stream.faces import FaceAligner
    except ImportError:
        return [], ""
    crops = []
    with FaceAligner() as aligner:
        for image in images:
            faces = aligner.align(image, max_faces=1)
            if faces:
                crops.append(cv2.resize(faces[0].crop, (size, size), interpolation=cv2.INTER_AREA))
            if len(crops) == count:
                break
    return crops, "FaceAligner crops"


# --- timing ---------------------------------------------------------------------------------------


def reference_call(
    weights: Path, faces: np.ndarray, device: torch.device, flush_denormal: bool = False
) -> Callable[[], np.ndarray]:
    """photo2cartoon's way: the PyTorch FP32 module, one face at a time, no_grad, result to numpy.

    photo2cartoon leaves denormal floats on (a fresh process's default); ``flush_denormal=True`` is the
    same path with them flushed, the conservative baseline that isolates what the backends add.
    """
    generator = load_generator(weights).to(device)
    face = torch.from_numpy(faces[:1])

    def one_face() -> np.ndarray:
        torch.set_flush_denormal(flush_denormal)
        try:
            with torch.no_grad():
                return generator(face.to(device))[0].cpu().numpy()
        finally:
            torch.set_flush_denormal(False)

    return one_face


def reference_timings(
    weights: Path, faces: np.ndarray, args: argparse.Namespace, flush_denormal: bool = False
) -> list[float]:
    device = resolve_device(args.device)
    call = reference_call(weights, faces, device, flush_denormal)
    return time_calls(call, args.warmup, args.iterations, args.budget_s, device.type == "cuda")


def head_to_head(arch: str, weights: Path, faces: np.ndarray, args: argparse.Namespace) -> dict[str, object]:
    """What ``auto`` picks here and the reference path, timed alternately (ABC ABC ...) so that a busy
    machine slows all of them alike; batch ``--duel-batch``."""
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    reference = reference_call(weights, faces, device)
    reference_ftz = reference_call(weights, faces, device, flush_denormal=True)
    engine = create_engine(weights, EngineConfig(device=args.device, max_batch=args.duel_batch))
    best = Timing(
        arch, engine.name, engine.precision, engine.device, args.duel_batch, 0, "host", 0.0, 0.0, 0.0
    )
    batch = np.ascontiguousarray(np.resize(faces, (best.batch, *faces.shape[1:])))
    try:
        engine.run(batch)  # warm-up
        reference_times: list[float] = []
        reference_ftz_times: list[float] = []
        best_times: list[float] = []
        for _ in range(max(3, args.iterations)):
            reference_times += time_calls(reference, 0, 1, args.budget_s, cuda)
            reference_ftz_times += time_calls(reference_ftz, 0, 1, args.budget_s, cuda)
            best_times += time_calls(lambda: engine.run(batch), 0, 1, args.budget_s, cuda)
    finally:
        engine.close()
    reference_ms = float(np.median(reference_times)) * 1000
    reference_ftz_ms = float(np.median(reference_ftz_times)) * 1000
    best_ms_per_face = float(np.median(best_times)) * 1000 / best.batch
    return {
        "arch": arch,
        "backend": best.backend,
        "precision": best.precision,
        "batch": best.batch,
        "rounds": len(best_times),
        "reference_ms_per_face_p50": reference_ms,
        "ms_per_face_p50": best_ms_per_face,
        "speedup_per_face": reference_ms / best_ms_per_face,
        "reference_ftz_ms_per_face_p50": reference_ftz_ms,
        "speedup_per_face_vs_reference_ftz": reference_ftz_ms / best_ms_per_face,
    }


def reference_summary(
    arch: str, times: list[float], device: torch.device, description: str
) -> dict[str, Any]:
    p50, p95 = np.percentile(times, [50, 95]) * 1000
    return {
        "arch": arch,
        "description": description,
        "device": str(device),
        "iterations": len(times),
        "faces_per_s": 1.0 / float(np.median(times)),
        "ms_per_face_p50": float(p50),
        "ms_per_face_p95": float(p95),
    }


def _psnr(reference: np.ndarray, other: np.ndarray) -> float:
    mse = float(np.mean((reference.astype(np.float64) - other) ** 2))
    return 99.0 if mse == 0 else float(10 * np.log10(4.0 / mse))


def _batch_call(engine: Backend, batch: np.ndarray, io: str) -> Callable[[], object]:
    """One timed call: numpy in and out (``host``), or a tensor already on the engine's device."""
    if io == "host":
        return partial(engine.run, batch)
    tensor = torch.from_numpy(batch).to(torch.device(engine.device.split(" ", 1)[0]))
    return partial(engine.run, tensor)


def best_at_batch_1(results: list[Timing]) -> dict[str, Any]:
    """The fastest case at batch 1 with numpy in and out (what a caller of the engine gets)."""
    candidates = [r for r in results if r.batch == 1 and r.io == "host"]
    if not candidates:
        return {}
    best = max(candidates, key=lambda r: r.faces_per_s)
    return {
        "backend": best.backend,
        "precision": best.precision,
        "faces_per_s": best.faces_per_s,
        "ms_per_face_p50": best.ms_per_batch_p50,
        "speedup_vs_reference": best.speedup_vs_reference,
    }


def bench_backend(
    arch: str,
    name: str,
    precision: str,
    weights: Path,
    faces: np.ndarray,
    reference_out: np.ndarray,
    args: argparse.Namespace,
    report: Report,
) -> None:
    """Time one backend at one precision over the batch sizes (and I/O modes); record its accuracy."""
    config = EngineConfig(
        backend=name, precision=precision, device=args.device, max_batch=max(args.batch_sizes)
    )
    started = time.perf_counter()
    try:
        engine: Backend = create_engine(weights, config)
        output = engine.run(faces)
    except Exception as error:
        report.skipped.append({"arch": arch, "backend": name, "precision": precision, "reason": str(error)})
        log.warning("%s: skipping %s %s: %s", arch, name, precision, error)
        return
    setup_s = time.perf_counter() - started
    try:
        report.accuracy.append(
            Accuracy(
                arch,
                name,
                precision,
                float(np.abs(output - reference_out).max()),
                _psnr(reference_out, output),
            )
        )
        cuda = engine.device.startswith("cuda")
        for io in args.io:
            for batch_size in args.batch_sizes:
                batch = np.ascontiguousarray(np.resize(faces, (batch_size, *faces.shape[1:])))
                call = _batch_call(engine, batch, io)
                times = time_calls(call, args.warmup, args.iterations, args.budget_s, cuda)
                p50, p95 = np.percentile(times, [50, 95]) * 1000
                timing = Timing(
                    arch,
                    name,
                    precision,
                    engine.device,
                    batch_size,
                    len(times),
                    io,
                    batch_size / float(np.median(times)),
                    float(p50),
                    float(p95),
                    setup_s=setup_s,
                )
                report.results.append(timing)
                log.info(
                    "%-13s %-12s %-5s %-6s batch %3d: %9.2f faces/s, p50 %8.2f ms",
                    arch,
                    name,
                    precision,
                    io,
                    batch_size,
                    timing.faces_per_s,
                    p50,
                )
                if float(np.mean(times)) > args.budget_s:  # larger batches would only take longer
                    report.skipped.append(
                        {
                            "arch": arch,
                            "backend": name,
                            "precision": precision,
                            "reason": f"{io}: batch sizes above {batch_size} skipped: over the time budget",
                        }
                    )
                    break
    finally:
        engine.close()


# --- main -----------------------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--weights", type=Path, help="generator weights, timed as their own arch (default: random weights)"
    )
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="tiny generators (photo2cartoon ngf 8; compact widths 4 8 8, 1 block; 64 px), batch 1 and 2: "
        "a smoke test",
    )
    parser.add_argument(
        "--arch",
        nargs="+",
        choices=ARCHS,
        help="architectures to time in turn, each with its own random weights (default: photo2cartoon; "
        "compact: its default config); with --weights, the file's",
    )
    parser.add_argument("--out", type=Path, default=Path("out/benchmarks"), help="output folder")
    parser.add_argument("--backends", nargs="+", help="backends to time (default: every installed one)")
    parser.add_argument("--precisions", nargs="+", help="precisions to time (default: each backend's)")
    parser.add_argument(
        "--cases", nargs="+", metavar="BACKEND:PRECISION", help="exactly these cases, e.g. torch:fp16"
    )
    parser.add_argument("--batch-sizes", nargs="+", type=int, help="default: 1 2 4 8 16 32 (tiny: 1 2)")
    parser.add_argument("--iterations", type=int, default=10, help="timed calls per case (default: 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (default: 2)")
    parser.add_argument(
        "--budget-s", type=float, default=30.0, help="stop timing a case after this (default: 30)"
    )
    parser.add_argument(
        "--faces", type=int, default=4, help="real face crops for the accuracy check (default: 4)"
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    parser.add_argument(
        "--io",
        nargs="+",
        choices=("host", "device"),
        help="numpy in/out (host), device tensors (device); default: host, and device too on CUDA",
    )
    parser.add_argument(
        "--duel-batch", type=int, default=1, help="batch for the auto-vs-reference alternating run (0: skip)"
    )
    parser.add_argument(
        "--interleave",
        action="store_true",
        help="after each architecture's timings, time its cases again call by call in turn "
        "(fair ratios on a busy machine)",
    )
    parser.add_argument(
        "--cached-start",
        action="store_true",
        help="after the timings, time a later start of each case in a fresh process (cache warm)",
    )
    args = parser.parse_args(argv)
    if args.weights is not None:
        held = arch_of(read_config(args.weights))
        if args.arch not in (None, [held]):
            parser.error(
                f"--weights {args.weights} holds one {held} generator; got --arch {' '.join(args.arch)}"
            )
        args.arch = [held]
    args.arch = list(dict.fromkeys(args.arch or DEFAULT_ARCHS))
    args.batch_sizes = args.batch_sizes or list(TINY_BATCH_SIZES if args.tiny else BATCH_SIZES)
    args.io = args.io or (["host", "device"] if resolve_device(args.device).type == "cuda" else ["host"])
    return args


def _weights(arch: str, args: argparse.Namespace, folder: Path) -> tuple[Path, int]:
    """The file the backends load for ``arch``: ``--weights``, else random weights (seed 0) in ``folder``."""
    if args.weights is not None:
        return args.weights, load_generator(args.weights).config.img_size
    return random_weights(arch, args.tiny, folder)


def _cases(arch: str, args: argparse.Namespace, report: Report) -> list[tuple[str, str]]:
    """(backend, precision) pairs to time: --cases, else every installed backend x its precisions."""
    if args.cases:
        return [tuple(case.split(":", 1)) for case in args.cases]  # type: ignore[misc]
    cases = []
    on_cpu = resolve_device(args.device).type == "cpu"
    for name in args.backends or available_backends():
        for precision in PRECISIONS.get(name, ("fp32",)):
            if args.precisions is not None and precision not in args.precisions:
                continue
            reason = None
            if args.tiny and name == "inductor" and not args.backends:
                reason = TINY_SKIP
            elif on_cpu and not args.tiny and (name, precision) in CPU_SKIPS:
                reason = CPU_SKIPS[name, precision]
            if reason is not None:
                report.skipped.append(
                    {"arch": arch, "backend": name, "precision": precision, "reason": reason}
                )
                continue
            cases.append((name, precision))
    return cases


def bench_arch(arch: str, weights: Path, faces: np.ndarray, args: argparse.Namespace, report: Report) -> None:
    """One architecture: its cost, its reference path before and after its cases, the speed-ups against
    it, then (as asked) its interleaved timings, later starts and head-to-head run."""
    cost = arch_cost(arch, weights)
    report.archs.append(cost)
    log.info(
        "%s: %.3g GFLOP per face, %.3g M parameters; reference path: torch FP32, one face at a time",
        arch,
        cost.gflop_per_face,
        cost.params / 1e6,
    )
    device = resolve_device(args.device)
    reference_times = reference_timings(weights, faces, args)
    reference_ftz_times = reference_timings(weights, faces, args, flush_denormal=True)
    engine = create_engine(weights, EngineConfig(backend="torch", precision="fp32", device="cpu"))
    try:
        reference_out = engine.run(faces)
    finally:
        engine.close()
    for name, precision in _cases(arch, args, report):
        bench_backend(arch, name, precision, weights, faces, reference_out, args, report)
    reference_times += reference_timings(weights, faces, args)
    reference_ftz_times += reference_timings(weights, faces, args, flush_denormal=True)
    reference = reference_summary(arch, reference_times, device, REFERENCE)
    reference_ftz = reference_summary(arch, reference_ftz_times, device, REFERENCE_FTZ)
    report.reference.append(reference)
    report.reference_ftz.append(reference_ftz)
    results = [r for r in report.results if r.arch == arch]
    for timing in results:
        timing.speedup_vs_reference = timing.faces_per_s / float(reference["faces_per_s"])
        timing.speedup_vs_reference_ftz = timing.faces_per_s / float(reference_ftz["faces_per_s"])
    cost.best_at_batch_1 = best_at_batch_1(results)
    cases = list(dict.fromkeys((r.backend, r.precision) for r in results))
    if args.interleave and cases:
        log.info("%s interleaved: %s, call by call in turn", arch, ", ".join(f"{n} {p}" for n, p in cases))
        report.interleaved += [
            {"arch": arch, **row} for row in interleaved_timings(weights, faces, cases, args)
        ]
    if args.cached_start:
        for name, precision in sorted(cases):
            first = next(r.setup_s for r in results if (r.backend, r.precision) == (name, precision))
            log.info("%s: later start of %s %s in a fresh process", arch, name, precision)
            report.starts.append(
                {
                    "arch": arch,
                    "backend": name,
                    "precision": precision,
                    "first_start_s": first,
                    "cached": cached_start(weights, name, precision, cost.img_size, args),
                }
            )
    if args.duel_batch:
        log.info(
            "%s head to head: the auto backend at batch %d against the reference path", arch, args.duel_batch
        )
        report.head_to_head.append(head_to_head(arch, weights, faces, args))


def run(args: argparse.Namespace) -> Report:
    report = Report(machine_info(), {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()})
    faces_by_size: dict[int, tuple[np.ndarray, str]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for arch in args.arch:
            weights, size = _weights(arch, args, Path(folder))
            if size not in faces_by_size:
                faces_by_size[size] = real_faces(args.faces, size)
            faces, source = faces_by_size[size]
            # Every architecture of one run takes the same input size (64 px with --tiny, else 256).
            report.settings.update(
                img_size=size, faces=source, weights=str(args.weights or "random weights (seed 0)")
            )
            bench_arch(arch, weights, faces, args, report)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = _parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    report = run(args)
    report.machine["load_average_at_end"] = list(os.getloadavg())
    (args.out / f"{NAME}.json").write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    write_markdown(report, args.out / f"{NAME}.md")
    plotted = write_plot(report, args.out / f"{NAME}.png")
    print(f"wrote {args.out / NAME}.json, .md" + (" and .png" if plotted else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
