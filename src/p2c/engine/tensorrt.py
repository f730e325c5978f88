"""The Torch-TensorRT backend: the generator compiled to a TensorRT engine (FP16, dynamic batch 1..32).

Building an engine takes minutes, so engines are cached on disk. The cache key covers everything that
invalidates an engine: the weights' bytes, the input shape range, the precision, the versions of
PyTorch, Torch-TensorRT and TensorRT, and the GPU (name and compute capability). Each engine has a JSON
record of those fields beside it; an engine whose record does not match, or that fails to load, is
never used: it is rebuilt, and the reason is logged at WARNING.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from p2c.engine.base import EngineConfig, resolve_device, resolve_precision
from p2c.engine.cache import cache_dir, cache_key, file_digest
from p2c.engine.tensors import check_batch, chunks
from p2c.errors import BackendUnavailableError, MissingDependencyError

__all__ = [
    "MAX_BATCH",
    "EngineCache",
    "TensorRTBackend",
    "build_engine_file",
    "compile_generator",
    "engine_fields",
]

log = logging.getLogger(__name__)

MIN_BATCH, OPT_BATCH, MAX_BATCH = 1, 8, 32


def engine_fields(
    weights_digest: str,
    img_size: int,
    precision: str,
    versions: Mapping[str, str],
    gpu: Mapping[str, str],
    batch_range: tuple[int, int, int] = (MIN_BATCH, OPT_BATCH, MAX_BATCH),
) -> dict[str, object]:
    """Everything a compiled engine depends on; any change must give a different cache key."""
    return {
        "weights_sha256": weights_digest,
        "input_shape": {"batch": list(batch_range), "channels": 3, "size": img_size},
        "precision": precision,
        "versions": dict(sorted(versions.items())),
        "gpu": dict(sorted(gpu.items())),
    }


def _write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        write(Path(temp_name))
        os.replace(temp_name, path)
    finally:
        Path(temp_name).unlink(missing_ok=True)


class EngineCache:
    """Compiled engines in a folder: ``NAME-KEY.engine`` plus ``NAME-KEY.json`` (the fields hashed)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def paths(self, name: str, fields: Mapping[str, object]) -> tuple[Path, Path]:
        stem = f"{name}-{cache_key(fields)}"
        return self.folder / f"{stem}.engine", self.folder / f"{stem}.json"

    def get_or_build(
        self,
        name: str,
        fields: Mapping[str, object],
        build: Callable[[], Any],
        save: Callable[[Any, Path], None],
        load: Callable[[Path], Any],
    ) -> Any:
        """The cached engine for ``fields`` if valid, else a new one (built, stored; stale ones removed)."""
        engine_path, record_path = self.paths(name, fields)
        engine = self._load_checked(engine_path, record_path, fields, load)
        if engine is not None:
            log.info("using cached TensorRT engine %s", engine_path)
            return engine
        self._remove_stale(name, keep=engine_path)
        log.info("building a TensorRT engine for %s (minutes, once per GPU and version)", name)
        engine = build()
        _write_atomically(engine_path, lambda temp: save(engine, temp))
        text = json.dumps(fields, indent=2, sort_keys=True) + "\n"
        _write_atomically(record_path, lambda temp: temp.write_text(text, encoding="utf-8"))
        return engine

    def _load_checked(
        self, engine_path: Path, record_path: Path, fields: Mapping[str, object], load: Callable[[Path], Any]
    ) -> Any | None:
        if not engine_path.is_file():
            return None
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            log.warning(
                "rebuilding TensorRT engine %s: its record %s is unreadable (%s)",
                engine_path,
                record_path,
                error,
            )
            return None
        if record != json.loads(json.dumps(fields, sort_keys=True)):
            changed = sorted(k for k in set(record) | set(fields) if record.get(k) != fields.get(k))
            log.warning(
                "rebuilding TensorRT engine %s: it was built for different %s",
                engine_path,
                ", ".join(changed),
            )
            return None
        try:
            return load(engine_path)
        except Exception as error:
            log.warning("rebuilding TensorRT engine %s: it does not load (%s)", engine_path, error)
            return None

    def _remove_stale(self, name: str, keep: Path) -> None:
        """Engines of the same name with another key were built for other weights, versions or GPU."""
        for path in self.folder.glob(f"{name}-*.engine"):
            if path != keep:
                log.info("removing stale TensorRT engine %s", path)
                path.unlink(missing_ok=True)
                path.with_suffix(".json").unlink(missing_ok=True)


def _torch_tensorrt() -> Any:
    try:
        import torch_tensorrt
    except ImportError as error:
        raise MissingDependencyError(
            'the tensorrt backend needs Torch-TensorRT and a CUDA GPU: pip install "p2c[gpu]"'
        ) from error
    return torch_tensorrt


def _versions(torch_tensorrt: Any) -> dict[str, str]:
    import torch

    versions = {
        "torch": torch.__version__,
        "torch_tensorrt": torch_tensorrt.__version__,
        "cuda": str(torch.version.cuda),
    }
    try:
        import tensorrt

        versions["tensorrt"] = tensorrt.__version__
    except ImportError:
        versions["tensorrt"] = "unknown"
    return versions


def _gpu(device: str) -> dict[str, str]:
    import torch

    properties = torch.cuda.get_device_properties(torch.device(device))
    return {"name": properties.name, "capability": f"{properties.major}.{properties.minor}"}


def _device_and_precision(weights: Path, config: EngineConfig) -> tuple[str, str]:
    import torch

    from p2c.models.weights import detect_format

    device = resolve_device(config.device)
    if not device.startswith("cuda") or not torch.cuda.is_available():
        raise BackendUnavailableError("the tensorrt backend needs a CUDA GPU, and none is available here")
    precision = resolve_precision(config.precision, device)
    if precision not in ("fp16", "fp32"):
        raise BackendUnavailableError(f"the tensorrt backend builds fp16 or fp32 engines, not {precision}")
    if detect_format(weights) == "onnx":
        raise BackendUnavailableError(
            f"the tensorrt backend compiles .pt or .safetensors weights, and {weights} is an ONNX file; "
            "use --backend onnxruntime (its TensorRT execution provider)"
        )
    return device, precision


def _generator_and_example(weights: Path, device: str, precision: str) -> tuple[Any, Any]:
    import torch

    from p2c.models.weights import load_generator

    generator = load_generator(weights)
    dtype = torch.float16 if precision == "fp16" else torch.float32
    size = generator.config.img_size
    generator = generator.to(device=device, dtype=dtype)
    return generator, torch.zeros((OPT_BATCH, 3, size, size), dtype=dtype, device=device)


def compile_generator(generator: Any, example: Any) -> Any:
    """Compile the generator's image output with Torch-TensorRT for batches MIN_BATCH..MAX_BATCH."""
    torch_tensorrt = _torch_tensorrt()
    from p2c.models.generator import CartoonOnly

    size = example.shape[-1]
    spec = torch_tensorrt.Input(
        min_shape=(MIN_BATCH, 3, size, size),
        opt_shape=(OPT_BATCH, 3, size, size),
        max_shape=(MAX_BATCH, 3, size, size),
        dtype=example.dtype,
    )
    module = CartoonOnly(generator).eval()
    return torch_tensorrt.compile(module, ir="dynamo", inputs=[spec], enabled_precisions={example.dtype})


def save_engine(module: Any, path: Path, example: Any) -> None:
    """Serialise a compiled module as an ExportedProgram (loadable with ``torch.export.load``)."""
    _torch_tensorrt().save(module, str(path), output_format="exported_program", inputs=[example])


def load_engine(path: Path) -> Any:
    import torch

    return torch.export.load(str(path)).module()


def build_engine_file(weights: Path, out: Path, precision: str, device: str = "auto") -> Path:
    """Compile ``weights`` and write the engine to ``out`` (what ``p2c-export --format tensorrt`` does)."""
    _torch_tensorrt()
    config = EngineConfig(backend="tensorrt", precision=precision, device=device)
    device, precision = _device_and_precision(weights, config)
    generator, example = _generator_and_example(weights, device, precision)
    engine = compile_generator(generator, example)
    _write_atomically(out, lambda temp: save_engine(engine, temp, example))
    return out


class TensorRTBackend:
    """Runs a Torch-TensorRT-compiled generator; batches of 1 to 32 at once (``max_batch`` at most 32)."""

    name = "tensorrt"

    def __init__(self, module: Any, device: str, precision: str, max_batch: int, img_size: int) -> None:
        import torch

        self._torch = torch
        self._module = module
        self.device = device
        self.precision = precision
        self.max_batch = min(max_batch, MAX_BATCH)
        self._size = img_size
        self._dtype = torch.float16 if precision == "fp16" else torch.float32

    @classmethod
    def from_weights(cls, weights: Path, config: EngineConfig) -> TensorRTBackend:
        torch_tensorrt = _torch_tensorrt()
        device, precision = _device_and_precision(weights, config)
        generator, example = _generator_and_example(weights, device, precision)
        size = generator.config.img_size
        fields = engine_fields(file_digest(weights), size, precision, _versions(torch_tensorrt), _gpu(device))
        cache = EngineCache(cache_dir(config.cache_dir) / "tensorrt")
        module = cache.get_or_build(
            f"{Path(weights).stem}-{precision}",
            fields,
            build=lambda: compile_generator(generator, example),
            save=lambda engine, path: save_engine(engine, path, example),
            load=load_engine,
        )
        return cls(module, device=device, precision=precision, max_batch=config.max_batch, img_size=size)

    def run(self, batch: np.ndarray) -> np.ndarray:
        batch = check_batch(batch, self._size)
        torch = self._torch
        outputs = []
        with torch.inference_mode():
            for chunk in chunks(batch, self.max_batch):
                inputs = torch.from_numpy(chunk).to(self.device, non_blocking=True).to(self._dtype)
                outputs.append(self._module(inputs).float().cpu().numpy())
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)

    def close(self) -> None:
        self._module = None
        self._torch.cuda.empty_cache()
