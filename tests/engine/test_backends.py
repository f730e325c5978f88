"""Every backend against the PyTorch FP32 reference, and the registry that picks one."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from p2c.engine import (
    EngineConfig,
    add_engine_arguments,
    available_backends,
    batch_to_images,
    create_engine,
    engine_config_from_args,
    images_to_batch,
)
from p2c.engine.cache import cache_dir
from p2c.engine.onnx_runtime import OnnxRuntimeBackend
from p2c.engine.registry import create_backend
from p2c.engine.torch_backend import TorchBackend
from p2c.errors import BackendUnavailableError, InvalidInputError, WeightsError
from p2c.models.onnx import export_onnx, onnx_signature
from p2c.models.weights import load_generator


def _reference(weights: Path, batch: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return load_generator(weights)(torch.from_numpy(batch)).image.numpy()


@pytest.mark.slow
def test_onnxruntime_matches_torch_fp32_on_the_full_generator(full_weights: Path, face_batch_256) -> None:
    torch_engine = create_engine(full_weights, EngineConfig(backend="torch", precision="fp32", device="cpu"))
    ort_engine = create_engine(
        full_weights, EngineConfig(backend="onnxruntime", precision="fp32", device="cpu")
    )
    expected, actual = torch_engine.run(face_batch_256), ort_engine.run(face_batch_256)
    assert actual.shape == expected.shape == face_batch_256.shape
    assert actual.dtype == np.float32
    assert float(np.abs(actual - expected).max()) <= 1e-3
    torch_engine.close()
    ort_engine.close()


def test_static_batch_onnx_like_the_released_one_runs_any_batch(
    tiny_weights: Path, tmp_path: Path, face_batch_64
) -> None:
    path = export_onnx(load_generator(tiny_weights), tmp_path / "static.onnx", dynamic_batch=False)
    assert onnx_signature(path).batch == 1
    engine = create_engine(path, EngineConfig(max_batch=8))
    assert engine.name == "onnxruntime"
    output = engine.run(face_batch_64)
    assert output.shape == (3, 3, 64, 64)
    assert np.abs(output - _reference(tiny_weights, face_batch_64)).max() <= 1e-4
    engine.close()


def test_dynamic_export_splits_by_max_batch(tiny_weights: Path, face_batch_64) -> None:
    engine = create_engine(tiny_weights, EngineConfig(backend="onnxruntime", max_batch=2))
    assert np.abs(engine.run(face_batch_64) - _reference(tiny_weights, face_batch_64)).max() <= 1e-4
    engine.close()


def test_torch_fp32_backend_equals_the_module(tiny_weights: Path, face_batch_64) -> None:
    engine = create_engine(tiny_weights, EngineConfig(backend="torch", device="cpu", max_batch=2))
    assert engine.precision == "fp32"
    # Splitting 3 into 2 + 1 changes only the kernels' summation order.
    assert np.abs(engine.run(face_batch_64) - _reference(tiny_weights, face_batch_64)).max() <= 1e-5


@pytest.mark.parametrize(("precision", "min_psnr"), [("fp16", 40.0), ("bf16", 28.0)])
def test_torch_low_precision_on_cpu_stays_close_to_fp32(
    precision: str, min_psnr: float, tiny_weights: Path, face_batch_64, psnr
) -> None:
    try:
        engine = TorchBackend(load_generator(tiny_weights), device="cpu", precision=precision)
    except BackendUnavailableError as error:
        pytest.skip(f"this CPU PyTorch cannot run {precision}: {error}")
    output = engine.run(face_batch_64)
    assert output.dtype == np.float32
    assert psnr(_reference(tiny_weights, face_batch_64), output) >= min_psnr


def test_run_rejects_a_wrong_shape_showing_both(tiny_weights: Path) -> None:
    engine = create_engine(tiny_weights, EngineConfig(backend="onnxruntime"))
    with pytest.raises(
        InvalidInputError, match=r"expected a batch of shape \(N, 3, 64, 64\), got \(2, 64, 64, 3\)"
    ):
        engine.run(np.zeros((2, 64, 64, 3), np.float32))


def test_unknown_backend_name_lists_the_names(tiny_weights: Path) -> None:
    with pytest.raises(ValueError, match="auto, torch, onnxruntime, tensorrt"):
        EngineConfig(backend="openvino")
    with pytest.raises(ValueError, match="auto, torch, onnxruntime, tensorrt"):
        create_backend("openvino", tiny_weights, EngineConfig())


@pytest.mark.parametrize(
    ("field", "value"), [("precision", "int8"), ("device", "gpu"), ("max_batch", 0), ("max_batch", 2.5)]
)
def test_engine_config_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        EngineConfig(**{field: value})


def test_auto_picks_a_working_backend_and_says_which(
    tiny_weights: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="p2c.engine"):
        engine = create_engine(tiny_weights, EngineConfig(device="cpu"))
    assert engine.name in available_backends()
    assert (engine.device, engine.precision) == ("cpu", "fp32")
    assert f"inference backend: {engine.name} on cpu at fp32" in caplog.text
    engine.close()


def test_auto_downgrade_is_logged_at_warning(
    tiny_weights: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: object, **kwargs: object) -> None:
        raise BackendUnavailableError("onnxruntime is switched off for this test")

    monkeypatch.setattr(OnnxRuntimeBackend, "from_weights", unavailable)
    with caplog.at_level(logging.WARNING, logger="p2c.engine"):
        engine = create_engine(tiny_weights, EngineConfig(device="cpu"))
    assert engine.name == "torch"
    assert "switched off for this test" in caplog.text


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_auto_without_any_working_backend_lists_every_reason(tiny_weights: Path) -> None:
    with pytest.raises(BackendUnavailableError) as caught:
        create_engine(tiny_weights, EngineConfig(device="cuda"))
    message = str(caught.value)
    for name in ("tensorrt:", "onnxruntime:", "torch:"):
        assert name in message
    assert 'pip install "p2c[gpu]"' in message


def test_torch_backend_refuses_onnx_weights(tiny_weights: Path, tmp_path: Path) -> None:
    path = export_onnx(load_generator(tiny_weights), tmp_path / "g.onnx")
    with pytest.raises(BackendUnavailableError, match="--backend onnxruntime"):
        create_engine(path, EngineConfig(backend="torch"))


def test_no_weights_and_no_default_model_says_pass_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("p2c.models.weights._DEFAULT_DIR", tmp_path)  # a package without the model
    with pytest.raises(WeightsError, match="--weights PATH"):
        create_engine(None)


def test_onnx_export_is_cached_by_weights_hash(tiny_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = EngineConfig(backend="onnxruntime")
    create_engine(tiny_weights, config).close()

    def no_second_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached export should have been reused")

    monkeypatch.setattr("p2c.models.onnx.export_onnx", no_second_export)
    create_engine(tiny_weights, config).close()
    assert len(list(cache_dir().glob("onnx/tiny-fp32-*.onnx"))) == 1


def test_images_round_trip_through_batches(rng: np.random.Generator) -> None:
    crops = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(3)]
    batch = images_to_batch(crops)
    assert batch.shape == (3, 3, 16, 16)
    assert batch.dtype == np.float32
    assert batch.min() >= -1.0 and batch.max() <= 1.0
    for original, restored in zip(crops, batch_to_images(batch), strict=True):
        assert np.array_equal(original, restored)


def test_images_to_batch_rejects_mixed_sizes() -> None:
    with pytest.raises(InvalidInputError, match="crop 1"):
        images_to_batch([np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8)])


def test_cli_options_build_the_engine_config() -> None:
    parser = add_engine_arguments(argparse.ArgumentParser())
    args = parser.parse_args(
        ["--weights", "w.pt", "--backend", "torch", "--precision", "bf16", "--batch-size", "4"]
    )
    assert args.weights == Path("w.pt")
    assert engine_config_from_args(args) == EngineConfig(backend="torch", precision="bf16", max_batch=4)
    with pytest.raises(SystemExit):
        parser.parse_args(["--batch-size", "0"])


def test_onnx_cache_tells_apart_light_models_of_other_sizes(tmp_path: Path) -> None:
    # A light generator's weights are the same bytes at any image size; only the sidecar differs.
    from p2c.engine.cache import cached_onnx
    from p2c.models.generator import ResnetGenerator
    from p2c.models.weights import save_generator

    (tmp_path / "small").mkdir()
    (tmp_path / "large").mkdir()
    torch.manual_seed(0)
    small = save_generator(ResnetGenerator(ngf=8, img_size=64), tmp_path / "small" / "g", dtype=torch.float32)
    torch.manual_seed(0)
    large = save_generator(
        ResnetGenerator(ngf=8, img_size=128), tmp_path / "large" / "g", dtype=torch.float32
    )
    assert small.read_bytes() == large.read_bytes()
    assert onnx_signature(cached_onnx(small, "fp32")).size == 64
    assert onnx_signature(cached_onnx(large, "fp32")).size == 128


# --- the compact generator: the same backends, the same reference ---------------------------------


def test_compact_torch_and_onnxruntime_fp32_match_the_reference(
    tiny_compact_weights: Path, face_batch_64
) -> None:
    expected = _reference(tiny_compact_weights, face_batch_64)
    for backend in ("torch", "onnxruntime"):
        engine = create_engine(
            tiny_compact_weights, EngineConfig(backend=backend, precision="fp32", device="cpu")
        )
        output = engine.run(face_batch_64)
        engine.close()
        assert output.shape == face_batch_64.shape and output.dtype == np.float32, backend
        assert float(np.abs(output - expected).max()) <= 1e-4, backend


def test_compact_fp16_onnx_stays_close_to_fp32(tiny_compact_weights: Path, face_batch_64, psnr) -> None:
    engine = create_engine(tiny_compact_weights, EngineConfig(backend="onnxruntime", precision="fp16"))
    assert engine.precision == "fp16"
    output = engine.run(face_batch_64)
    engine.close()
    assert output.dtype == np.float32
    assert psnr(_reference(tiny_compact_weights, face_batch_64), output) >= 40.0


def test_the_onnx_cache_tells_the_architectures_apart(tiny_weights: Path, tiny_compact_weights: Path) -> None:
    from p2c.engine.cache import cached_onnx

    photo2cartoon, compact = cached_onnx(tiny_weights, "fp32"), cached_onnx(tiny_compact_weights, "fp32")
    assert photo2cartoon != compact
    assert compact.read_bytes() != photo2cartoon.read_bytes()


def test_onnxruntime_threads_one_for_the_compact_generator_and_as_asked(
    tiny_weights: Path, tiny_compact_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compact generator's calls are too small to split over cores (docs/benchmarks.md)."""
    import os

    monkeypatch.delenv("P2C_ORT_THREADS", raising=False)

    def threads(weights: Path, **config: object) -> int:
        engine = create_engine(weights, EngineConfig(backend="onnxruntime", device="cpu", **config))  # type: ignore[arg-type]
        options = engine._session.get_session_options()  # type: ignore[attr-defined]
        engine.close()
        return int(options.intra_op_num_threads)

    assert threads(tiny_compact_weights) == 1
    assert threads(tiny_weights) in (0, os.cpu_count())  # onnxruntime's own default: one per core
    assert threads(tiny_compact_weights, threads=2) == 2
    with pytest.raises(ValueError, match="threads must be an integer >= 1"):
        EngineConfig(threads=0)
