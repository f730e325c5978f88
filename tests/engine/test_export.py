"""``p2c-export`` end to end on the CPU: ONNX FP32 and FP16, and one-line errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from p2c.engine.export import main
from p2c.engine.onnx_runtime import OnnxRuntimeBackend
from p2c.engine.torch_backend import TorchBackend
from p2c.models.onnx import onnx_signature
from p2c.models.weights import load_generator


def _reference(weights: Path, batch: np.ndarray) -> np.ndarray:
    return TorchBackend(load_generator(weights), device="cpu").run(batch)


def test_export_onnx_fp32_runs_like_torch(tiny_weights: Path, tmp_path: Path, face_batch_64, capsys) -> None:
    out = tmp_path / "p2c.onnx"
    assert main([str(tiny_weights), str(out), "--format", "onnx", "--precision", "fp32"]) == 0
    assert str(out) in capsys.readouterr().out
    signature = onnx_signature(out)
    assert (signature.input_name, signature.output_name, signature.batch, signature.dtype) == (
        "input",
        "output",
        None,
        "float32",
    )
    output = OnnxRuntimeBackend(out).run(face_batch_64)
    assert np.abs(output - _reference(tiny_weights, face_batch_64)).max() <= 1e-4


def test_export_onnx_fp16_stays_close(tiny_weights: Path, tmp_path: Path, face_batch_64, psnr) -> None:
    out = tmp_path / "p2c_fp16.onnx"
    assert main([str(tiny_weights), str(out), "--precision", "fp16"]) == 0
    assert onnx_signature(out).dtype == "float16"
    engine = OnnxRuntimeBackend(out)
    assert engine.precision == "fp16"
    output = engine.run(face_batch_64)
    assert output.dtype == np.float32
    assert psnr(_reference(tiny_weights, face_batch_64), output) >= 40.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p2c_fp16.onnx"]  # no temporary left behind


def test_static_batch_export_fixes_batch_one(tiny_weights: Path, tmp_path: Path) -> None:
    assert main([str(tiny_weights), str(tmp_path / "s.onnx"), "--static-batch"]) == 0
    assert onnx_signature(tmp_path / "s.onnx").batch == 1


def test_fp32_onnx_converts_to_fp16(tiny_weights: Path, tmp_path: Path) -> None:
    main([str(tiny_weights), str(tmp_path / "a.onnx")])
    assert main([str(tmp_path / "a.onnx"), str(tmp_path / "b.onnx"), "--precision", "fp16"]) == 0
    assert onnx_signature(tmp_path / "b.onnx").dtype == "float16"


@pytest.mark.skipif(
    importlib.util.find_spec("torch_tensorrt") is not None and torch.cuda.is_available(),
    reason="checks the error on a machine without Torch-TensorRT or CUDA",
)
def test_tensorrt_without_the_library_is_one_line_exit_2(tiny_weights: Path, tmp_path: Path, capsys) -> None:
    assert (
        main([str(tiny_weights), str(tmp_path / "p2c.ep"), "--format", "tensorrt", "--precision", "fp16"])
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("p2c-export: error: ")
    assert err.count("\n") == 1
    assert not (tmp_path / "p2c.ep").exists()


@pytest.mark.parametrize(
    ("make_args", "expected"),
    [
        (lambda w, t: [str(t / "missing.pt"), str(t / "o.onnx")], "does not exist"),
        (lambda w, t: [str(w), str(t / "no" / "o.onnx")], "does not exist"),
    ],
)
def test_bad_paths_are_one_line_exit_2(
    tiny_weights: Path, tmp_path: Path, capsys, make_args, expected: str
) -> None:
    assert main(make_args(tiny_weights, tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("p2c-export: error: ") and expected in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(("precision", "dtype"), [("fp32", "float32"), ("fp16", "float16")])
def test_export_onnx_of_a_compact_model_runs_like_torch(
    precision: str, dtype: str, tiny_compact_weights: Path, tmp_path: Path, face_batch_64, psnr
) -> None:
    out = tmp_path / f"compact_{precision}.onnx"
    assert main([str(tiny_compact_weights), str(out), "--precision", precision]) == 0
    signature = onnx_signature(out)
    assert (signature.batch, signature.size, signature.dtype) == (None, 64, dtype)
    output = OnnxRuntimeBackend(out).run(face_batch_64)
    expected = _reference(tiny_compact_weights, face_batch_64)
    if precision == "fp32":
        assert np.abs(output - expected).max() <= 1e-4
    else:
        assert psnr(expected, output) >= 40.0


def test_export_onnx_of_the_crisp_output_stages_runs_like_torch(tmp_path: Path, face_batch_64) -> None:
    from p2c.models.compact import CompactConfig, CompactGenerator
    from p2c.models.weights import save_generator

    torch.manual_seed(0)
    config = CompactConfig(img_size=64, widths=(8, 16, 24), blocks=2, expand=2, head="shuffle", sharpen=True)
    weights = save_generator(CompactGenerator(config), tmp_path / "crisp", dtype=torch.float32)
    assert load_generator(weights).config == config
    out = tmp_path / "crisp.onnx"
    assert main([str(weights), str(out), "--precision", "fp32"]) == 0
    output = OnnxRuntimeBackend(out).run(face_batch_64)
    assert np.abs(output - _reference(weights, face_batch_64)).max() <= 1e-4
