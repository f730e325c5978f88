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
    """Issue 19's three runs (live and file 720p, 1 face; live, 4 faces), each three ways: the
    compact and the full generator in p2c's pipeline, and photo2cartoon's way; six frames each."""
    command = [sys.executable, str(SCENARIOS_SCRIPT), str(talking_clip_with_audio), "--tiny"]
    command += ["--runs", "live 720p, 1 face", "file 720p, 1 face", "live 720p, 4 faces"]
    command += ["--paths", "compact", "full", "reference"]
    command += ["--frames", "6", "--out", str(tmp_path), "--backend", "torch", "--device", "cpu"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "pipeline_scenarios.json").read_text())
    rows = {row["name"]: row for row in report["runs"]}
    assert set(rows) == {"live 720p, 1 face", "file 720p, 1 face", "live 720p, 4 faces"}
    assert rows["live 720p, 1 face"]["target_fps"] == 29 and rows["live 720p, 1 face"]["target_p95_ms"] == 66
    for row in rows.values():
        assert row["size"] == [1280, 720] and isinstance(row["targets_met"], bool)
        for path in ("compact", "full", "reference"):
            result_ = row[path]
            frames = result_["frames"]
            assert frames["in"] == 6 and frames["out"] + frames["dropped"] == 6, (row["name"], path, frames)
            assert frames["out"] >= 1 and result_["fps"] > 0 and result_["cpu_ms_per_frame"] > 0
            latency = result_["latency_ms"]
            assert 0 < latency["p50"] <= latency["p95"] <= latency["max"]
            steady = result_["latency_ms_steady"]  # None when all six came within the first second
            assert steady is None or 0 < steady["p50"] <= steady["p95"] <= steady["max"] <= latency["max"]
            if row["mode"] == "file":
                assert frames["dropped"] == 0
        for path in ("compact", "full"):
            stages = row[path]["stages"]
            assert set(stages) == {"source", "tracker", "engine", "compositor", "sink"}
            assert stages["tracker"]["frames"] >= 1 and stages["engine"]["wall_ms_per_frame"] > 0
            assert all("cpu_ms_per_frame" in s and "cores" in s for s in stages.values())
            assert set(row[path]["policy"]) == {"level", "lowered", "changes", "frames_at_level"}
    assert report["machine"]["cpu"] and "torch" in report["machine"]["versions"]
    assert "random tiny" in report["settings"]["weights"]
    table = (tmp_path / "pipeline_scenarios.md").read_text()
    assert "| live 720p, 4 faces | >= 15 fps, p95 <= 150 ms, dropped <= 25% |" in table
    assert "| file 720p, 1 face | compact |" in table
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


def test_latency_past_start_up_leaves_out_the_first_second() -> None:
    benchmarks = str(SCRIPT.parent)
    if benchmarks not in sys.path:
        sys.path.insert(0, benchmarks)  # the scripts import each other by name
    from pipeline_scenarios import _steady_latencies

    arrived = [10.0 + i / 30 for i in range(60)]  # two seconds at 30 fps
    latencies = [0.2] * 30 + [0.05] * 30  # a slow start-up second, then 50 ms
    steady = _steady_latencies(latencies, arrived)
    assert (
        steady is not None and steady["p95"] == pytest.approx(50.0) and steady["max"] == pytest.approx(50.0)
    )
    assert _steady_latencies(latencies[:20], arrived[:20]) is None  # shorter than a second
