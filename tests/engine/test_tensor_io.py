"""Tensors in, tensors out: every backend keeps a batch on its device (numpy in -> numpy out as before)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from p2c.engine import EngineConfig, create_engine
from p2c.engine.tensors import backend_device
from p2c.errors import InvalidInputError

CPU_BACKENDS = ["torch", "onnxruntime"]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_a_tensor_batch_comes_back_as_a_float32_tensor_equal_to_the_numpy_result(
    backend: str, tiny_weights: Path, face_batch_64: np.ndarray
) -> None:
    engine = create_engine(tiny_weights, EngineConfig(backend=backend, device="cpu", max_batch=2))
    expected = engine.run(face_batch_64)
    tensor = torch.from_numpy(face_batch_64.copy())
    output = engine.run(tensor)
    assert isinstance(output, torch.Tensor) and output.dtype == torch.float32
    assert output.shape == tensor.shape and output.device == backend_device(engine.device)
    assert output.is_contiguous()
    np.testing.assert_allclose(output.numpy(), expected, atol=1e-5)
    assert torch.equal(tensor, torch.from_numpy(face_batch_64))  # the input is left as it was
    engine.close()


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_a_tensor_in_another_dtype_or_layout_is_accepted(
    backend: str, tiny_weights: Path, face_batch_64: np.ndarray
) -> None:
    engine = create_engine(tiny_weights, EngineConfig(backend=backend, device="cpu"))
    expected = engine.run(face_batch_64)
    channels_last = torch.from_numpy(face_batch_64).double().contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(engine.run(channels_last).numpy(), expected, atol=1e-4)
    engine.close()


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_a_tensor_of_the_wrong_shape_is_refused_showing_both(backend: str, tiny_weights: Path) -> None:
    engine = create_engine(tiny_weights, EngineConfig(backend=backend, device="cpu"))
    with pytest.raises(
        InvalidInputError, match=r"expected a batch of shape \(N, 3, (64|S), (64|S)\), got \(2, 64, 64, 3\)"
    ):
        engine.run(torch.zeros(2, 64, 64, 3))
    with pytest.raises(InvalidInputError, match="floating-point"):
        engine.run(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))
    engine.close()


def test_a_tensor_on_another_device_is_refused_not_copied(tiny_weights: Path) -> None:
    engine = create_engine(tiny_weights, EngineConfig(backend="torch", device="cpu"))
    with pytest.raises(InvalidInputError, match="expected a batch on cpu"):
        engine.run(torch.zeros(1, 3, 64, 64, device="meta"))
    engine.close()


def test_the_backend_device_text_names_a_torch_device() -> None:
    assert backend_device("cuda:0 (cuda-ep)") == torch.device("cuda", 0)
    assert backend_device("cpu") == torch.device("cpu")


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("cuda_graphs", [False, True])
def test_cuda_tensors_stay_on_the_gpu_and_match_the_host_path(
    precision: str, cuda_graphs: bool, tiny_weights: Path, face_batch_64: np.ndarray, psnr
) -> None:
    config = EngineConfig(backend="torch", device="cuda", precision=precision, cuda_graphs=cuda_graphs)
    engine = create_engine(tiny_weights, config)
    host = engine.run(face_batch_64)
    device_batch = torch.from_numpy(face_batch_64).cuda()
    first = engine.run(device_batch)
    kept = first.clone()
    engine.run(device_batch[:1])  # a later call must not overwrite an earlier result
    assert first.device.type == "cuda" and first.dtype == torch.float32
    assert torch.equal(first, kept)
    assert psnr(host, first.cpu().numpy()) >= 60.0
    engine.close()
