"""The TensorRT engine cache (tested without TensorRT) and the backend (skipped without it)."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import pytest
import torch

from p2c.engine import EngineConfig, create_engine
from p2c.engine.tensorrt import EngineCache, engine_fields
from p2c.errors import MissingDependencyError

VERSIONS = {"torch": "2.13.0", "torch_tensorrt": "2.13.0", "tensorrt": "10.9", "cuda": "12.8"}
GPU = {"name": "NVIDIA H100 80GB HBM3", "capability": "9.0"}
has_torch_tensorrt = importlib.util.find_spec("torch_tensorrt") is not None


def _fields(**changes: object) -> dict[str, object]:
    arguments: dict[str, object] = {
        "weights_digest": "ab" * 32,
        "img_size": 256,
        "precision": "fp16",
        "versions": VERSIONS,
        "gpu": GPU,
    }
    arguments.update(changes)
    return engine_fields(**arguments)  # type: ignore[arg-type]


class FakeCompiler:
    """Stands in for Torch-TensorRT: 'engines' are strings written to text files."""

    def __init__(self) -> None:
        self.builds = 0

    def build(self) -> str:
        self.builds += 1
        return f"engine #{self.builds}"

    @staticmethod
    def save(engine: str, path: Path) -> None:
        path.write_text(engine)

    @staticmethod
    def load(path: Path) -> str:
        text = path.read_text()
        if not text.startswith("engine"):
            raise RuntimeError("corrupt engine")
        return text


def _get(cache: EngineCache, compiler: FakeCompiler, fields: dict[str, object]) -> str:
    return cache.get_or_build("model-fp16", fields, compiler.build, compiler.save, compiler.load)


@pytest.mark.parametrize(
    "change",
    [
        {"weights_digest": "cd" * 32},
        {"img_size": 128},
        {"precision": "fp32"},
        {"versions": {**VERSIONS, "tensorrt": "10.10"}},
        {"versions": {**VERSIONS, "torch": "2.14.0"}},
        {"gpu": {**GPU, "name": "NVIDIA H200"}},
        {"gpu": {**GPU, "capability": "8.9"}},
        {"batch_range": (1, 8, 16)},
    ],
)
def test_every_field_that_invalidates_an_engine_changes_its_path(
    tmp_path: Path, change: dict[str, object]
) -> None:
    cache = EngineCache(tmp_path)
    assert cache.paths("m", _fields()) != cache.paths("m", _fields(**change))


def test_key_does_not_depend_on_field_order(tmp_path: Path) -> None:
    reordered = _fields(versions=dict(reversed(list(VERSIONS.items()))))
    assert EngineCache(tmp_path).paths("m", reordered) == EngineCache(tmp_path).paths("m", _fields())


def test_engine_is_built_once_then_loaded(tmp_path: Path) -> None:
    cache, compiler = EngineCache(tmp_path), FakeCompiler()
    assert _get(cache, compiler, _fields()) == "engine #1"
    assert _get(cache, compiler, _fields()) == "engine #1"
    assert compiler.builds == 1
    engine_path, record_path = cache.paths("model-fp16", _fields())
    assert json.loads(record_path.read_text())["gpu"] == GPU
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([engine_path.name, record_path.name])


def test_new_weights_rebuild_and_remove_the_stale_engine(tmp_path: Path) -> None:
    cache, compiler = EngineCache(tmp_path), FakeCompiler()
    _get(cache, compiler, _fields())
    assert _get(cache, compiler, _fields(weights_digest="cd" * 32)) == "engine #2"
    assert len(list(tmp_path.glob("*.engine"))) == 1


def test_mismatched_record_is_rebuilt_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache, compiler = EngineCache(tmp_path), FakeCompiler()
    _get(cache, compiler, _fields())
    _, record_path = cache.paths("model-fp16", _fields())
    record = json.loads(record_path.read_text())
    record["gpu"]["name"] = "NVIDIA A100"  # e.g. a cache folder copied from another machine
    record_path.write_text(json.dumps(record))
    with caplog.at_level(logging.WARNING, logger="p2c.engine"):
        assert _get(cache, compiler, _fields()) == "engine #2"
    assert "built for different gpu" in caplog.text


def test_engine_whose_bytes_changed_is_rebuilt_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache, compiler = EngineCache(tmp_path), FakeCompiler()
    _get(cache, compiler, _fields())
    engine_path, _ = cache.paths("model-fp16", _fields())
    engine_path.write_text("garbage")
    with caplog.at_level(logging.WARNING, logger="p2c.engine"):
        assert _get(cache, compiler, _fields()) == "engine #2"
    assert "corrupt" in caplog.text


def test_missing_record_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache, compiler = EngineCache(tmp_path), FakeCompiler()
    _get(cache, compiler, _fields())
    cache.paths("model-fp16", _fields())[1].unlink()
    with caplog.at_level(logging.WARNING, logger="p2c.engine"):
        assert _get(cache, compiler, _fields()) == "engine #2"
    assert "unreadable" in caplog.text


@pytest.mark.skipif(has_torch_tensorrt, reason="checks the message shown when Torch-TensorRT is absent")
def test_without_torch_tensorrt_the_backend_says_what_to_install(tiny_weights: Path) -> None:
    with pytest.raises(MissingDependencyError, match=r'pip install "p2c\[gpu\]"'):
        create_engine(tiny_weights, EngineConfig(backend="tensorrt"))


@pytest.mark.gpu
@pytest.mark.skipif(not has_torch_tensorrt, reason='torch_tensorrt is not installed (pip install "p2c[gpu]")')
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; this machine has none")
def test_tensorrt_fp16_matches_torch_fp32(tiny_weights: Path, face_batch_64, psnr, tmp_path: Path) -> None:
    reference = create_engine(tiny_weights, EngineConfig(backend="torch", device="cpu", precision="fp32"))
    engine = create_engine(
        tiny_weights, EngineConfig(backend="tensorrt", precision="fp16", cache_dir=tmp_path)
    )
    assert psnr(reference.run(face_batch_64), engine.run(face_batch_64)) >= 35.0
    assert list((tmp_path / "tensorrt").glob("*.engine"))
