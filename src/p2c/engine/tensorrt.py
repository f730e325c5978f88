"""The Torch-TensorRT backend: the generator compiled to a TensorRT engine (FP16, dynamic batch 1..32).

Building an engine takes minutes, so engines are cached on disk. The cache key covers everything that
invalidates an engine: the weights' bytes, the input shape range, the precision, the versions of
PyTorch, Torch-TensorRT and TensorRT, and the GPU (name and compute capability). Each engine has a JSON
record of those fields beside it; an engine whose record does not match, or that fails to load, is
never used: it is rebuilt, and the reason is logged at WARNING.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from p2c.devices import resolve_device
from p2c.engine.base import Batch, EngineConfig, resolve_precision
from p2c.engine.cache import ArtifactCache, cache_dir, file_digest
from p2c.engine.tensors import check_batch, check_tensor_batch, chunks, concat
from p2c.errors import BackendUnavailableError, MissingDependencyError
from p2c.files import atomic_path

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


class EngineCache(ArtifactCache):
    """TensorRT engines in a folder: ``NAME-KEY.engine`` plus ``NAME-KEY.json`` (an ArtifactCache)."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, what="TensorRT engine", suffix=".engine")

    def get_or_build(  # type: ignore[override]
        self,
        name: str,
        fields: Mapping[str, object],
        build: Callable[[], Any],
        save: Callable[[Any, Path], None],
        load: Callable[[Path], Any],
    ) -> Any:
        """The cached engine for ``fields`` if valid, else a new one (built, stored, loaded back)."""
        return super().get_or_build(name, fields, lambda path: save(build(), path), load)


def _torch_tensorrt() -> Any:
    try:
        import torch_tensorrt
    except ImportError as error:
        raise MissingDependencyError(
            'the tensorrt backend needs Torch-TensorRT and a CUDA GPU: pip install "p2c[gpu]"'
        ) from error
    return torch_tensorrt


def _versions(torch_tensorrt: Any) -> dict[str, str]:
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


def _gpu(device: torch.device) -> dict[str, str]:
    properties = torch.cuda.get_device_properties(device)
    return {"name": properties.name, "capability": f"{properties.major}.{properties.minor}"}


def _device_and_precision(weights: Path, config: EngineConfig) -> tuple[torch.device, str]:
    from p2c.models.weights import detect_format

    if not torch.cuda.is_available() or config.device == "cpu":
        raise BackendUnavailableError("the tensorrt backend needs a CUDA GPU, and none is available here")
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    if precision not in ("fp16", "fp32"):
        raise BackendUnavailableError(f"the tensorrt backend builds fp16 or fp32 engines, not {precision}")
    weights_format = detect_format(weights)
    if weights_format == "onnx":
        raise BackendUnavailableError(
            f"the tensorrt backend compiles .pt or .safetensors weights, and {weights} is an ONNX file; "
            "use --backend onnxruntime (its TensorRT execution provider)"
        )
    if weights_format == "aoti":
        raise BackendUnavailableError(
            f"the tensorrt backend compiles .pt or .safetensors weights, and {weights} is a compiled "
            "AOTInductor package; use --backend inductor"
        )
    return device, precision


def _generator_and_example(weights: Path, device: torch.device, precision: str) -> tuple[Any, Any]:
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
    return torch.export.load(str(path)).module()


def build_engine_file(weights: Path, out: Path, precision: str, device: str = "auto") -> Path:
    """Compile ``weights`` and write the engine to ``out`` (what ``p2c-export --format tensorrt`` does)."""
    _torch_tensorrt()
    config = EngineConfig(backend="tensorrt", precision=precision, device=device)
    torch_device, precision = _device_and_precision(weights, config)
    generator, example = _generator_and_example(weights, torch_device, precision)
    engine = compile_generator(generator, example)
    with atomic_path(out) as temporary:
        save_engine(engine, temporary, example)
    return out


class TensorRTBackend:
    """Runs a Torch-TensorRT-compiled generator; batches of 1 to 32 at once (``max_batch`` at most 32)."""

    name = "tensorrt"

    def __init__(
        self, module: Any, device: torch.device, precision: str, max_batch: int, img_size: int
    ) -> None:
        self._module = module
        self.device = str(device)
        self._device = device
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

    def run(self, batch: Batch) -> Batch:
        if isinstance(batch, torch.Tensor):
            tensor = check_tensor_batch(batch, self._size, self._device)
            return concat([self._run_tensor(chunk) for chunk in chunks(tensor, self.max_batch)])
        array = check_batch(batch, self._size)
        outputs = [
            self._run_tensor(torch.from_numpy(chunk).to(self._device, non_blocking=True)).cpu().numpy()
            for chunk in chunks(array, self.max_batch)
        ]
        return concat(outputs)

    def _run_tensor(self, chunk: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self._module(chunk.to(self._dtype)).float().contiguous()

    def close(self) -> None:
        self._module = None
        torch.cuda.empty_cache()
