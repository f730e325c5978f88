"""The batch benchmark runs 1 and 2 workers on a local Ray with a tiny generator; writes JSON, MD and PNG."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "batch_throughput.py"
SRC = SCRIPT.parents[1] / "src"


@pytest.mark.slow
def test_batch_benchmark_tiny(talking_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The workers Ray starts import this checkout's p2c, like the script itself.
    monkeypatch.setenv("PYTHONPATH", str(SRC))
    monkeypatch.setenv("P2C_CACHE_DIR", str(tmp_path / "cache"))
    command = [sys.executable, str(SCRIPT), "--tiny", "--clip", str(talking_clip), "--out", str(tmp_path)]
    command += ["--backend", "torch", "--device", "cpu", "--batch-size", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "batch_throughput.json").read_text())
    rows = {row["workers"]: row for row in report["rows"]}
    assert set(rows) == {1, 2}
    for workers, row in rows.items():
        assert row["files"] == 4 and row["failed"] == 0  # 2 clips of 0.4 s and 2 stills
        assert row["frames"] == 2 * 10 + 2
        assert row["frames_per_s"] > 0 and row["files_per_s"] > 0 and row["startup_s"] > 0
        assert row["engine_loads"] == [1] * workers and row["engines"] == ["torch fp32 on cpu"]
    assert rows[1]["scaling_efficiency"] == pytest.approx(1.0)
    assert "| 2 | 0 | 4 | 22 |" in (tmp_path / "batch_throughput.md").read_text()
    assert (tmp_path / "batch_throughput.png").stat().st_size > 1000
