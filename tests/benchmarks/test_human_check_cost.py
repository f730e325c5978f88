"""The human-check cost benchmark runs on the astronaut and writes JSON, MD and PNG."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "human_check.py"


def test_human_check_benchmark_tiny(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "human_check.json").read_text())
    assert report["faces"] == 1
    assert set(report["steps"]) == {"detect_without_checks", "mesh_check", "hog_check", "skin_check"}
    assert all(row["p50_ms"] > 0 for row in report["steps"].values())
    assert "| hog_check |" in (tmp_path / "human_check.md").read_text()
