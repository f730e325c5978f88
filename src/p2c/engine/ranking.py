"""The order ``auto`` tries the backends in: fastest first, by faces per second measured per device type
and generator architecture (photo2cartoon's, p2c's compact one).

A committed table rather than a measurement at start-up: timing every backend on the user's machine
would cost seconds to minutes (an AOTInductor build alone takes minutes) at every first start, and the
ranking it would find is stable per device type. Each figure names the machine, settings and document it
comes from; a backend nobody has measured on a device type goes after the measured ones, in
:data:`UNMEASURED_ORDER`. Re-rank by re-running ``benchmarks/generator_throughput.py`` and editing
:data:`MEASURED` (``docs/benchmarks.md`` holds the tables these figures come from).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "MEASURED",
    "MEASURED_BY_ARCH",
    "UNMEASURED_ORDER",
    "Measurement",
    "explain_order",
    "measured_for",
    "rank_backends",
]


@dataclass(frozen=True)
class Measurement:
    """Faces per second of one backend on one device type, with where the figure comes from."""

    faces_per_s: float
    setting: str
    source: str


_CPU_SOURCE = (
    "2-core AMD EPYC (AVX2), torch 2.13, interleaved calls, docs/benchmarks/generator_inductor_cpu.json"
)
_H100_SOURCE = "H100 80GB, torch 2.11, numpy in/out, shared/measurements/h100_generator_throughput.json"

MEASURED: dict[str, dict[str, Measurement]] = {
    "cpu": {
        "onnxruntime": Measurement(2.12, "fp32, batch 1", _CPU_SOURCE),
        "inductor": Measurement(1.64, "fp32, batch 1", _CPU_SOURCE),
        "torch": Measurement(1.36, "fp32, batch 1, eager", _CPU_SOURCE),
    },
    "cuda": {
        # AOTInductor compiles the same Inductor kernels that torch.compile runs; its own figure on a GPU
        # is not measured yet, so torch --compile stands in for it.
        "inductor": Measurement(
            978.7, "fp16, batch 64, torch.compile (stand-in for AOTInductor)", _H100_SOURCE
        ),
        "torch": Measurement(265.5, "fp16, batch 8, eager", _H100_SOURCE),
    },
}

_COMPACT_CPU_SOURCE = (
    "2-core AMD EPYC, torch 2.13, onnxruntime 1.32, docs/benchmarks/generator_throughput.json (compact)"
)

# By architecture: photo2cartoon's figures (MEASURED) are no guide to the compact generator's speed.
MEASURED_BY_ARCH: dict[str, dict[str, dict[str, Measurement]]] = {
    "photo2cartoon": MEASURED,
    "compact": {
        "cpu": {
            "onnxruntime": Measurement(114.46, "fp32, batch 1", _COMPACT_CPU_SOURCE),
            "torch": Measurement(56.48, "fp32, batch 1, eager", _COMPACT_CPU_SOURCE),
        },
    },
}


def measured_for(arch: str) -> dict[str, dict[str, Measurement]]:
    """The figures of ``arch`` by device type (photo2cartoon's for an architecture nobody measured)."""
    return MEASURED_BY_ARCH.get(arch, MEASURED)


# Not measured on that device type: tried after the measured ones, in this order.
UNMEASURED_ORDER: dict[str, tuple[str, ...]] = {
    "cpu": ("onnxruntime", "inductor", "torch"),
    "cuda": ("tensorrt", "inductor", "onnxruntime", "torch"),
}

# Backends that cannot run on a device type at all.
_NEVER = {"cpu": frozenset({"tensorrt"}), "cuda": frozenset()}


def rank_backends(device_type: str, names: Iterable[str], arch: str = "photo2cartoon") -> list[str]:
    """``names`` that can run on ``device_type``, fastest measured first (for ``arch``), then the
    unmeasured ones."""
    candidates = [name for name in names if name not in _NEVER.get(device_type, frozenset())]
    measured = measured_for(arch).get(device_type, {})
    fastest = sorted((n for n in candidates if n in measured), key=lambda n: -measured[n].faces_per_s)
    prior = UNMEASURED_ORDER.get(device_type, ())
    rest = sorted(
        (n for n in candidates if n not in measured),
        key=lambda n: prior.index(n) if n in prior else len(prior),
    )
    return fastest + rest


def explain_order(device_type: str, order: Iterable[str], arch: str = "photo2cartoon") -> str:
    """One line saying why ``order`` is what it is, e.g. for the log line of ``auto``; the figures
    are ``arch``'s."""
    measured = measured_for(arch).get(device_type, {})
    parts = []
    for name in order:
        figure = measured.get(name)
        if figure is None:
            parts.append(f"{name} (not measured on {device_type})")
        else:
            parts.append(f"{name} ({figure.faces_per_s:g} faces/s, {figure.setting})")
    sources = sorted({measured[name].source for name in order if name in measured})
    return " > ".join(parts) + (f"; {arch} generator measured on {'; '.join(sources)}" if sources else "")
