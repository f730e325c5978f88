"""The throughput benchmark's --tiny run writes a complete report."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load_benchmark():  # benchmarks/ is a folder of scripts, not an installed package
    if str(REPO / "benchmarks") not in sys.path:
        sys.path.insert(0, str(REPO / "benchmarks"))  # the scripts import each other by name
    spec = importlib.util.spec_from_file_location(
        "generator_throughput", REPO / "benchmarks" / "generator_throughput.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_tiny_run_reports_every_backend_against_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2C_CACHE_DIR", str(tmp_path / "cache"))
    benchmark = _load_benchmark()
    args = ["--tiny", "--out", str(tmp_path), "--iterations", "2", "--warmup", "1", "--faces", "2"]
    assert benchmark.main([*args, "--precisions", "fp32", "fp16"]) == 0

    report = json.loads((tmp_path / "generator_throughput.json").read_text())
    assert report["machine"]["cpu"] and report["machine"]["versions"]["torch"]
    assert report["settings"]["img_size"] == 64
    assert report["reference"]["faces_per_s"] > 0 and report["reference"]["iterations"] >= 2
    timed = {(r["backend"], r["precision"], r["batch"]) for r in report["results"]}
    assert {
        ("torch", "fp32", 1),
        ("torch", "fp32", 2),
        ("onnxruntime", "fp32", 1),
        ("onnxruntime", "fp32", 2),
    } <= timed
    for result in report["results"]:
        assert result["faces_per_s"] > 0
        assert result["ms_per_batch_p95"] >= result["ms_per_batch_p50"] > 0
        expected_ratio = result["faces_per_s"] / report["reference"]["faces_per_s"]
        assert result["speedup_vs_reference"] == pytest.approx(expected_ratio)
        ftz_ratio = result["faces_per_s"] / report["reference_ftz"]["faces_per_s"]
        assert result["speedup_vs_reference_ftz"] == pytest.approx(ftz_ratio)
    duel = report["head_to_head"]
    assert duel["rounds"] >= 3 and duel["speedup_per_face"] > 0
    assert duel["speedup_per_face"] == pytest.approx(
        duel["reference_ms_per_face_p50"] / duel["ms_per_face_p50"]
    )
    assert duel["speedup_per_face_vs_reference_ftz"] > 0
    accuracy = {(a["backend"], a["precision"]): a for a in report["accuracy"]}
    assert accuracy[("onnxruntime", "fp32")]["max_abs_error"] <= 1e-3
    assert accuracy[("onnxruntime", "fp16")]["psnr_db"] >= 40
    assert "| backend | precision |" in (tmp_path / "generator_throughput.md").read_text()
    assert (tmp_path / "generator_throughput.png").read_bytes()[:4] == b"\x89PNG"
