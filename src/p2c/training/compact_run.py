"""The compact recipe's training run: resumable exactly on one machine, continued on the next.

Every random draw of a step is a function of ``(seed, step, rank)``
(:func:`p2c.training.onesided.step_generator`, :class:`p2c.training.crops.CropBank`), so a run
resumed from its full state repeats the uninterrupted run exactly; a new machine continues from
the portable state with fresh Adams whose learning rate ramps up over ``rewarm_steps``
(:mod:`p2c.training.compact_state`). With ``processes`` > 1 the ranks average their gradients
(:mod:`p2c.training.process_group`); rank 0 writes the states and the log.

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

from p2c.errors import InvalidInputError
from p2c.files import atomic_write
from p2c.models.weights import save_generator
from p2c.training.compact_state import (
    FULL_STATE,
    RunProgress,
    export_portable_state,
    full_state_step,
    load_full_state,
    load_portable_networks,
    read_portable_summary,
    save_full_state,
)
from p2c.training.crops import CropBank
from p2c.training.dataset import list_images
from p2c.training.identity_contrast import IdentityContrast
from p2c.training.onesided import (
    OneSidedConfig,
    OneSidedNetworks,
    StepLosses,
    generator_step,
    identity_step,
    step_generator,
)
from p2c.training.process_group import SOLO, ProcessGroup, early_signal, spawn
from p2c.training.schedule import parse_size_schedule, size_at

__all__ = ["EXPORTED", "PRECISIONS", "CompactRunConfig", "RunResult", "resolve_precision", "train_compact"]

log = logging.getLogger(__name__)

MIN_SIZE = 64
MIN_PARTS_SIZE = 128
PRECISIONS = ("auto", "bf16", "fp32")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo: bf16 arithmetic in hardware
EXPORTED = "export/p2c_compact.safetensors"  # the generator's moving average, FP16, in the run folder


@dataclass(frozen=True)
class CompactRunConfig:
    """One run of the compact recipe. Steps count identity warm-up steps too."""

    data_dir: str
    out_dir: str
    objective: OneSidedConfig = field(default_factory=OneSidedConfig)
    seed: int = 0
    batch_size: int = 4
    img_size: int = 256
    size_schedule: str = "128:20000"  # steps per size; the last size (img_size) runs the rest
    identity_steps: int = 200
    camera_light: float = 0.0  # the share of photos shown in webcam and video light (camera_light.py)
    rewarm_steps: int = 0  # lr ramp after a continuation; 0 measured closest to an exact resume
    threads: int = 2  # in all: each of the processes gets threads // processes
    processes: int = 2  # data parallel over gloo, each with batch_size crops per step
    # CPU autocast. "auto": bf16 where the CPU computes it natively (AVX-512 BF16 or AMX: 1.5x faster
    # per step than fp32), fp32 elsewhere (on an AVX2-only EPYC bf16 ran 24x slower: 0.23 samples/s
    # against 5.5).
    precision: str = "auto"
    save_minutes: float = 5.0
    log_every: int = 25
    sample_minutes: float = 15.0
    max_steps: int | None = None
    cpu_hours: float | None = None  # stop once this run's processes have used this much CPU time
    state_dir: str | None = None
    init_from: str | None = None
    faceid_weights: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.camera_light <= 1.0:
            raise ValueError(f"camera_light must lie in [0, 1], got {self.camera_light}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0 < self.save_minutes <= 10:
            raise ValueError(f"save_minutes must lie in (0, 10], got {self.save_minutes}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.processes < 1 or self.threads < self.processes:
            raise ValueError(
                f"need processes >= 1 and threads >= processes, got {self.processes} and {self.threads}"
            )
        sizes = [size for size, _ in parse_size_schedule(self.size_schedule)] if self.size_schedule else []
        if self.objective.weights.parts > 0 and min([self.img_size, *sizes]) < MIN_PARTS_SIZE:
            raise ValueError(
                f"part discriminators need crops of at least {MIN_PARTS_SIZE} px (the mouth window is "
                f"a fifth of the crop), got {self.size_schedule or self.img_size}"
            )
        if min([self.img_size, *sizes]) < MIN_SIZE:
            raise ValueError(
                f"crop sizes must be >= {MIN_SIZE} (the half-size discriminator's input), "
                f"got {self.size_schedule or self.img_size}"
            )

    def size(self, step: int) -> int:
        """The crop size of ``step``: the schedule's sizes, then ``img_size`` for the rest (unlike
        ``p2c-train``'s schedules, whose last size runs on, this one's sizes are the small ones)."""
        schedule = parse_size_schedule(self.size_schedule) if self.size_schedule else ()
        if not schedule or step > sum(steps for _, steps in schedule):
            return self.img_size
        return size_at(schedule, self.img_size, step)

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


class _Stop:
    """Set by SIGTERM/SIGINT; the loop ends after the step under way."""

    def __init__(self) -> None:
        self.signal: str | None = early_signal()

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


def _start(
    config: CompactRunConfig, nets: OneSidedNetworks, optimizers: tuple[torch.optim.Adam, torch.optim.Adam]
) -> tuple[RunProgress, str]:
    """Resume the full state, else continue a portable one (whichever is further on), else start."""
    full = Path(config.out_dir) / FULL_STATE
    portable = Path(config.init_from) if config.init_from else None
    summary = read_portable_summary(portable) if portable else None
    full_step = full_state_step(full)
    if (
        portable is not None
        and summary is not None
        and summary["step"] > (full_step if full_step is not None else -1)
    ):
        return load_portable_networks(portable, nets), f"continued from {portable} (fresh optimisers)"
    if full_step is not None:
        return load_full_state(full, nets, optimizers), f"resumed from {full}"
    return RunProgress(), "started"


class _Meter:
    """Mean losses and samples/s since the last log line."""

    def __init__(self) -> None:
        self.reset(time.perf_counter())

    def reset(self, now: float) -> None:
        self.started, self.samples, self.sums, self.count = (
            now,
            0,
            {k: 0.0 for k in StepLosses.__dataclass_fields__},
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
    header = ",".join(row)
    new = not path.is_file()
    if not new:
        lines = path.read_text(encoding="utf-8").splitlines()
        if lines and lines[0] != header:  # a loss was added: old rows keep their columns, padded
            old = lines[0].split(",")
            index = {name: i for i, name in enumerate(old)}
            rows = [line.split(",") for line in lines[1:]]
            padded = [",".join(r[index[k]] if k in index else "" for k in row) for r in rows]
            path.write_text("\n".join([header, *padded]) + "\n", encoding="utf-8")
    with path.open("a", encoding="utf-8") as stream:
        if new:
            stream.write(header + "\n")
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
    _check_data(Path(config.data_dir))  # here, so that a bad folder is one line, not a child's traceback
    if config.processes == 1:
        return _train(SOLO, config, progress_bar)
    spawn(config.processes, _train, (config, progress_bar))
    summary = _read_result(Path(config.out_dir))
    return RunResult(
        summary["step"],
        summary["samples"],
        summary["cpu_seconds"],
        summary["stopped_by"],
        Path(config.out_dir),
    )


def _check_data(data: Path) -> None:
    for domain in ("trainA", "trainB"):
        if not list_images(data / domain):
            raise InvalidInputError(
                f"{data / domain} holds no images (.png, .jpg, .webp); run p2c-prepare-data first"
            )


def _read_result(out: Path) -> dict[str, Any]:
    return json.loads((out / "result.json").read_text(encoding="utf-8"))


def _train(group: ProcessGroup, config: CompactRunConfig, progress_bar: bool) -> RunResult:
    torch.set_num_threads(max(config.threads // config.processes, 1))
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(config.data_dir)
    photos, cartoons = CropBank(data / "trainA", 0, config.camera_light), CropBank(data / "trainB", 1)
    torch.manual_seed(config.seed)  # the networks' initial weights, the same on every rank
    nets = OneSidedNetworks(config.objective)
    optimizers = _optimizers(nets)
    progress, how = _start(config, nets, optimizers)
    faceid = _faceid(config)
    identity = IdentityContrast() if config.objective.weights.identity > 0 else None
    metrics = out / "metrics.csv"
    if group.leader:
        with atomic_write(out / "config.json") as stream:
            stream.write(json.dumps(config.to_dict(), indent=2) + "\n")
        _trim_csv(metrics, progress.step)
        log.info(
            "%s at step %d (%d samples, %.2f CPU-hours), %s",
            how, progress.step, progress.samples, progress.cpu_seconds / 3600,
            resolve_precision(config.precision),
        )  # fmt: skip
    session = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{_cpu_name()}, {os.cpu_count()} CPUs",
        "threads": config.threads,
        "processes": config.processes,
        "precision": resolve_precision(config.precision),
        "how": how.split(" (")[0].split(" from ")[0],
        "from_step": progress.step,
        "from_samples": progress.samples,
    }
    progress.sessions.append(session)
    stop = _Stop()
    meter = _Meter()
    per_step = config.batch_size * group.world
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    base_cpu, base_wall = progress.cpu_seconds, progress.wall_seconds
    last_save = last_sample = wall_start
    bar = _bar(config, progress) if progress_bar and group.leader else None
    stopped_by = "max_steps"

    def checkpoint() -> None:
        session_cpu = group.total(time.process_time() - cpu_start)  # every rank takes part
        if not group.leader:
            return
        progress.cpu_seconds = base_cpu + session_cpu
        progress.wall_seconds = base_wall + time.perf_counter() - wall_start
        session.update(
            to_step=progress.step,
            cpu_hours=round(session_cpu / 3600, 4),
            samples_per_s=round(_session_rate(progress, session, time.perf_counter() - wall_start), 3),
        )
        save_full_state(out / FULL_STATE, config.to_dict(), nets, optimizers, progress)
        (out / "export").mkdir(exist_ok=True)
        save_generator(nets.generator_ema, out / EXPORTED)  # what --weights takes
        if config.state_dir:
            export_portable_state(Path(config.state_dir), config.to_dict(), nets, progress)

    with stop.installed():
        while True:
            now = time.perf_counter()
            over_budget = (
                config.cpu_hours is not None
                and (time.process_time() - cpu_start) * group.world >= config.cpu_hours * 3600
            )
            save_due = group.leader and now - last_save >= config.save_minutes * 60
            signalled, over_budget, save_due = group.agree([stop.signal is not None, over_budget, save_due])
            if save_due:
                checkpoint()
                last_save = time.perf_counter()
            if config.max_steps is not None and progress.step >= config.max_steps:
                break
            if over_budget:
                stopped_by = "cpu_hours"
                break
            if signalled:
                stopped_by = stop.signal or "signal"
                break
            step = progress.step + 1
            size = config.size(step)
            rng = step_generator(config.seed, step, group.rank)
            real_a = photos.batch(config.seed, step, size, config.batch_size, group.rank)
            lr = config.objective.lr
            if progress.resumed_at and step - progress.resumed_at <= config.rewarm_steps:
                lr *= (step - progress.resumed_at) / config.rewarm_steps
            _set_lr(optimizers, lr)
            with _autocast(config):
                if step <= config.identity_steps:
                    losses = identity_step(nets, real_a, optimizers[0], group.average_gradients)
                else:
                    real_b = cartoons.batch(config.seed, step, size, config.batch_size, group.rank)
                    losses = generator_step(
                        nets,
                        real_a,
                        real_b,
                        *optimizers,
                        rng=rng,
                        faceid=faceid,
                        identity=identity,
                        average=group.average_gradients,
                    )
            progress.step = step
            progress.samples += per_step
            meter.add(losses, per_step)
            if bar is not None:
                bar.update(1)
            now = time.perf_counter()
            if group.leader and step % config.log_every == 0:
                cpu = base_cpu + (time.process_time() - cpu_start) * group.world
                row = {
                    "step": step,
                    "samples": progress.samples,
                    "size": size,
                    "cpu_hours": cpu / 3600,
                    **meter.row(now),
                }
                _append_csv(metrics, row)
                log.info(
                    "step %d  %d samples  %d px  %.2f samples/s  D %.3f  G adv %.3f  style %.3f  NCE %.3f  "
                    "colour %.4f  Face ID %.3f  identity %.3f  CPU %.3f h",
                    *(step, progress.samples, size, row["samples_per_s"]),
                    *(row["d"], row["g_adv"], row["style"], row["nce"], row["colour"]),
                    *(row["faceid"], row["identity"], cpu / 3600),
                )
                meter.reset(now)
            if group.leader and now - last_sample >= config.sample_minutes * 60:
                _write_samples(out, nets, photos, step)
                last_sample = now
    checkpoint()
    if bar is not None:
        bar.close()
    result = RunResult(progress.step, progress.samples, progress.cpu_seconds, stopped_by, out)
    if group.leader:
        _write_samples(out, nets, photos, progress.step)
        with atomic_write(out / "result.json") as stream:
            fields = {k: v for k, v in asdict(result).items() if k != "out_dir"}
            stream.write(json.dumps(fields) + "\n")
        log.info(
            "stopped (%s) at step %d, %d samples, %.2f CPU-hours",
            stopped_by, progress.step, progress.samples, progress.cpu_seconds / 3600,
        )  # fmt: skip
    return result


def _cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _session_rate(progress: RunProgress, session: dict[str, Any], wall: float) -> float:
    return (progress.samples - session["from_samples"]) / wall if wall > 0 else 0.0


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU computes bf16 in hardware (Linux flags; elsewhere: assume not)."""
    try:
        flags = cpuinfo.read_text(encoding="utf-8").split()
    except OSError:
        return False
    return any(flag in flags for flag in NATIVE_BF16_FLAGS)


def resolve_precision(precision: str) -> str:
    """``auto`` -> bf16 with native bf16, else fp32; the others as they are."""
    if precision != "auto":
        return precision
    return "bf16" if cpu_has_native_bf16() else "fp32"


def _autocast(config: CompactRunConfig) -> torch.autocast:
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=resolve_precision(config.precision) == "bf16")


def _faceid(config: CompactRunConfig) -> torch.nn.Module | None:
    weights = config.objective.weights
    if weights.faceid <= 0 and weights.identity <= 0:
        return None
    from p2c.training.faceid import load_faceid

    return load_faceid(config.faceid_weights)


def _bar(config: CompactRunConfig, progress: RunProgress) -> Any:
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
