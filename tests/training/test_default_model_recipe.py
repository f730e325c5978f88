"""recipes/default_model.sh end to end at a tiny size on CPU: pack, two slices, unpack, ship."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from p2c.training.slice_state import read_slice_state

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "default_model.sh"


@pytest.fixture
def raw_tree(raw_photos: Path, raw_cartoons: Path, shared_cartoons: Path, tmp_path: Path) -> Path:
    """photo2cartoon's raw layout (trainA, trainB, testB) from the session's small raw folders."""
    raw = tmp_path / "raw"
    shutil.copytree(raw_photos, raw / "trainA")
    shutil.copytree(raw_cartoons, raw / "trainB")
    (raw / "testB").mkdir()
    for path in sorted((shared_cartoons.parent / "testB").iterdir())[:3]:
        shutil.copy2(path, raw / "testB" / path.name)
    return raw


def test_the_recipe_runs_every_step_and_ships_a_small_generator(raw_tree: Path, tmp_path: Path) -> None:
    out, ship = tmp_path / "device_out", tmp_path / "ship"
    out.mkdir()
    env = {
        **os.environ,
        "P2C_TINY": "1",
        "P2C_PYTHON": sys.executable,
        "P2C_RAW": str(raw_tree),
        "P2C_DATA": str(tmp_path / "data"),
        "P2C_SPLIT_TEST": "2",
        "P2C_CARRY": str(tmp_path / "carry"),
        "P2C_RUN": str(tmp_path / "run"),
        "P2C_SHIP_DIR": str(ship),
        "P2C_EVAL_OUT": str(tmp_path / "ship_eval"),
        "OUT": str(out),
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(["bash", str(RECIPE), "all"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "start: --resume-from" in done.stderr  # the second slice started as on a fresh machine
    assert sorted(p.name for p in out.iterdir()) == [
        "best_genA2B.json",
        "best_genA2B.safetensors",
        "eval_report.json",
        "metrics.csv",
        "slice.pt.part00",
    ]
    state = read_slice_state(tmp_path / "carry" / "state" / "slice.pt")
    assert state["step"] >= 2
    shipped = ship / "p2c_default.safetensors"
    assert shipped.is_file() and (ship / "p2c_default.json").is_file()
    assert shipped.stat().st_size <= 10_000_000
    report = json.loads((tmp_path / "ship_eval" / "report.json").read_text())
    assert report["reports"][0]["identity_mean"] is not None
