"""Progressive resolution (--size-schedule): the size of each step, and a run that switches sizes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from p2c.training.checkpoint import read_checkpoint
from p2c.training.commands.train import main as train_main
from p2c.training.gan import NETWORK_KEYS
from p2c.training.schedule import format_size_schedule, parse_size_schedule, size_at


def test_each_step_gets_its_size_and_the_last_size_runs_on() -> None:
    schedule = parse_size_schedule("128:2, 256:3")
    assert schedule == ((128, 2), (256, 3)) and format_size_schedule(schedule) == "128:2,256:3"
    assert [size_at(schedule, 256, step) for step in range(1, 8)] == [128, 128, 256, 256, 256, 256, 256]
    assert size_at((), 192, 1) == 192
    with pytest.raises(ValueError, match="'128' is not SIZE:STEPS"):
        parse_size_schedule("128")


def _argv(data: Path, out: Path) -> list[str]:
    return [
        "--data", str(data), "--out", str(out), "--iterations", "4", "--size-schedule", "96:2,128:2",
        "--img-size", "128", "--ch", "8", "--batch-size", "1", "--num-workers", "0", "--faceid-weight", "0",
        "--log-every", "1", "--save-every", "100", "--sample-every", "100", "--sample-rows", "1",
    ]  # fmt: skip


@pytest.mark.slow
def test_a_run_switches_size_and_resumes_across_the_switch(train_data: Path, tmp_path: Path) -> None:
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert train_main(_argv(train_data, whole)) == 0
    with (whole / "metrics.csv").open() as handle:
        assert [int(row["crop_size"]) for row in csv.DictReader(handle)] == [96, 96, 128, 128]

    assert train_main([*_argv(train_data, parts), "--stop-after", "2"]) == 0  # stops at the switch
    assert train_main([*_argv(train_data, parts), "--resume"]) == 0
    resumed = read_checkpoint(parts / "checkpoints" / "ckpt_00000004.pt")
    uninterrupted = read_checkpoint(whole / "checkpoints" / "ckpt_00000004.pt")
    assert set(resumed) == set(uninterrupted)  # the checkpoint format does not change
    assert resumed["config"]["size_schedule"] == [[96, 2], [128, 2]]
    for key in NETWORK_KEYS:
        for name, tensor in uninterrupted[key].items():
            assert torch.allclose(resumed[key][name], tensor, atol=1e-6, rtol=0), f"{key}.{name}"
