"""recipes/default_model.sh at a tiny size on CPU: pack, the GPU call twice (the second continues
from the state the first returned), unpack, gate, ship (refused, then allowed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from p2c.training.generator_state import read_generator_state

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "default_model.sh"
RETURNED = ["genA2B.safetensors", "genB2A.safetensors", "gpu.log", "results.tar.gz"]


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


def _members(archive: Path) -> set[str]:
    with tarfile.open(archive) as tar:
        return set(tar.getnames())


def test_the_recipe_trains_continues_gates_and_ships_only_a_passed_model(
    raw_tree: Path, talking_clip: Path, tmp_path: Path
) -> None:
    out, runs, state, ship = tmp_path / "device_out", tmp_path / "runs", tmp_path / "state", tmp_path / "ship"
    env = {
        **os.environ,
        "P2C_TINY": "1",
        "P2C_PYTHON": sys.executable,
        "P2C_RAW": str(raw_tree),
        "P2C_DATA": str(tmp_path / "data"),
        "P2C_SPLIT_TEST": "2",
        "P2C_CARRY": str(tmp_path / "carry"),
        "P2C_STATE": str(state),
        "P2C_RUNS": str(runs),
        "P2C_SHIP_DIR": str(ship),
        "P2C_DOCS_DIR": str(tmp_path / "docs"),
        "P2C_CLIPS": str(talking_clip),
        "P2C_GATE_FRAMES": "4",
        "OUT": str(out),
        "OMP_NUM_THREADS": "1",
    }
    (tmp_path / "docs" / "benchmarks").mkdir(parents=True)

    def recipe(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(RECIPE), *args], env={**env, **extra}, capture_output=True, text=True, timeout=900
        )

    done = recipe("pack")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "travels" in done.stderr and (tmp_path / "carry" / "gate" / "astronaut.png").is_file()

    # The first GPU call (with the short benchmark's path, at a tiny size): from scratch.
    done = recipe("gpu", P2C_BENCH="1", P2C_CASES="fast:96:1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == RETURNED
    assert all(p.stat().st_size < 16 * 2**20 for p in out.iterdir())  # what comes back: <= 16 MiB each
    assert "start: from scratch" in (out / "gpu.log").read_text()
    members = _members(out / "results.tar.gz")
    expected = {"state/state.json", "eval/report.json", "gate/gate.json", "bench/training_throughput.json"}
    assert expected <= members
    done = recipe("unpack", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert read_generator_state(state).step == 1
    assert (runs / "candidate" / "genA2B.safetensors").is_file()

    # The second call, as on a fresh machine: it continues from the state the first returned.
    shutil.rmtree(runs / "gpu")
    for path in out.iterdir():
        path.unlink()
    done = recipe("gpu")
    assert done.returncode == 0, done.stderr[-3000:]
    log = (out / "gpu.log").read_text()
    assert f"start: --init-from {state} --d-warmup-steps 2" in log and "discriminators warmed up" in log
    assert "run/d_warmup.csv" in _members(out / "results.tar.gz")
    assert recipe("unpack", str(out)).returncode == 0
    continued = read_generator_state(state)
    assert continued.step == 2 and continued.info["samples_seen"] == 2
    assert [(h["from_step"], h["to_step"]) for h in continued.info["history"]] == [(0, 1), (1, 2)]

    # The gate fails a tiny model, and ship refuses it.
    candidate = runs / "candidate" / "genA2B.safetensors"
    done = recipe("gate")
    assert done.returncode == 1, done.stderr[-3000:]
    report = json.loads((runs / "gate" / "gate.json").read_text())
    assert report["passed"] is False and report["training"]["step"] == 2
    assert talking_clip.name in report["figures"]["flicker"]
    done = recipe("ship")
    assert done.returncode != 0 and "did not pass" in done.stderr and not ship.exists()

    # Had it passed (the report says so for these very weights), ship wants a person's look first.
    report.update(passed=True, checks={name: True for name in report["checks"]})
    (runs / "gate" / "gate.json").write_text(json.dumps(report))
    done = recipe("ship")
    assert done.returncode != 0 and "P2C_GRID_OK=1" in done.stderr and not ship.exists()
    done = recipe("ship", P2C_GRID_OK="1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (ship / "p2c_default.safetensors").read_bytes() == candidate.read_bytes()
    assert (ship / "p2c_default.json").is_file()
    assert (tmp_path / "docs" / "default_model_samples.png").is_file()
    # Other weights than the gated ones are refused.
    other = tmp_path / "other.safetensors"
    shutil.copy(state / "genB2A.safetensors", other)
    shutil.copy(state / "genB2A.json", other.with_suffix(".json"))
    done = recipe("ship", str(other), P2C_GRID_OK="1")
    assert done.returncode != 0 and "other weights" in done.stderr
