"""The compact recipe's training run: resumable exactly on one machine, continued on the next.

Two kinds of state:

- **full** (``OUT/state.pt``, git-ignored, written atomically every ``save_minutes``): the networks
  in FP32, both Adams, the step, samples seen, CPU and wall seconds. A run resumed from it repeats
  the uninterrupted run exactly: every random draw of a step is a function of ``(seed, step)``
  (:func:`p2c.training.onesided.step_generator`, :class:`p2c.training.crops.CropBank`).
- **portable** (``state_dir``, e.g. ``recipes/state/``, a few MB, committed once per session):
  every network in FP16 (``networks.safetensors``), the shipped candidate (the generator's moving
  average, ``genA2B.safetensors`` + ``.json`` in the engine's format) and ``state.json`` (step,
  samples, CPU-hours, the sessions). A new machine continues from it with fresh Adams, whose
  learning rate ramps up over ``rewarm_steps``.

SIGTERM and SIGINT end the step under way, write both states and return.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from p2c.errors import InputNotFoundError, InvalidInputError
from p2c.files import atomic_path, atomic_write
from p2c.training.crops import CropBank
from p2c.training.onesided import (
    NETWORK_NAMES,
    OneSidedConfig,
    OneSidedNetworks,
    StepLosses,
    generator_step,
    identity_step,
    step_generator,
)
from p2c.training.schedule import parse_size_schedule, size_at

__all__ = [
    "CompactRunConfig",
    "RunResult",
    "export_portable_state",
    "load_portable_networks",
    "train_compact",
]

log = logging.getLogger(__name__)

FULL_STATE = "state.pt"
PORTABLE_NETWORKS = "networks.safetensors"
PORTABLE_JSON = "state.json"
CANDIDATE = "genA2B.safetensors"
MIN_SIZE = 64


@dataclass(frozen=True)
class CompactRunConfig:
    """One run of the compact recipe. Steps count identity warm-up steps too."""

    data_dir: str
    out_dir: str
    objective: OneSidedConfig = field(default_factory=OneSidedConfig)
    seed: int = 0
    batch_size: int = 4
    img_size: int = 256
    size_schedule: str = ""  # "128:20000": steps per size; the last size (img_size) runs the rest
    identity_steps: int = 200
    rewarm_steps: int = 100
    threads: int = 2
    precision: str = (
        "bf16"  # autocast on the CPU (bf16 measured 1.5x faster per step than fp32 on AVX-512 BF16)
    )
    save_minutes: float = 5.0
    log_every: int = 25
    sample_minutes: float = 15.0
    max_steps: int | None = None
    cpu_hours: float | None = None  # stop once this run's process has used this much CPU time
    state_dir: str | None = None
    init_from: str | None = None
    faceid_weights: str | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0 < self.save_minutes <= 10:
            raise ValueError(f"save_minutes must lie in (0, 10], got {self.save_minutes}")
        if self.precision not in ("bf16", "fp32"):
            raise ValueError(f"precision must be bf16 or fp32, got {self.precision!r}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        sizes = [size for size, _ in parse_size_schedule(self.size_schedule)] if self.size_schedule else []
        if min([self.img_size, *sizes]) < MIN_SIZE:
            raise ValueError(
                f"crop sizes must be >= {MIN_SIZE} (the half-size discriminator's input), "
                f"got {self.size_schedule or self.img_size}"
            )

    def size(self, step: int) -> int:
        schedule = parse_size_schedule(self.size_schedule) if self.size_schedule else ()
        return size_at(schedule, self.img_size, step) if schedule else self.img_size

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["objective"] = self.objective.to_dict()
        return out


@dataclass
class RunResult:
    step: int
    samples: int
    cpu_seconds: float
    stopped_by: str
    out_dir: Path


@dataclass
class _Progress:
    step: int = 0
    samples: int = 0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    resumed_at: int = 0  # the step a continuation (fresh Adams) started from
    sessions: list[dict[str, Any]] = field(default_factory=list)


class _Stop:
    """Set by SIGTERM/SIGINT; the loop ends after the step under way."""

    def __init__(self) -> None:
        self.signal: str | None = None

    @contextmanager
    def installed(self) -> Iterator[None]:
        def handler(number: int, _frame: object) -> None:
            self.signal = signal.Signals(number).name

        previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for number, old in previous.items():
                signal.signal(number, old)


def _optimizers(nets: OneSidedNetworks) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    config = nets.config
    g = torch.optim.Adam(nets.generator_parameters(), lr=config.lr, betas=config.betas)
    d = torch.optim.Adam(nets.discriminator_parameters(), lr=config.lr, betas=config.betas)
    return g, d


def _set_lr(optimizers: tuple[torch.optim.Optimizer, ...], lr: float) -> None:
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = lr


# -- the two states -------------------------------------------------------------------------------


def _save_full(
    path: Path,
    config: CompactRunConfig,
    nets: OneSidedNetworks,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    progress: _Progress,
) -> None:
    payload = {
        "config": config.to_dict(),
        "networks": {name: getattr(nets, name).state_dict() for name in NETWORK_NAMES},
        "optimizers": [optimizer.state_dict() for optimizer in optimizers],
        "progress": asdict(progress),
    }
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)


def _load_full(
    path: Path, nets: OneSidedNetworks, optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer]
) -> _Progress:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    for name in NETWORK_NAMES:
        getattr(nets, name).load_state_dict(payload["networks"][name])
    for optimizer, state in zip(optimizers, payload["optimizers"], strict=True):
        optimizer.load_state_dict(state)
    return _Progress(**payload["progress"])


def export_portable_state(
    folder: Path, config: CompactRunConfig, nets: OneSidedNetworks, progress: _Progress
) -> None:
    """``networks.safetensors`` (all FP16), the candidate generator and ``state.json``, each atomic."""
    from safetensors.torch import save_file

    from p2c.models.weights import save_generator

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"{name}.{key}": value.detach()
        .to(torch.float16 if value.is_floating_point() else value.dtype)
        .cpu()
        .contiguous()
        for name in NETWORK_NAMES
        for key, value in getattr(nets, name).state_dict().items()
    }
    with atomic_path(folder / PORTABLE_NETWORKS) as temporary:
        save_file(tensors, str(temporary))
    save_generator(nets.generator_ema, folder / CANDIDATE)
    summary = {
        "format": "p2c-compact-state/1",
        "step": progress.step,
        "samples": progress.samples,
        "cpu_hours": round(progress.cpu_seconds / 3600, 4),
        "wall_hours": round(progress.wall_seconds / 3600, 4),
        "config": config.objective.to_dict(),
        "run": {k: v for k, v in config.to_dict().items() if k not in ("objective", "data_dir", "out_dir")},
        "sessions": progress.sessions,
    }
    with atomic_write(folder / PORTABLE_JSON) as stream:
        stream.write(json.dumps(summary, indent=2) + "\n")


def read_portable_summary(folder: Path) -> dict[str, Any] | None:
    path = folder / PORTABLE_JSON
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def load_portable_networks(folder: Path, nets: OneSidedNetworks) -> _Progress:
    """Networks from FP16 (cast back to FP32) and the counters; the Adams are not part of it."""
    from safetensors.torch import load_file

    summary = read_portable_summary(folder)
    if summary is None or not (folder / PORTABLE_NETWORKS).is_file():
        raise InputNotFoundError(
            f"{folder} holds no compact training state ({PORTABLE_NETWORKS}, {PORTABLE_JSON})"
        )
    tensors = load_file(str(folder / PORTABLE_NETWORKS))
    for name in NETWORK_NAMES:
        prefix = f"{name}."
        state = {k[len(prefix) :]: v.float() for k, v in tensors.items() if k.startswith(prefix)}
        try:
            getattr(nets, name).load_state_dict(state)
        except RuntimeError as error:
            raise InvalidInputError(
                f"{folder}: {name} does not fit this run's networks ({str(error).splitlines()[0]}); "
                "continue with the configuration in its state.json"
            ) from error
    return _Progress(
        step=summary["step"],
        samples=summary["samples"],
        cpu_seconds=summary["cpu_hours"] * 3600,
        wall_seconds=summary.get("wall_hours", 0.0) * 3600,
        resumed_at=summary["step"],
        sessions=list(summary.get("sessions", [])),
    )


# -- the loop -------------------------------------------------------------------------------------


def _start(
    config: CompactRunConfig, nets: OneSidedNetworks, optimizers: tuple[torch.optim.Adam, torch.optim.Adam]
) -> tuple[_Progress, str]:
    """Resume the full state, else continue a portable one (whichever is further on), else start."""
    full = Path(config.out_dir) / FULL_STATE
    portable = Path(config.init_from) if config.init_from else None
    portable_summary = read_portable_summary(portable) if portable else None
    full_step = -1
    if full.is_file():
        full_step = int(torch.load(full, map_location="cpu", weights_only=True)["progress"]["step"])
    if portable_summary is not None and portable is not None and portable_summary["step"] > full_step:
        return load_portable_networks(portable, nets), f"continued from {portable} (fresh optimisers)"
    if full_step >= 0:
        return _load_full(full, nets, optimizers), f"resumed from {full}"
    return _Progress(), "started"


class _Meter:
    """Mean losses and samples/s since the last log line."""

    def __init__(self) -> None:
        self.reset(time.perf_counter())

    def reset(self, now: float) -> None:
        self.started, self.samples, self.sums, self.count = (
            now,
            0,
            {k: 0.0 for k in ("d", "g_adv", "nce", "faceid")},
            0,
        )

    def add(self, losses: StepLosses, samples: int) -> None:
        for key, value in losses.to_dict().items():
            self.sums[key] += value
        self.count += 1
        self.samples += samples

    def row(self, now: float) -> dict[str, float]:
        elapsed = max(now - self.started, 1e-9)
        means = {k: v / max(self.count, 1) for k, v in self.sums.items()}
        return {**means, "samples_per_s": self.samples / elapsed}


def _append_csv(path: Path, row: dict[str, Any]) -> None:
    new = not path.is_file()
    with path.open("a", encoding="utf-8") as stream:
        if new:
            stream.write(",".join(row) + "\n")
        stream.write(",".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row.values()) + "\n")


def _trim_csv(path: Path, step: int) -> None:
    """Drop metric rows past ``step``: a run resumed from an older state rewrites them."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = lines[:1] + [line for line in lines[1:] if int(line.split(",", 1)[0]) <= step]
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")


def train_compact(config: CompactRunConfig, progress_bar: bool = False) -> RunResult:
    """Train until ``max_steps``, ``cpu_hours`` or a signal; write both states on the way and at the end."""
    torch.set_num_threads(config.threads)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(config.data_dir)
    photos, cartoons = CropBank(data / "trainA", 0), CropBank(data / "trainB", 1)
    torch.manual_seed(config.seed)  # the networks' initial weights
    nets = OneSidedNetworks(config.objective)
    optimizers = _optimizers(nets)
    progress, how = _start(config, nets, optimizers)
    faceid = _faceid(config)
    with atomic_write(out / "config.json") as stream:
        stream.write(json.dumps(config.to_dict(), indent=2) + "\n")
    metrics = out / "metrics.csv"
    _trim_csv(metrics, progress.step)
    log.info(
        "%s at step %d (%d samples, %.2f CPU-hours)",
        how,
        progress.step,
        progress.samples,
        progress.cpu_seconds / 3600,
    )

    session = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{_cpu_name()}, {os.cpu_count()} CPUs, {config.threads} threads",
        "how": how.split(" (")[0].split(" from ")[0],
        "from_step": progress.step,
        "from_samples": progress.samples,
    }
    progress.sessions.append(session)
    stop = _Stop()
    meter = _Meter()
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    base_cpu, base_wall = progress.cpu_seconds, progress.wall_seconds
    last_save = last_sample = wall_start
    bar = _bar(config, progress) if progress_bar else None
    stopped_by = "max_steps"

    def checkpoint() -> None:
        progress.cpu_seconds = base_cpu + time.process_time() - cpu_start
        progress.wall_seconds = base_wall + time.perf_counter() - wall_start
        session.update(
            to_step=progress.step,
            cpu_hours=round((time.process_time() - cpu_start) / 3600, 4),
            samples_per_s=round(_session_rate(progress, session, time.perf_counter() - wall_start), 3),
        )
        _save_full(out / FULL_STATE, config, nets, optimizers, progress)
        if config.state_dir:
            export_portable_state(Path(config.state_dir), config, nets, progress)

    with stop.installed():
        while True:
            if config.max_steps is not None and progress.step >= config.max_steps:
                break
            if config.cpu_hours is not None and time.process_time() - cpu_start >= config.cpu_hours * 3600:
                stopped_by = "cpu_hours"
                break
            if stop.signal:
                stopped_by = stop.signal
                break
            step = progress.step + 1
            size = config.size(step)
            rng = step_generator(config.seed, step)
            real_a = photos.batch(config.seed, step, size, config.batch_size)
            lr = config.objective.lr
            if progress.resumed_at and step - progress.resumed_at <= config.rewarm_steps:
                lr *= (step - progress.resumed_at) / config.rewarm_steps
            _set_lr(optimizers, lr)
            with _autocast(config):
                if step <= config.identity_steps:
                    losses = identity_step(nets, real_a, optimizers[0])
                else:
                    real_b = cartoons.batch(config.seed, step, size, config.batch_size)
                    losses = generator_step(nets, real_a, real_b, *optimizers, rng=rng, faceid=faceid)
            progress.step = step
            progress.samples += config.batch_size
            meter.add(losses, config.batch_size)
            if bar is not None:
                bar.update(1)
            now = time.perf_counter()
            if step % config.log_every == 0:
                cpu = base_cpu + time.process_time() - cpu_start
                row = {
                    "step": step,
                    "samples": progress.samples,
                    "size": size,
                    "cpu_hours": cpu / 3600,
                    **meter.row(now),
                }
                _append_csv(metrics, row)
                log.info(
                    "step %d  %d samples  %d px  %.2f samples/s  D %.3f  G adv %.3f  NCE %.3f  CPU %.3f h",
                    step,
                    progress.samples,
                    size,
                    row["samples_per_s"],
                    row["d"],
                    row["g_adv"],
                    row["nce"],
                    cpu / 3600,
                )
                meter.reset(now)
            if now - last_sample >= config.sample_minutes * 60:
                _write_samples(out, nets, photos, step)
                last_sample = now
            if now - last_save >= config.save_minutes * 60:
                checkpoint()
                last_save = time.perf_counter()
    checkpoint()
    _write_samples(out, nets, photos, progress.step)
    if bar is not None:
        bar.close()
    log.info(
        "stopped (%s) at step %d, %d samples, %.2f CPU-hours",
        stopped_by,
        progress.step,
        progress.samples,
        progress.cpu_seconds / 3600,
    )
    return RunResult(progress.step, progress.samples, progress.cpu_seconds, stopped_by, out)


def _cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _session_rate(progress: _Progress, session: dict[str, Any], wall: float) -> float:
    return (progress.samples - session["from_samples"]) / wall if wall > 0 else 0.0


def _autocast(config: CompactRunConfig) -> torch.autocast:
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.precision == "bf16")


def _faceid(config: CompactRunConfig) -> torch.nn.Module | None:
    if config.objective.weights.faceid <= 0:
        return None
    from p2c.training.faceid import load_faceid

    return load_faceid(config.faceid_weights)


def _bar(config: CompactRunConfig, progress: _Progress) -> Any:
    from tqdm import tqdm

    return tqdm(total=config.max_steps, initial=progress.step, unit="step", dynamic_ncols=True)


@torch.no_grad()
def _write_samples(out: Path, nets: OneSidedNetworks, photos: CropBank, step: int) -> None:
    """Six training photos beside the moving average's cartoons (third-party faces: never commit)."""
    from p2c.training.samples import grid_image, write_png

    batch = torch.stack([photos.plain(i, 256) for i in range(min(6, len(photos)))])
    cartoons = nets.generator_ema(batch).image
    (out / "samples").mkdir(exist_ok=True)
    write_png(out / "samples" / f"step_{step:08d}.png", grid_image([batch, cartoons]))
