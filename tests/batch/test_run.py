"""What stops a batch before Ray starts: one error, and no output folder left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2c.batch import ClusterConfig, WorkerSettings, run_batch
from p2c.errors import InputNotFoundError, OutputError, WeightsError


def test_a_file_that_is_not_a_model_is_refused_before_ray_starts(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in/a.mp4").write_bytes(b"x")
    (tmp_path / "notes.pt").write_text("not weights")
    with pytest.raises(WeightsError, match="is a text file"):
        run_batch(tmp_path / "in", tmp_path / "out", WorkerSettings(weights=tmp_path / "notes.pt"))
    assert not (tmp_path / "out").exists()


def test_no_inputs_and_a_bad_output_are_one_line_errors(tmp_path: Path, tiny_weights: Path) -> None:
    (tmp_path / "empty").mkdir()
    settings = WorkerSettings(weights=tiny_weights)
    with pytest.raises(InputNotFoundError, match="no video or image found"):
        run_batch(tmp_path / "empty", tmp_path / "out", settings, ClusterConfig())
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="is a file; give a folder"):
        run_batch(tmp_path / "empty", tmp_path / "file", settings)
    with pytest.raises(OutputError, match="does not exist; create it first"):
        run_batch(tmp_path / "empty", tmp_path / "missing/out", settings)
