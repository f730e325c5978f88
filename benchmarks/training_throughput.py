"""Training throughput: one D+G step of photo2cartoon's GAN, per image size, batch and step variant.

Each case builds the six networks (random weights, seed 0), feeds synthetic crops (the data loader
is not what is measured: it waited 2 ms per step in the H100 profile) and, after warm-up (which
includes a CUDA graph's capture or a compilation), times steps with ``torch.cuda.synchronize()``
around each. Per case it reports:

- ``ms_per_step_p50``/``p95``, ``samples_per_s`` (batch / median step), ``steps_per_min``;
- ``peak_memory_gib``: ``torch.cuda.max_memory_allocated`` over the case (CUDA only);
- ``saved_activations_gib``: the most memory held at once by tensors autograd saved for the backward
  pass during one eager step (parameters excluded), on any device: what ``--checkpoint-hourglasses``
  reduces; weights, gradients and Adam moments come on top;
- from ``torch.profiler`` over ``--profile-steps`` steps: ``kernel_launches_per_step`` (CUDA launch
  calls the CPU makes: kernels, graph launches), ``gpu_kernels_per_step`` (kernels the GPU runs),
  ``gpu_busy_fraction`` (time the GPU runs kernels / median step time), and on every device
  ``operator_launches_per_step`` (leaf ATen operators the CPU dispatches: the CPU's analogue of
  kernel launches, and the host work a CUDA graph removes) and ``copies_per_step`` (``aten::copy_``
  calls: casts and layout conversions).

Variants (``p2c.training.step.StepOptions``): ``reference`` is the step as first written (every
speed-up off); ``fast`` is what ``p2c-train`` runs on a GPU (every exact speed-up, fused Adam,
channels-last, the CUDA graph on CUDA); ``fast-eager`` without the graph; ``fast-nchw`` without
channels-last; ``fast-checkpoint`` with ``--checkpoint-hourglasses``; ``compile`` compiles the
generators instead of the graph.

    python benchmarks/training_throughput.py --out out/train-bench --faceid dlib_fp16.safetensors
    python benchmarks/training_throughput.py --tiny --out out/train-bench-tiny       # CPU, ~1 minute

Writes ``training_throughput.json``, ``.md`` and ``.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gc
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from generator_throughput import machine_info
from p2c.models.architectures import is_generator
from p2c.training.config import LossWeights, TrainConfig
from p2c.training.graphs import CompiledOrEager, CudaGraphStep
from p2c.training.step import GanStep, StepOptions, build_networks, resolve_amp
from step_profile import SavedActivations, profile_counts

log = logging.getLogger("p2c.benchmarks.training_throughput")

NAME = "training_throughput"
FACEID_WEIGHT = 10.0  # the default-model recipe's weight (recipes/default_model.sh)
# Every speed-up that keeps the arithmetic, and fused Adam: the base of all variants but the reference.
FAST = StepOptions(
    share_translations=True, freeze_discriminators=True, out_of_place_activations=True, fused_optimizer=True
)


def _graph(cuda: bool) -> str:
    return "cuda" if cuda else "off"


VARIANTS: dict[str, Callable[[bool], StepOptions]] = {
    "reference": lambda cuda: StepOptions(),
    "fast": lambda cuda: dataclasses.replace(FAST, channels_last=True, graph=_graph(cuda)),
    "fast-eager": lambda cuda: dataclasses.replace(FAST, channels_last=True),
    "fast-nchw": lambda cuda: dataclasses.replace(FAST, graph=_graph(cuda)),
    "fast-checkpoint": lambda cuda: dataclasses.replace(
        FAST, channels_last=True, checkpoint_hourglasses=True, graph=_graph(cuda)
    ),
    "compile": lambda cuda: dataclasses.replace(FAST, channels_last=True, graph="compile"),
}
# The issue's targets (an H100, 256 px, Face ID loss on): samples per second.
TARGETS = {256: 60.0, 128: 200.0}
# Leaf operators that only allocate or re-describe memory: no kernel runs for them.
GIB = 1024**3


@dataclass
class Row:
    variant: str
    img_size: int
    ch: int
    batch: int
    amp: str
    channels_last: bool
    graph: str
    checkpoint_hourglasses: bool
    faceid: bool
    iterations: int = 0
    warmup_s: float | None = None
    ms_per_step_p50: float | None = None
    ms_per_step_p95: float | None = None
    samples_per_s: float | None = None
    steps_per_min: float | None = None
    peak_memory_gib: float | None = None
    peak_memory_gib_per_sample: float | None = None
    saved_activations_gib: float | None = None
    saved_activations_gib_per_sample: float | None = None
    kernel_launches_per_step: float | None = None
    gpu_kernels_per_step: float | None = None
    gpu_busy_fraction: float | None = None
    operator_launches_per_step: float | None = None
    copies_per_step: float | None = None
    speedup_vs_reference: float | None = None
    error: str | None = None


# --- one case -------------------------------------------------------------------------------------


def _compiling(module: nn.Module, train_side: bool) -> Any:
    if is_generator(module):
        return CompiledOrEager(torch.compile(module), module, "the generators")
    return module


def _sync(cuda: bool) -> None:
    if cuda:
        torch.cuda.synchronize()


def build_case(
    variant: str, size: int, ch: int, batch: int, amp: torch.dtype | None, device: torch.device, faceid: Any
) -> tuple[Callable[[torch.Tensor, torch.Tensor], Any], GanStep]:
    """(the callable a training loop would call, the eager step underneath)."""
    cuda = device.type == "cuda"
    options = VARIANTS[variant](cuda)
    weights = LossWeights(faceid=FACEID_WEIGHT if faceid is not None else 0.0)
    config = TrainConfig(data_dir="-", out_dir="-", img_size=size, ch=ch, batch_size=batch, weights=weights)
    torch.manual_seed(0)
    network = copy.deepcopy(faceid) if faceid is not None else None
    gan, optimizers = build_networks(config, device, options, amp, network)
    wrap = _compiling if options.graph == "compile" else (lambda module, train_side: module)
    step = GanStep(gan, network, weights, optimizers, amp, device, options, wrap=wrap)
    optimizers.set_lr(config.lr)
    return (CudaGraphStep(step, warmup=2) if options.graph == "cuda" else step), step


class Case:
    """One variant x size x batch: built and warmed up (:meth:`start`), timed one step at a time
    (:meth:`time_step`), then profiled and released (:meth:`finish`). An error ends the case only."""

    def __init__(
        self, variant: str, size: int, batch: int, args: argparse.Namespace, device: torch.device, faceid: Any
    ) -> None:
        self.args, self.device, self.faceid, self.cuda = args, device, faceid, device.type == "cuda"
        self.amp = resolve_amp(args.amp, device)
        self.options = VARIANTS[variant](self.cuda)
        amp_name = str(self.amp).removeprefix("torch.") if self.amp else "none"
        o = self.options
        self.row = Row(
            variant, size, args.ch, batch, amp_name, o.channels_last, o.graph, o.checkpoint_hourglasses,
            faceid is not None,
        )  # fmt: skip
        self.times: list[float] = []
        self._run: Callable[[torch.Tensor, torch.Tensor], Any] | None = None
        self._inputs: tuple[torch.Tensor, torch.Tensor] | None = None

    def _guard(self, work: Callable[[], None]) -> None:
        if self.row.error is not None:
            return
        try:
            work()
        except torch.cuda.OutOfMemoryError:
            self.row.error = "out of memory"
            self._release()
        except Exception as error:  # one failing case must not lose the others' numbers
            text = str(error).strip()
            self.row.error = f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"
            log.exception(
                "case %s %d px batch %d failed", self.row.variant, self.row.img_size, self.row.batch
            )
            self._release()

    def start(self) -> None:
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        self._guard(self._start)

    def _start(self) -> None:
        row = self.row
        run, step = build_case(
            row.variant, row.img_size, row.ch, row.batch, self.amp, self.device, self.faceid
        )
        generator = torch.Generator().manual_seed(1)
        shape = (row.batch, 3, row.img_size, row.img_size)
        real_a, real_b = ((torch.rand(shape, generator=generator) * 2 - 1).to(self.device) for _ in range(2))
        self._run, self._inputs = run, (real_a, real_b)
        started = time.perf_counter()
        for number in range(self.args.warmup):
            if number == 0 and self.options.graph != "compile":  # an eager step (also before a capture)
                meter = SavedActivations(list(step.gan.parameters()))
                with meter.hooks():
                    run(real_a, real_b)
                row.saved_activations_gib = meter.peak / GIB
                row.saved_activations_gib_per_sample = meter.peak / GIB / row.batch
            else:
                run(real_a, real_b)
        _sync(self.cuda)
        row.warmup_s = time.perf_counter() - started

    def time_step(self) -> None:
        self._guard(self._time_step)

    def _time_step(self) -> None:
        assert self._run is not None and self._inputs is not None
        _sync(self.cuda)
        begin = time.perf_counter()
        self._run(*self._inputs)
        _sync(self.cuda)
        self.times.append(time.perf_counter() - begin)

    def finish(self) -> Row:
        self._guard(self._finish)
        self._release()
        log.info("%s", {k: v for k, v in dataclasses.asdict(self.row).items() if v is not None})
        return self.row

    def _finish(self) -> None:
        row, run, inputs = self.row, self._run, self._inputs
        assert run is not None and inputs is not None
        row.iterations = len(self.times)
        p50, p95 = (float(v) for v in np.percentile(self.times, [50, 95]))
        row.ms_per_step_p50, row.ms_per_step_p95 = p50 * 1000, p95 * 1000
        row.samples_per_s, row.steps_per_min = row.batch / p50, 60.0 / p50
        counts = profile_counts(lambda: run(*inputs), self.args.profile_steps, self.cuda)
        kernel_ms = counts.pop("gpu_kernel_ms_per_step")
        for key, value in counts.items():
            setattr(row, key, value)
        if self.cuda and kernel_ms is not None:
            row.gpu_busy_fraction = min(1.0, kernel_ms / row.ms_per_step_p50)
            row.peak_memory_gib = torch.cuda.max_memory_allocated(self.device) / GIB
            row.peak_memory_gib_per_sample = row.peak_memory_gib / row.batch

    def _release(self) -> None:
        self._run = self._inputs = None
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()


def measure_one_by_one(cases: list[Case], args: argparse.Namespace) -> Iterator[Row]:
    """Each case alone: start, ``--iterations`` steps (or ``--budget-s``), finish."""
    for case in cases:
        case.start()
        started = time.perf_counter()
        while len(case.times) < args.iterations and case.row.error is None:
            case.time_step()
            if time.perf_counter() - started > args.budget_s and len(case.times) >= 2:
                break
        yield case.finish()


def measure_interleaved(cases: list[Case], args: argparse.Namespace) -> Iterator[Row]:
    """All cases built first, then timed a step each in turn (ABC ABC ...): on a shared machine a
    busy moment slows every case alike, so their ratios hold. CPU only (one GPU memory for all)."""
    for case in cases:
        case.start()
    for _ in range(args.iterations):
        for case in cases:
            case.time_step()
    for case in cases:
        yield case.finish()


# --- report ---------------------------------------------------------------------------------------


def add_speedups(rows: list[Row]) -> None:
    reference = {(r.img_size, r.batch): r for r in rows if r.variant == "reference" and r.samples_per_s}
    for row in rows:
        base = reference.get((row.img_size, row.batch))
        if base is not None and row.samples_per_s and base.samples_per_s:
            row.speedup_vs_reference = row.samples_per_s / base.samples_per_s


def progressive(rows: list[Row]) -> list[dict[str, Any]]:
    """What ``--size-schedule SMALL:N,LARGE:M`` buys: steps per minute at both sizes (same variant, batch)."""
    found = []
    measured = [r for r in rows if r.steps_per_min]
    for small in measured:
        for large in measured:
            same = (small.variant, small.batch) == (large.variant, large.batch)
            if same and small.img_size < large.img_size:
                ratio = small.steps_per_min / large.steps_per_min  # type: ignore[operator]
                found.append(
                    {
                        "variant": small.variant,
                        "batch": small.batch,
                        "small": small.img_size,
                        "large": large.img_size,
                        "steps_per_min_small": small.steps_per_min,
                        "steps_per_min_large": large.steps_per_min,
                        "speed_ratio": ratio,
                        # The first 30 % of the steps at the small size: the run takes this long instead.
                        "time_with_30_percent_small": 0.3 / ratio + 0.7,
                    }
                )
    return found


def targets(rows: list[Row], device: torch.device) -> dict[str, Any]:
    result: dict[str, Any] = {"applies": device.type == "cuda"}
    for size, goal in TARGETS.items():
        best = max((r.samples_per_s or 0.0 for r in rows if r.img_size == size and r.faceid), default=0.0)
        result[f"{size}px"] = {
            "goal_samples_per_s": goal,
            "best_samples_per_s": best or None,
            "met": best >= goal,
        }
    return result


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Training throughput on {report['device']}",
        "",
        f"torch {report['machine']['versions'].get('torch')}, ch {report['settings']['ch']}, "
        f"Face ID loss {'on' if report['settings']['faceid'] else 'off'}, AMP {report['settings']['amp']}, "
        f"synthetic crops; {report['settings']['note'] or ''}",
        "",
        "| variant | px | batch | graph | channels-last | ms/step p50 | samples/s | vs reference | "
        "peak GiB | saved act. GiB/sample | kernel launches/step | operator launches/step | copies/step "
        "| GPU busy |",
        "| --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["rows"]:
        if r["error"]:
            lines.append(f"| {r['variant']} | {r['img_size']} | {r['batch']} | {r['error']} |")
            continue
        speedup = "-" if r["speedup_vs_reference"] is None else f"{r['speedup_vs_reference']:.2f}x"
        busy = "-" if r["gpu_busy_fraction"] is None else f"{100 * r['gpu_busy_fraction']:.0f} %"
        lines.append(
            f"| {r['variant']} | {r['img_size']} | {r['batch']} | {r['graph']} | "
            f"{'yes' if r['channels_last'] else 'no'} | {_number(r['ms_per_step_p50'])} | "
            f"{_number(r['samples_per_s'], 2)} | {speedup} | {_number(r['peak_memory_gib'], 2)} | "
            f"{_number(r['saved_activations_gib_per_sample'], 3)} | "
            f"{_number(r['kernel_launches_per_step'], 0)} | {_number(r['operator_launches_per_step'], 0)} | "
            f"{_number(r['copies_per_step'], 0)} | {busy} |"
        )
    if report["progressive"]:
        lines += ["", "## Progressive resolution (`--size-schedule`)", ""]
        for p in report["progressive"]:
            lines.append(
                f"- {p['variant']}, batch {p['batch']}: a minute trains {p['steps_per_min_small']:.1f} "
                f"steps at {p['small']} px or {p['steps_per_min_large']:.1f} at {p['large']} px "
                f"({p['speed_ratio']:.2f}x); the first 30 % of a run at {p['small']} px takes it to "
                f"{100 * p['time_with_30_percent_small']:.0f} % of its time."
            )
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report["rows"] if not r["error"]]
    labels = [f"{r['variant']}\n{r['img_size']}px b{r['batch']}" for r in rows]
    x = np.arange(len(rows))
    figure, (speed, launches) = plt.subplots(1, 2, figsize=(max(8, 1.6 * len(rows)), 4.5))
    speed.bar(x, [r["samples_per_s"] for r in rows], color="tab:blue")
    speed.set_xticks(x, labels, fontsize=7, rotation=30, ha="right")
    speed.set_ylabel("samples per second")
    key = "kernel_launches_per_step" if report["device_type"] == "cuda" else "operator_launches_per_step"
    launches.bar(x, [r[key] or 0 for r in rows], color="tab:orange")
    launches.set_xticks(x, labels, fontsize=7, rotation=30, ha="right")
    launches.set_ylabel(key.replace("_", " "))
    figure.suptitle(f"one D+G training step, {report['device']}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


# --- command line ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--tiny", action="store_true", help="ch 8, 96 px, batch 1, few steps: a CPU smoke run"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=None)
    parser.add_argument("--img-sizes", nargs="+", type=int, default=None)
    parser.add_argument("--batches", nargs="+", type=int, default=None)
    parser.add_argument(
        "--cases", nargs="+", default=None, metavar="VARIANT:SIZE:BATCH", help="instead of the grid"
    )
    parser.add_argument("--ch", type=int, default=None)
    parser.add_argument("--amp", choices=("auto", "bf16", "fp16", "none"), default="auto")
    parser.add_argument("--faceid", default="none", help="Face ID weights (e.g. the FP16 dlib copy), or none")
    parser.add_argument("--warmup", type=int, default=None, help="steps before timing (a graph needs 3)")
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--profile-steps", type=int, default=1)
    parser.add_argument("--budget-s", type=float, default=60.0, help="per case, after warm-up")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--interleave", action="store_true", help="CPU: time the cases a step each in turn (a busy machine)"
    )
    parser.add_argument("--note", default="", help="what the JSON and table should say about the machine")
    return parser


def _cases(args: argparse.Namespace, cuda: bool) -> list[tuple[str, int, int]]:
    if args.cases:
        cases = []
        for text in args.cases:
            variant, size, batch = text.split(":")
            if variant not in VARIANTS:
                raise SystemExit(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
            cases.append((variant, int(size), int(batch)))
        return cases
    default_variants = ["reference", "fast", "fast-checkpoint"] + (["fast-nchw"] if cuda else [])
    variants = args.variants or default_variants
    sizes = args.img_sizes or ([96] if args.tiny else [256, 128])
    batches = args.batches or ([1] if args.tiny else [8, 16, 32])
    return [(v, s, b) for s in sizes for b in batches for v in variants]


def run(args: argparse.Namespace, on_case: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Every case; ``on_case(report so far)`` after each, so that a run cut short keeps its numbers."""
    from p2c.devices import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    args.ch = args.ch or (8 if args.tiny else 32)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 4)
    args.iterations = args.iterations or (2 if args.tiny else 10)
    faceid = None
    if args.faceid != "none":
        from p2c.training.faceid import load_faceid

        faceid = load_faceid(args.faceid, "cpu")
    machine = machine_info()
    name = torch.cuda.get_device_name(device) if cuda else f"CPU: {machine['cpu']}"
    if args.interleave and cuda:
        raise SystemExit("--interleave is for CPUs: on a GPU the cases would share its memory")
    cases = [Case(v, s, b, args, device, faceid) for v, s, b in _cases(args, cuda)]
    measured = measure_interleaved(cases, args) if args.interleave else measure_one_by_one(cases, args)
    rows: list[Row] = []
    report: dict[str, Any] = {}
    for row in measured:
        rows.append(row)
        report = _report(rows, args, device, name, machine, faceid is not None)
        if on_case is not None:
            on_case(report)
    return report


def _report(
    rows: list[Row], args: argparse.Namespace, device: torch.device, name: str, machine: Any, faceid: bool
) -> dict[str, Any]:
    add_speedups(rows)
    return {
        "device": f"{name} ({args.note})" if args.note else name,
        "device_type": device.type,
        "machine": machine,
        "settings": {
            "ch": args.ch,
            "amp": args.amp,
            "faceid": args.faceid if faceid else None,
            "faceid_weight": FACEID_WEIGHT if faceid else 0.0,
            "warmup": args.warmup,
            "iterations": args.iterations,
            "profile_steps": args.profile_steps,
            "interleaved": args.interleave,
            "threads": torch.get_num_threads(),
            "note": args.note,
        },
        "rows": [dataclasses.asdict(r) for r in rows],
        "progressive": progressive(rows),
        "targets": targets(rows, device),
    }


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    from p2c.files import atomic_write

    args.out.mkdir(parents=True, exist_ok=True)

    def write(report: dict[str, Any]) -> None:
        with atomic_write(args.out / f"{NAME}.json") as stream:
            json.dump(report, stream, indent=2)
            stream.write("\n")
        with atomic_write(args.out / f"{NAME}.md") as stream:
            stream.write(markdown(report))

    report = run(args, on_case=write)
    plot(report, args.out / f"{NAME}.png")
    print(markdown(report), end="")
    print(f"wrote {args.out / NAME}.json, .md and .png", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from p2c.cli import run_command

    return run_command(_main, argv, prog="training_throughput")


if __name__ == "__main__":
    sys.exit(main())
