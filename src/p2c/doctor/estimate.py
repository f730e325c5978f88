"""The live frame rate to expect here, from the backends measured now and the last committed profiles.

``docs/benchmarks/issue25/pipeline_scenarios.json`` (written by ``benchmarks/pipeline_scenarios.py``)
holds profiles of the live path with one face at 720p and at 1080p on a known machine: the CPU
milliseconds each stage spends per frame, and the engine's wall time per frame. Here the engine was
just measured; the other stages are scaled by how much faster or slower this machine ran the same
generator (the ratio of the engines' times). A size without its own profile (an older file, issue
19's ``docs/benchmarks/pipeline_scenarios.json``, has 720p only) takes the 720p one, scaled by the
pixel count for the stages that touch every pixel (reading the camera, pasting, the outputs). The
frame rate is then what the machine's cores allow, up to the camera's 30 fps. An estimate to set
expectations, printed as one: ``p2c-stream`` measures the real thing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CHECKOUT", "PROFILES", "LiveEstimate", "estimate_live_fps", "load_profiles"]

# The committed profiles, beside the package in a source checkout: the newest first.
CHECKOUT = Path(__file__).resolve().parents[3]
_BENCHMARKS = CHECKOUT / "docs" / "benchmarks"
PROFILES = (_BENCHMARKS / "issue25" / "pipeline_scenarios.json", _BENCHMARKS / "pipeline_scenarios.json")
_RUNS = {"720p": "live 720p, 1 face", "1080p": "live 1080p, 1 face"}
_CAMERA_FPS = 30.0
# Stages whose work grows with the frame's pixels; the tracker's models see a resized frame.
_PER_PIXEL = ("source", "compositor", "sink")
_SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


@dataclass(frozen=True)
class LiveEstimate:
    """Frames per second expected at ``size`` with one face, and the CPU time per frame behind it;
    ``measured``: from a profile of that size (else the 720p one, scaled)."""

    size: str
    fps: float
    cpu_ms_per_frame: float
    measured: bool = True


def load_profiles(paths: tuple[Path, ...] = PROFILES) -> tuple[dict[str, dict[str, Any]], Path | None]:
    """The compact generator's live profiles by frame size from the first file that has a 720p one,
    and that file (``{}, None`` when none is there: a wheel)."""
    for path in paths:
        try:
            runs = {run.get("name"): run for run in json.loads(path.read_text(encoding="utf-8"))["runs"]}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        profiles = {
            size: runs[name]["compact"] for size, name in _RUNS.items() if "compact" in runs.get(name, {})
        }
        if "720p" in profiles:
            return profiles, path
    return {}, None


def estimate_live_fps(
    faces_per_s: float, profiles: dict[str, dict[str, Any]], cores: int | None = None
) -> list[LiveEstimate]:
    """Expected live fps at 720p and 1080p with one face, the engine running ``faces_per_s`` here;
    ``profiles`` by size, 720p at least."""
    engine_here_ms = 1000.0 / faces_per_s
    cores = cores or os.cpu_count() or 1
    estimates = []
    for size, (width, height) in _SIZES.items():
        measured = size in profiles
        stages = profiles[size if measured else "720p"]["stages"]
        # How much slower (> 1) this machine is than the profile's, judged by the same generator.
        slower = engine_here_ms / max(float(stages["engine"]["wall_ms_per_frame"]), 1e-6)
        pixels = 1.0 if measured else width * height / (1280 * 720)
        other_ms = sum(
            float(stage["cpu_ms_per_frame"]) * (pixels if name in _PER_PIXEL else 1.0)
            for name, stage in stages.items()
            if name != "engine"
        )
        cpu_ms = other_ms * slower + engine_here_ms
        # The stages run in parallel threads; a frame needs its CPU time spread over the cores.
        fps = min(_CAMERA_FPS, cores * 1000.0 / cpu_ms, 1000.0 / engine_here_ms)
        estimates.append(LiveEstimate(size, fps, cpu_ms, measured))
    return estimates
