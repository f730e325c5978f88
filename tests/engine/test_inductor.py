"""The inductor backend: AOTInductor packages built once, cached, checked, and run like the others.

The fast tests never compile. The ``slow`` ones compile the tiny generator once for the whole module
(minutes on a 2-core CPU) and share that package through a module-scoped cache.
"""

from __future__ import annotations

import json
import logging
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from p2c.engine import EngineConfig, create_engine
from p2c.engine.export import main as export_main
from p2c.engine.inductor import InductorBackend, InductorPlan, package_record_path
from p2c.engine.registry import create_backend
from p2c.errors import BackendUnavailableError, WeightsError
from p2c.models.weights import detect_format, load_generator

CPU = torch.device("cpu")


def _reference(weights: Path, batch: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return load_generator(weights)(torch.from_numpy(batch)).image.numpy()


def _no_compiling(*args: object, **kwargs: object) -> None:
    raise AssertionError("nothing should be compiled here")


def _fake_package(path: Path) -> Path:
    """A file with the bytes of a PT2 archive's marker (not a loadable package)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/archive_format", "pt2")
        archive.writestr("model/data/aotinductor/model/x.wrapper.so", b"\0" * 16)
    return path


# --- fast: no compilation -------------------------------------------------------------------------


def test_auto_only_loads_a_cached_package_and_says_how_to_build_one(
    tiny_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("p2c.engine.inductor.compile_package", _no_compiling)
    with pytest.raises(BackendUnavailableError, match=r"p2c-export .* --format aoti.*--backend inductor"):
        InductorBackend.from_weights(tiny_weights, EngineConfig(device="cpu", cache_dir=tmp_path))


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_low_precision_on_the_cpu_is_refused_before_any_work(
    precision: str, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("p2c.engine.inductor.compile_package", _no_compiling)
    config = EngineConfig(backend="inductor", device="cpu", precision=precision)
    with pytest.raises(BackendUnavailableError, match="--precision fp32"):
        create_backend("inductor", tiny_weights, config)


def test_every_input_of_the_build_is_in_the_cache_key(tiny_weights: Path, tmp_path: Path) -> None:
    plan = InductorPlan(CPU, "fp32", 64, channels_last=False)
    fields = plan.fields(tiny_weights)
    other_weights = tmp_path / "other.safetensors"
    other_weights.write_bytes(tiny_weights.read_bytes() + b" ")
    shutil.copy(tiny_weights.with_suffix(".json"), other_weights.with_suffix(".json"))
    variants = [
        InductorPlan(CPU, "fp32", 64, channels_last=False).fields(other_weights),
        InductorPlan(CPU, "bf16", 64, channels_last=False).fields(tiny_weights),
        InductorPlan(CPU, "fp32", 128, channels_last=False).fields(tiny_weights),
        InductorPlan(CPU, "fp32", 64, channels_last=True).fields(tiny_weights),
    ]
    for variant in variants:
        assert variant != fields
    assert fields["versions"]["torch"] == torch.__version__  # type: ignore[index]
    assert fields["device"] == {
        "type": "cpu",
        "arch": fields["device"]["arch"],
        "isa": fields["device"]["isa"],
    }  # type: ignore[index]
    assert fields["input"]["batch"][0] == 1  # type: ignore[index]


def test_the_cache_key_tells_the_architectures_apart(
    tiny_weights: Path, tiny_compact_weights: Path, tmp_path: Path
) -> None:
    plan = InductorPlan(CPU, "fp32", 64, channels_last=False)
    photo2cartoon, compact = plan.fields(tiny_weights), plan.fields(tiny_compact_weights)
    assert photo2cartoon["weights_sha256"] != compact["weights_sha256"]
    assert photo2cartoon["model_config_sha256"] != compact["model_config_sha256"]
    # The architecture and config live in the sidecar, which the key covers too.
    relabelled = tmp_path / "relabelled.safetensors"
    shutil.copy(tiny_compact_weights, relabelled)
    meta = json.loads(tiny_compact_weights.with_suffix(".json").read_text())
    relabelled.with_suffix(".json").write_text(json.dumps({**meta, "arch": "photo2cartoon"}))
    fields = plan.fields(relabelled)
    assert fields["weights_sha256"] == compact["weights_sha256"]
    assert fields["model_config_sha256"] != compact["model_config_sha256"]


def test_a_pt2_file_is_told_apart_and_only_the_inductor_backend_runs_it(tmp_path: Path) -> None:
    package = _fake_package(tmp_path / "p2c.pt2")
    assert detect_format(package) == "aoti"
    with pytest.raises(WeightsError, match="--backend inductor"):
        load_generator(package)
    with pytest.raises(BackendUnavailableError, match="--backend inductor"):
        create_engine(package, EngineConfig(backend="torch"))


def test_a_package_without_its_record_is_one_line(tmp_path: Path) -> None:
    package = _fake_package(tmp_path / "p2c.pt2")
    with pytest.raises(WeightsError, match=r"needs its record p2c\.pt2\.json"):
        create_engine(package, EngineConfig(device="cpu"))


def test_a_package_built_elsewhere_is_refused_naming_what_differs(tmp_path: Path) -> None:
    package = _fake_package(tmp_path / "p2c.pt2")
    record = {
        "precision": "fp16",
        "input": {"size": 256, "memory_format": "channels_last"},
        "device": {"type": "cuda", "name": "NVIDIA H100 80GB HBM3", "capability": "9.0", "cuda": "13.0"},
        "versions": {"torch": "2.11.0+cu130"},
        "artifact_sha256": "0" * 64,
    }
    package_record_path(package).write_text(json.dumps(record))
    with pytest.raises(BackendUnavailableError) as caught:
        create_engine(package, EngineConfig(device="cpu"))
    message = str(caught.value)
    assert "NVIDIA H100" in message and "torch 2.11.0+cu130" in message and "corrupt" in message
    assert "p2c-export WEIGHTS OUT.pt2 --format aoti" in message


# --- slow: one real compilation of the tiny generator, shared by the tests below ------------------


@pytest.fixture(scope="module")
def built(tiny_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    """The tiny generator compiled on the CPU into a private cache; yields the cache and the log."""
    cache = tmp_path_factory.mktemp("inductor-cache")
    handler = _ListHandler()
    logger = logging.getLogger("p2c.engine")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        engine = create_engine(tiny_weights, EngineConfig(backend="inductor", device="cpu", cache_dir=cache))
        engine.close()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    yield cache, handler.messages


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.slow
def test_the_first_start_builds_with_one_line_saying_how_long(built: tuple[Path, list[str]]) -> None:
    cache, messages = built
    lines = [m for m in messages if "built the inductor package" in m]
    assert len(lines) == 1 and " s;" in lines[0]
    assert len(list((cache / "inductor").glob("*.pt2"))) == 1


@pytest.mark.slow
def test_a_later_start_loads_the_cache_and_matches_torch_fp32(
    built: tuple[Path, list[str]],
    tiny_weights: Path,
    face_batch_64: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache, _ = built
    monkeypatch.setattr("p2c.engine.inductor.compile_package", _no_compiling)
    with caplog.at_level(logging.INFO, logger="p2c.engine"):
        engine = create_engine(
            tiny_weights, EngineConfig(backend="inductor", device="cpu", max_batch=2, cache_dir=cache)
        )
    assert "using the cached inductor package" in caplog.text
    assert (engine.name, engine.device, engine.precision) == ("inductor", "cpu", "fp32")
    expected = _reference(tiny_weights, face_batch_64)
    output = engine.run(face_batch_64)  # 3 faces: chunks of 2 and 1 through the dynamic batch axis
    assert output.dtype == np.float32 and output.shape == face_batch_64.shape
    assert np.abs(output - expected).max() <= 1e-3
    as_tensor = engine.run(torch.from_numpy(face_batch_64))
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.dtype == torch.float32
    np.testing.assert_allclose(as_tensor.numpy(), output, atol=1e-6)
    engine.close()


@pytest.mark.slow
def test_auto_uses_a_cached_package_and_refuses_a_corrupt_one(
    built: tuple[Path, list[str]],
    tiny_weights: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(built[0], cache)
    monkeypatch.setattr("p2c.engine.inductor.compile_package", _no_compiling)
    config = EngineConfig(device="cpu", cache_dir=cache)  # backend auto
    InductorBackend.from_weights(tiny_weights, config).close()
    (package,) = (cache / "inductor").glob("*.pt2")
    damaged = bytearray(package.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # one flipped byte inside the shared library
    package.write_bytes(bytes(damaged))
    with caplog.at_level(logging.WARNING, logger="p2c.engine"), pytest.raises(BackendUnavailableError):
        InductorBackend.from_weights(tiny_weights, config)
    assert "not using the cached inductor package" in caplog.text and "corrupt" in caplog.text


@pytest.mark.slow
def test_a_record_from_another_torch_is_rebuilt_never_loaded(
    built: tuple[Path, list[str]], tiny_weights: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(built[0], cache)
    (record_path,) = (cache / "inductor").glob("*.json")
    record = json.loads(record_path.read_text())
    record["versions"]["torch"] = "2.0.0"
    record_path.write_text(json.dumps(record))
    with caplog.at_level(logging.WARNING, logger="p2c.engine"), pytest.raises(BackendUnavailableError):
        InductorBackend.from_weights(tiny_weights, EngineConfig(device="cpu", cache_dir=cache))
    assert "built for different versions" in caplog.text


@pytest.mark.slow
def test_export_aoti_writes_a_package_that_runs_as_weights(
    built: tuple[Path, list[str]],
    tiny_weights: Path,
    tmp_path: Path,
    face_batch_64: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("P2C_CACHE_DIR", str(built[0]))  # the export finds the package in the cache
    monkeypatch.setattr("p2c.engine.inductor.compile_package", _no_compiling)
    out = tmp_path / "p2c.pt2"
    assert export_main([str(tiny_weights), str(out), "--format", "aoti", "--device", "cpu"]) == 0
    assert str(out) in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p2c.pt2", "p2c.pt2.json"]
    engine = create_engine(out, EngineConfig(device="cpu"))  # auto: a package has one runner
    assert engine.name == "inductor"
    assert np.abs(engine.run(face_batch_64) - _reference(tiny_weights, face_batch_64)).max() <= 1e-3
    engine.close()


@pytest.mark.slow
def test_the_compact_generator_compiles_and_matches_torch_fp32(
    tiny_compact_weights: Path, tmp_path: Path, face_batch_64: np.ndarray
) -> None:
    config = EngineConfig(backend="inductor", device="cpu", max_batch=2, cache_dir=tmp_path)
    engine = create_engine(tiny_compact_weights, config)
    assert (engine.name, engine.device, engine.precision) == ("inductor", "cpu", "fp32")
    output = engine.run(face_batch_64)  # 3 faces: chunks of 2 and 1 through the dynamic batch axis
    engine.close()
    assert output.dtype == np.float32 and output.shape == face_batch_64.shape
    assert np.abs(output - _reference(tiny_compact_weights, face_batch_64)).max() <= 1e-3


@pytest.mark.gpu
def test_cuda_fp16_package_replays_graphs_and_keeps_tensors_on_the_gpu(
    tiny_weights: Path, face_batch_64: np.ndarray, psnr, tmp_path: Path
) -> None:
    config = EngineConfig(
        backend="inductor", device="cuda", precision="fp16", max_batch=16, cache_dir=tmp_path
    )
    engine = create_engine(tiny_weights, config)
    assert (engine.name, engine.precision) == ("inductor", "fp16")
    assert sorted(engine._graphs) == [1, 2, 4, 8]  # type: ignore[attr-defined]
    reference = _reference(tiny_weights, face_batch_64)
    assert psnr(reference, engine.run(face_batch_64)) >= 35.0
    on_gpu = torch.from_numpy(face_batch_64).cuda()
    first = engine.run(on_gpu)  # 3 faces: the graph of batch 4
    kept = first.clone()
    engine.run(on_gpu[:1])  # a later replay must not overwrite an earlier result
    assert first.device.type == "cuda" and first.dtype == torch.float32 and torch.equal(first, kept)
    many = engine.run(torch.cat([on_gpu] * 3))  # 9 faces: past the graphs, the package runs directly
    assert psnr(np.concatenate([reference] * 3), many.cpu().numpy()) >= 35.0
    engine.close()


def test_export_aoti_refuses_another_suffix(tiny_weights: Path, tmp_path: Path, capsys) -> None:
    assert export_main([str(tiny_weights), str(tmp_path / "p2c.so"), "--format", "aoti"]) == 2
    assert "p2c.pt2" in capsys.readouterr().err
