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
    warping = report["flicker"]["warping_error"]  # Lai et al.'s figure, motion compensated
    assert warping["pairs"] == 5 and warping["input_error"] > 0 and warping["ratio"] > 0
    assert "warping error" in (tmp_path / "pipeline_fps.md").read_text()
    assert report["versions"]["engine"].startswith("torch")
    assert (tmp_path / "pipeline_fps.png").stat().st_size > 1000


SCENARIOS_SCRIPT = SCRIPT.with_name("pipeline_scenarios.py")


@pytest.mark.slow
def test_pipeline_scenarios_tiny(talking_clip_with_audio: Path, tmp_path: Path) -> None:
    """720p and 1080p, 1 and 4 faces, ours beside the reference path, on three frames each."""
    command = [sys.executable, str(SCENARIOS_SCRIPT), str(talking_clip_with_audio), "--tiny"]
    command += ["--frames", "3", "--out", str(tmp_path), "--backend", "torch", "--device", "cpu"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "pipeline_scenarios.json").read_text())
    rows = {row["name"]: row for row in report["scenarios"]}
    assert set(rows) == {"720p, 1 face", "720p, 4 faces", "1080p, 1 face", "1080p, 4 faces"}
    for row in rows.values():
        faces = row["faces_in_clip"]
        for path in ("ours", "reference"):
            found = row[path]["faces_per_frame"]
            assert len(found) == 3 and sum(n == faces for n in found) >= 2, (row["name"], path, found)
        assert row["fps_ours"] > 0 and row["fps_reference"] > 0
        assert row["speedup"] == pytest.approx(row["fps_ours"] / row["fps_reference"])
        assert row["size"] == [1280, 720] if row["name"].startswith("720p") else [1920, 1080]
    assert report["machine"]["cpu"] and "torch" in report["machine"]["versions"]
    assert "random tiny" in report["settings"]["weights"]
    assert "| 1080p, 4 faces |" in (tmp_path / "pipeline_scenarios.md").read_text()
    assert (tmp_path / "pipeline_scenarios.png").stat().st_size > 1000


def test_pipeline_scenarios_missing_clip(tmp_path: Path) -> None:
    """A missing clip is one line on stderr and exit code 2, no traceback."""
    command = [
        sys.executable,
        str(SCENARIOS_SCRIPT),
        str(tmp_path / "nope.mp4"),
        "--tiny",
        "--out",
        str(tmp_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "pipeline_scenarios: error: clip" in result.stderr and "Traceback" not in result.stderr
