"""The pipeline benchmark runs end to end with a tiny random generator and writes JSON and a plot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "pipeline_fps.py"


@pytest.mark.slow
def test_pipeline_benchmark_tiny(talking_clip: Path, tmp_path: Path) -> None:
    command = [
        sys.executable,
        str(SCRIPT),
        str(talking_clip),
        "--tiny",
        "--frames",
        "6",
        "--out",
        str(tmp_path),
    ]
    command += ["--batch-size", "2", "--backend", "torch", "--device", "cpu"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "pipeline_fps.json").read_text())
    assert report["frames"] == 6 and report["fps"] > 0 and report["faces"] == 6
    assert {"source", "tracker", "engine", "compositor", "sink"} <= set(report["stage_ms_per_frame"])
    assert report["latency_ms"]["p95"] >= report["latency_ms"]["p50"] > 0
    assert report["flicker"]["pairs"] == 5 and report["flicker"]["ratio"] > 0
    assert report["versions"]["engine"].startswith("torch")
    assert (tmp_path / "pipeline_fps.png").stat().st_size > 1000
