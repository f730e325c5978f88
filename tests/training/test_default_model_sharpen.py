"""recipes/default_model.sh sharpen: the candidate with its unsharp amount set, for the gate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from p2c.models.compact import CompactConfig, CompactGenerator
from p2c.models.weights import load_generator, save_generator

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "default_model.sh"
TINY = CompactConfig(widths=(4, 8, 8), blocks=1)


def _recipe(runs: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "P2C_RUNS": str(runs), "P2C_PYTHON": sys.executable}
    return subprocess.run(["bash", str(RECIPE), *args], env=env, capture_output=True, text=True, timeout=120)


def _candidate(runs: Path, config: CompactConfig) -> Path:
    folder = runs / "candidate"
    folder.mkdir(parents=True)
    save_generator(CompactGenerator(config), folder / "genA2B.safetensors")
    (folder / "state.json").write_text(json.dumps({"step": 7}))
    return folder


def test_the_sharpened_candidate_loads_with_the_amount_and_says_so(tmp_path: Path) -> None:
    _candidate(tmp_path, CompactConfig(widths=(4, 8, 8), blocks=1, sharpen=True))
    done = _recipe(tmp_path, "sharpen", "1.3")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "candidate_sharpen"
    generator = load_generator(out / "genA2B.safetensors")
    assert isinstance(generator, CompactGenerator)
    assert torch.allclose(generator.sharpen_amount.float(), torch.full((1, 3, 1, 1), 1.3), atol=1e-3)
    assert json.loads((out / "genA2B.json").read_text())["sharpen_amount_set"] == 1.3
    assert json.loads((out / "state.json").read_text())["step"] == 7


def test_weights_without_the_stage_get_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    _candidate(tmp_path, TINY)
    done = _recipe(tmp_path, "sharpen", "1.3")
    assert done.returncode != 0
    assert "no sharpening stage" in done.stderr and "Traceback" not in done.stderr
    assert _recipe(tmp_path, "sharpen").returncode != 0  # no amount named


def test_the_pilot_report_scores_a_sharpened_copy_only_where_there_is_a_stage() -> None:
    sys.path.insert(0, str(RECIPE.parent))
    try:
        from pilot_report import with_amount  # recipes/pilot_report.py
    finally:
        sys.path.remove(str(RECIPE.parent))
    sharpened = with_amount(CompactGenerator(CompactConfig(widths=(4, 8, 8), blocks=1, sharpen=True)), 1.6)
    assert isinstance(sharpened, CompactGenerator)
    assert torch.equal(sharpened.sharpen_amount, torch.full((1, 3, 1, 1), 1.6))
    assert with_amount(CompactGenerator(TINY), 1.6) is None
