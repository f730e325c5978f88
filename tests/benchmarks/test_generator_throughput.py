"""The throughput benchmark's --tiny run writes a complete report, of one architecture or several."""

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
    assert report["settings"]["img_size"] == 64 and report["settings"]["arch"] == ["photo2cartoon"]
    [reference] = report["reference"]  # one architecture timed: photo2cartoon's, the default
    [reference_ftz] = report["reference_ftz"]
    assert reference["arch"] == reference_ftz["arch"] == "photo2cartoon"
    assert reference["faces_per_s"] > 0 and reference["iterations"] >= 2
    timed = {(r["backend"], r["precision"], r["batch"]) for r in report["results"]}
    assert {
        ("torch", "fp32", 1),
        ("torch", "fp32", 2),
        ("onnxruntime", "fp32", 1),
        ("onnxruntime", "fp32", 2),
    } <= timed
    for result in report["results"]:
        assert result["arch"] == "photo2cartoon"
        assert result["faces_per_s"] > 0
        assert result["ms_per_batch_p95"] >= result["ms_per_batch_p50"] > 0
        expected_ratio = result["faces_per_s"] / reference["faces_per_s"]
        assert result["speedup_vs_reference"] == pytest.approx(expected_ratio)
        ftz_ratio = result["faces_per_s"] / reference_ftz["faces_per_s"]
        assert result["speedup_vs_reference_ftz"] == pytest.approx(ftz_ratio)
    [duel] = report["head_to_head"]
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


@pytest.mark.slow
def test_tiny_run_of_two_architectures_times_each_against_its_own_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2C_CACHE_DIR", str(tmp_path / "cache"))
    benchmark = _load_benchmark()
    args = ["--tiny", "--arch", "compact", "photo2cartoon", "--out", str(tmp_path), "--faces", "2"]
    args += ["--iterations", "2", "--warmup", "1", "--batch-sizes", "1", "--interleave"]
    assert benchmark.main([*args, "--cases", "torch:fp32", "onnxruntime:fp32"]) == 0

    report = json.loads((tmp_path / "generator_throughput.json").read_text())
    archs = {cost["arch"]: cost for cost in report["archs"]}
    assert list(archs) == ["compact", "photo2cartoon"]  # in the order asked for
    assert archs["compact"]["config"]["widths"] == [4, 8, 8] and archs["photo2cartoon"]["config"]["ngf"] == 8
    assert archs["photo2cartoon"]["gflop_per_face"] > archs["compact"]["gflop_per_face"] > 0
    assert archs["photo2cartoon"]["params"] > archs["compact"]["params"] > 0
    references = {reference["arch"]: reference for reference in report["reference"]}
    assert set(references) == set(archs) == {reference["arch"] for reference in report["reference_ftz"]}
    timed = {(r["arch"], r["backend"], r["precision"], r["batch"]) for r in report["results"]}
    assert timed == {(arch, backend, "fp32", 1) for arch in archs for backend in ("torch", "onnxruntime")}
    for result in report["results"]:
        expected_ratio = result["faces_per_s"] / references[result["arch"]]["faces_per_s"]
        assert result["speedup_vs_reference"] == pytest.approx(expected_ratio)
    for arch, cost in archs.items():
        fastest = max(r["faces_per_s"] for r in report["results"] if r["arch"] == arch)
        assert cost["best_at_batch_1"]["faces_per_s"] == fastest
    assert [(row["arch"], row["batch"]) for row in report["interleaved"]] == [
        ("compact", 1),
        ("photo2cartoon", 1),
    ]
    for row in report["interleaved"]:
        assert set(row["faces_per_s"]) == {"torch fp32", "onnxruntime fp32"}
    assert [duel["arch"] for duel in report["head_to_head"]] == ["compact", "photo2cartoon"]
    assert {a["arch"] for a in report["accuracy"]} == set(archs)

    markdown = (tmp_path / "generator_throughput.md").read_text()
    for arch, cost in archs.items():
        assert f"| {arch} | onnxruntime | fp32 | cpu | host | 1 |" in markdown
        assert f"{arch} ({cost['gflop_per_face']:.3g} GFLOP/face" in markdown
        assert f"Interleaved, {arch}" in markdown
    assert markdown.count("best backend") == 2
    assert (tmp_path / "generator_throughput.png").read_bytes()[:4] == b"\x89PNG"


def test_weights_are_timed_as_their_own_architecture(tiny_weights: Path) -> None:
    benchmark = _load_benchmark()
    assert benchmark._parse_args([]).arch == ["photo2cartoon"]
    assert benchmark._parse_args(["--arch", "compact", "photo2cartoon"]).arch == ["compact", "photo2cartoon"]
    assert benchmark._parse_args(["--weights", str(tiny_weights)]).arch == ["photo2cartoon"]
    with pytest.raises(SystemExit):
        benchmark._parse_args(["--weights", str(tiny_weights), "--arch", "compact", "photo2cartoon"])
    with pytest.raises(SystemExit):
        benchmark._parse_args(["--weights", str(tiny_weights), "--arch", "compact"])


def test_cost_per_face_of_the_full_size_generators(tmp_path: Path) -> None:
    """The figures the issue quotes: 37.3 GFLOP per 256 px face for photo2cartoon's, 1.1 for compact."""
    _load_benchmark()
    from generator_archs import arch_cost, random_weights

    photo2cartoon = arch_cost("photo2cartoon", random_weights("photo2cartoon", False, tmp_path)[0])
    compact = arch_cost("compact", random_weights("compact", False, tmp_path)[0])
    assert (photo2cartoon.img_size, compact.img_size) == (256, 256)
    assert photo2cartoon.gflop_per_face == pytest.approx(37.3, abs=0.05)
    assert compact.gflop_per_face == pytest.approx(1.1, abs=0.05)
    assert photo2cartoon.params > 10 * compact.params
