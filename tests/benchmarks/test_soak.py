"""The soak script's short run: descriptors and threads do not grow on the live path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


@pytest.mark.slow
def test_a_short_soak_leaks_no_descriptor_and_no_thread(talking_clip: Path, tmp_path: Path) -> None:
    command = [sys.executable, str(SCRIPT), str(talking_clip), "--frames", "300", "--every", "100"]
    command += ["--warm-up", "100", "--backend", "torch", "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "soak.json").read_text())
    assert report["frames"] == 300 and len(report["samples"]) >= 4  # before, 100, 200, after
    flat = report["verdict"]["flat"]
    assert set(flat) >= {"open_fds", "python_threads"} and all(flat.values()), report["samples"]
    assert report["verdict"]["counters_ok"]
    assert (tmp_path / "soak.png").stat().st_size > 1000 and "| frames | RSS MB |" in (
        tmp_path / "soak.md"
    ).read_text()
