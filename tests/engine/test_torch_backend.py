"""The torch backend's speed features: channels_last, torch.compile, CUDA graphs and pinned buffers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from p2c.engine.cuda_graphs import bucket_for, buckets_up_to
from p2c.engine.torch_backend import TorchBackend
from p2c.errors import BackendUnavailableError
from p2c.models.weights import load_generator

needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU; this machine has none"
)


def _reference(weights: Path, batch: np.ndarray) -> np.ndarray:
    return TorchBackend(load_generator(weights), device="cpu", precision="fp32").run(batch)


def test_channels_last_on_cpu_gives_the_same_images(tiny_weights: Path, face_batch_64) -> None:
    engine = TorchBackend(load_generator(tiny_weights), device="cpu", channels_last=True)
    assert np.abs(engine.run(face_batch_64) - _reference(tiny_weights, face_batch_64)).max() <= 1e-4


@pytest.mark.slow
def test_compile_option_compiles_and_keeps_outputs(
    tiny_weights: Path, face_batch_64, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Inductor needs minutes on a 2-core CPU; dynamo's "eager" backend still traces the whole generator,
    # which is where an unsupported construct would fail.
    compiled = []
    real_compile = torch.compile

    def eager_compile(module: torch.nn.Module, **kwargs: object) -> object:
        compiled.append(module)
        return real_compile(module, backend="eager", **kwargs)

    monkeypatch.setattr(torch, "compile", eager_compile)
    engine = TorchBackend(load_generator(tiny_weights), device="cpu", compile=True)
    output = engine.run(face_batch_64)
    assert len(compiled) == 1
    assert np.abs(output - _reference(tiny_weights, face_batch_64)).max() <= 1e-5


def test_cuda_graphs_without_cuda_is_refused(tiny_weights: Path) -> None:
    with pytest.raises(BackendUnavailableError, match="CUDA graphs need a CUDA device"):
        TorchBackend(load_generator(tiny_weights), device="cpu", cuda_graphs=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_device_without_cuda_says_use_cpu(tiny_weights: Path) -> None:
    with pytest.raises(BackendUnavailableError, match="--device cpu"):
        TorchBackend(load_generator(tiny_weights), device="cuda")


@pytest.mark.parametrize(
    ("count", "max_batch", "bucket"), [(1, 8, 1), (3, 8, 4), (5, 8, 8), (8, 8, 8), (5, 6, 6)]
)
def test_batches_are_padded_to_the_next_captured_size(count: int, max_batch: int, bucket: int) -> None:
    assert bucket_for(count, max_batch) == bucket
    assert bucket in buckets_up_to(max_batch)


def test_buckets_cover_every_batch_up_to_the_largest() -> None:
    assert buckets_up_to(8) == [1, 2, 4, 8]
    assert buckets_up_to(6) == [1, 2, 4, 6]


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_cuda_low_precision_stays_close_to_fp32(
    precision: str, tiny_weights: Path, face_batch_64, psnr
) -> None:
    engine = TorchBackend(load_generator(tiny_weights), device="cuda", precision=precision)
    assert psnr(_reference(tiny_weights, face_batch_64), engine.run(face_batch_64)) >= 35.0


@pytest.mark.gpu
@needs_cuda
def test_cuda_graphs_replay_matches_eager_for_every_batch_size(tiny_weights: Path, face_batch_64) -> None:
    eager = TorchBackend(load_generator(tiny_weights), device="cuda", precision="fp16", max_batch=4)
    graphs = TorchBackend(
        load_generator(tiny_weights), device="cuda", precision="fp16", max_batch=4, cuda_graphs=True
    )
    batch = np.concatenate([face_batch_64, face_batch_64[::-1]])  # 6 = 4 + 2, then 3 padded to 4
    for sample in (batch, face_batch_64, face_batch_64[:1]):
        assert np.abs(graphs.run(sample) - eager.run(sample)).max() <= 2e-3
    assert sorted(graphs._graphs) == [(1, 64), (2, 64), (4, 64)]


@pytest.mark.gpu
@needs_cuda
def test_cuda_results_do_not_alias_the_reused_pinned_buffer(tiny_weights: Path, face_batch_64) -> None:
    engine = TorchBackend(load_generator(tiny_weights), device="cuda", precision="fp32")
    first = engine.run(face_batch_64[:1])
    kept = first.copy()
    engine.run(face_batch_64[1:2])
    assert np.array_equal(first, kept)
    assert engine._pinned[64][0].is_pinned()
