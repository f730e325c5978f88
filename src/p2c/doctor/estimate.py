"""The live frame rate to expect here, from the backends measured now and the last committed profile.

``docs/benchmarks/pipeline_scenarios.json`` (written by ``benchmarks/pipeline_scenarios.py``) holds
a profile of the live path at 720p with one face on a known machine: the CPU milliseconds each stage
spends per frame, and the engine's wall time per frame. Here the engine was just measured; the other
stages are scaled by how much faster or slower this machine ran the same generator (the ratio of
the engine's times), and by the pixel count for the stages that touch every pixel (reading the
camera, pasting, the outputs) at 1080p. The frame rate is then what the machine's cores allow, up
to the camera's 30 fps. An estimate to set expectations, printed as one: ``p2c-stream`` measures
the real thing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PROFILE", "LiveEstimate", "estimate_live_fps", "load_profile"]

# The committed profile, beside the package in a source checkout.
PROFILE = Path(__file__).resolve().parents[3] / "docs" / "benchmarks" / "pipeline_scenarios.json"
_RUN = "live 720p, 1 face"
_CAMERA_FPS = 30.0
# Stages whose work grows with the frame's pixels; the tracker's models see a resized frame.
_PER_PIXEL = ("source", "compositor", "sink")
_SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


@dataclass(frozen=True)
class LiveEstimate:
    """Frames per second expected at ``size`` with one face, and the CPU time per frame behind it."""

    size: str
    fps: float
    cpu_ms_per_frame: float


def load_profile(path: Path = PROFILE) -> dict[str, Any] | None:
    """The compact generator's live 720p profile, or None when the file is not there (a wheel)."""
    try:
        runs = json.loads(path.read_text(encoding="utf-8"))["runs"]
    except (OSError, ValueError, KeyError):
        return None
    for run in runs:
        if run.get("name") == _RUN and "compact" in run:
            profile: dict[str, Any] = run["compact"]
            return profile
    return None


def estimate_live_fps(
    faces_per_s: float, profile: dict[str, Any], cores: int | None = None
) -> list[LiveEstimate]:
    """Expected live fps at 720p and 1080p with one face, the engine running ``faces_per_s`` here."""
    stages = profile["stages"]
    engine_here_ms = 1000.0 / faces_per_s
    # How much slower (> 1) this machine is than the profile's, judged by the same generator.
    slower = engine_here_ms / max(float(stages["engine"]["wall_ms_per_frame"]), 1e-6)
    cores = cores or os.cpu_count() or 1
    estimates = []
    for size, (width, height) in _SIZES.items():
        pixels = width * height / (1280 * 720)
        other_ms = sum(
            float(stage["cpu_ms_per_frame"]) * (pixels if name in _PER_PIXEL else 1.0)
            for name, stage in stages.items()
            if name != "engine"
        )
        cpu_ms = other_ms * slower + engine_here_ms
        # The stages run in parallel threads; a frame needs its CPU time spread over the cores.
        fps = min(_CAMERA_FPS, cores * 1000.0 / cpu_ms, 1000.0 / engine_here_ms)
        estimates.append(LiveEstimate(size, fps, cpu_ms))
    return estimates
