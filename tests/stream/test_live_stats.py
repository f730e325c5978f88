"""The live path on a clip played as a camera, into --null, reports its counters as JSON.

No timing thresholds here (the machine running CI may be slow or busy): the figures are checked
for being counted and consistent; the targets are measured by benchmarks/pipeline_scenarios.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from p2c.stream.commands import live, video


@pytest.fixture(scope="module")
def tiny_compact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random compact generator at its smallest widths, 256 px, as p2c safetensors."""
    from p2c.models.compact import CompactConfig, CompactGenerator
    from p2c.models.weights import save_generator

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("compact") / "compact_tiny.safetensors"
    generator = CompactGenerator(CompactConfig(widths=(4, 8, 8), blocks=1)).eval()
    save_generator(generator, path, dtype=torch.float32)
    return path


ENGINE = ["--backend", "torch", "--device", "cpu", "--batch-size", "2"]


def test_live_run_into_null_counts_every_frame_and_writes_the_stats(
    talking_clip: Path, tiny_compact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats_path = tmp_path / "live.json"
    argv = ["--camera", str(talking_clip), "--null", "--stats-json", str(stats_path)]
    assert live.main([*argv, "--weights", str(tiny_compact), *ENGINE]) == 0
    err = capsys.readouterr().err
    assert "fps | latency p50" in err and "dropped" in err  # the status line
    report = json.loads(stats_path.read_text())
    frames = report["frames"]
    # Every one of the clip's 78 frames is counted: shown, or dropped (by a queue or by the
    # camera, when it was read too late).
    assert frames["in"] == 78
    assert frames["out"] >= 1 and frames["out"] + frames["dropped"] == frames["in"]
    latency = report["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["max"]
    assert report["fps"] > 0 and report["elapsed_s"] > 0
    assert report["faces"] >= 1 and report["segmentations"] >= 1
    stages = report["stages"]
    assert {"source", "tracker", "engine", "compositor", "sink"} <= set(stages)
    for name in ("tracker", "engine", "compositor"):
        assert stages[name]["frames"] >= 1
        assert stages[name]["wall_ms_per_frame"] > 0 and stages[name]["cpu_ms_per_frame"] >= 0
    assert set(report["policy"]) == {"level", "lowered", "changes"}
    assert report["run"]["outputs"] == ["null"] and report["run"]["size"] == [512, 512]
    assert report["run"]["camera_fps"] == 25.0


def test_a_clip_played_as_a_camera_at_another_rate(
    talking_clip: Path, tiny_compact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats_path = tmp_path / "live.json"
    argv = ["--camera", str(talking_clip), "--null", "--fps", "50", "--loop", "--frames", "100"]
    assert live.main([*argv, "--stats-json", str(stats_path), "--weights", str(tiny_compact), *ENGINE]) == 0
    capsys.readouterr()
    report = json.loads(stats_path.read_text())
    assert report["run"]["camera_fps"] == 50.0
    assert report["frames"]["in"] == 100  # past the clip's 78: it was replayed
    assert report["frames"]["out"] + report["frames"]["dropped"] == 100


def test_p2c_video_into_null_keeps_every_frame(
    talking_clip: Path, tiny_compact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats_path = tmp_path / "file.json"
    argv = [str(talking_clip), "--null", "--duration", "0.6", "--stats-json", str(stats_path)]
    assert video.main([*argv, "--weights", str(tiny_compact), *ENGINE]) == 0
    assert "p2c-video: into null: 15 frames" in capsys.readouterr().err
    report = json.loads(stats_path.read_text())
    assert report["frames"] == {
        "in": 15,
        "out": 15,
        "dropped": 0,
        "late": report["frames"]["late"],
        "damaged": 0,
    }
    assert report["stages"]["tracker"]["frames"] == 15


def test_nothing_to_write_to_is_one_line(tiny_compact: Path, talking_clip: Path, capsys) -> None:
    assert video.main([str(talking_clip), "--weights", str(tiny_compact)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pass OUT, or --virtualcam, --preview or --null" in err
