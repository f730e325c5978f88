"""The training benchmark's --tiny run (CPU) writes its JSON, table and plot, with honest CPU counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "training_throughput.py"


@pytest.mark.slow
def test_tiny_run_reports_each_variant_with_launch_counts(tmp_path: Path) -> None:
    command = [sys.executable, str(SCRIPT), "--tiny", "--out", str(tmp_path), "--iterations", "1"]
    command += ["--device", "cpu", "--threads", "1", "--note", "test"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads((tmp_path / "training_throughput.json").read_text())
    assert report["device"].startswith("CPU: ") and report["device"].endswith("(test)")
    rows = {row["variant"]: row for row in report["rows"]}
    assert set(rows) == {"reference", "fast", "fast-checkpoint"}
    for row in rows.values():
        assert row["error"] is None
        assert (row["img_size"], row["ch"], row["batch"]) == (96, 8, 1)
        assert row["samples_per_s"] > 0 and row["ms_per_step_p50"] > 0
        # No CUDA on a CPU: no kernel launches or GPU memory are made up; operators are counted.
        assert row["kernel_launches_per_step"] is None and row["peak_memory_gib"] is None
        assert row["operator_launches_per_step"] > 1000 and row["copies_per_step"] > 0
    assert rows["reference"]["speedup_vs_reference"] == pytest.approx(1.0)
    # The fast step does fewer operators (no second pass of the generators in the D step) ...
    assert rows["fast"]["operator_launches_per_step"] < 0.95 * rows["reference"]["operator_launches_per_step"]
    # ... and checkpointed hourglasses keep less for the backward pass.
    assert rows["fast-checkpoint"]["saved_activations_gib"] < 0.8 * rows["fast"]["saved_activations_gib"]
    assert "| variant | px | batch |" in (tmp_path / "training_throughput.md").read_text()
    assert (tmp_path / "training_throughput.png").read_bytes()[:4] == b"\x89PNG"
