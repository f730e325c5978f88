"""The paste quality benchmark runs on the astronaut with the shipped model and writes JSON, MD and PNG."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "paste_quality.py"


def test_paste_quality_benchmark_tiny(tmp_path: Path) -> None:
    from p2c.models.weights import default_weights_path

    if default_weights_path() is None:
        pytest.skip("no default model ships yet")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "paste_quality.json").read_text())
    (face,) = report["faces"]
    assert face["set"] == "astronaut" and report["summary"]["all"]["faces"] == 1
    for when in ("before", "after"):
        assert face[when]["halo_pixels"] > 500 and face[when]["body_profiles"] > 50
        assert face[when]["cpu_ms"] > 0
    assert "| astronaut | 1 |" in (tmp_path / "paste_quality.md").read_text()
    assert (tmp_path / "paste_quality.png").stat().st_size > 0
