"""The inductor backend: the generator compiled ahead of time by AOTInductor into a ``.pt2`` package.

``torch.export`` traces the generator once with a dynamic batch axis (1 to :data:`BATCH_MAX`) and
AOTInductor compiles the traced graph (Triton kernels on CUDA, C++ with OpenMP on the CPU, norms,
activations and padding fused, weights frozen into the package) into a shared library packaged as
``.pt2``. Compiling takes minutes, so the package is cached on disk (:class:`ArtifactCache`, keyed by
the weights' and config's bytes, batch range, image size, memory format, precision, torch version and
device); the first start builds it and logs one line saying so and how long it took, later starts load
it in seconds. A stale or corrupt package is never loaded: it is rebuilt, and a WARNING says why.

- CUDA: FP16 (default) or BF16 or FP32, channels-last, and batches of up to :data:`GRAPH_MAX_BATCH`
  replayed from CUDA graphs captured per bucket (1, 2, 4, 8) at start: a batch is padded to its bucket.
- CPU: FP32 only (x86 CPUs have no fast FP16 convolutions), NCHW, denormals flushed during a call.

``auto`` only ever *loads* a cached package: a start must not silently take minutes, so building is
left to ``--backend inductor`` (once) or to ``p2c-export WEIGHTS OUT.pt2 --format aoti`` ahead of time,
which also fills the cache. ``OUT.pt2`` (with ``OUT.pt2.json``) runs as ``--weights OUT.pt2`` on the
kind of device and torch version it was built for.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from p2c.devices import resolve_device
from p2c.engine.base import Batch, EngineConfig, resolve_precision
from p2c.engine.cache import ArtifactCache, cache_dir, device_fields, file_digest
from p2c.engine.cuda_graphs import CapturedGraph, bucket_for, buckets_up_to
from p2c.engine.tensors import check_batch, check_tensor_batch, chunks, concat
from p2c.errors import BackendUnavailableError, InvalidInputError, WeightsError
from p2c.files import atomic_path, atomic_write

if TYPE_CHECKING:
    from p2c.models.architectures import Generator

__all__ = [
    "BATCH_MAX",
    "GRAPH_MAX_BATCH",
    "InductorBackend",
    "InductorPlan",
    "build_package_file",
    "package_record_path",
]

log = logging.getLogger(__name__)

# The batch axis every package accepts; a larger max_batch is split into chunks of this size.
BATCH_MAX = 64
# Batches up to this size replay CUDA graphs: there kernel launches, not arithmetic, bound the time.
GRAPH_MAX_BATCH = 8
# Bump when the way a package is built changes (export options, inductor settings).
RECIPE = 1
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# Freezing turns the weights into constants: folded, pre-packed and laid out for the kernels.
_INDUCTOR_CONFIGS = {"freezing": True}


def package_record_path(package: Path) -> Path:
    """``OUT.pt2.json`` beside an exported ``OUT.pt2``: what the package was built for."""
    return package.with_name(package.name + ".json")


@dataclass(frozen=True)
class InductorPlan:
    """What one package is built for: device, precision, memory format and input size."""

    device: torch.device
    precision: str
    img_size: int
    channels_last: bool

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES[self.precision]

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def fields(self, weights: Path) -> dict[str, object]:
        """The cache key's fields: everything the compiled package depends on."""
        from p2c.models.weights import sidecar_path

        sidecar = sidecar_path(weights)
        config_digest = (
            file_digest(sidecar) if weights.suffix == ".safetensors" and sidecar.is_file() else None
        )
        return {
            "weights_sha256": file_digest(weights),
            "model_config_sha256": config_digest,
            "input": {
                "batch": [1, BATCH_MAX],
                "channels": 3,
                "size": self.img_size,
                "memory_format": "channels_last" if self.channels_last else "contiguous",
            },
            "precision": self.precision,
            "versions": {"torch": torch.__version__, "recipe": RECIPE},
            "device": device_fields(self.device),
            "inductor": dict(_INDUCTOR_CONFIGS),
        }


def _plan(config: EngineConfig, img_size: int) -> InductorPlan:
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    if device.type == "cpu" and precision != "fp32":
        raise BackendUnavailableError(
            f"the inductor backend compiles fp32 on the CPU, not {precision} (CPUs have no fast FP16 "
            "convolutions); use --precision fp32"
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise BackendUnavailableError(
            f"the inductor backend cannot use {device}: only {torch.cuda.device_count()} CUDA GPU(s) here"
        )
    # channels-last lets cuDNN and Triton use their tensor-core layouts; on the CPU oneDNN repacks anyway.
    return InductorPlan(device, precision, img_size, channels_last=device.type == "cuda")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def compile_package(generator: Generator, plan: InductorPlan, path: Path) -> None:
    """Export the generator's image output (any architecture) with a dynamic batch axis and
    AOT-compile it into ``path``."""
    from p2c.models.generator import CartoonOnly

    module = CartoonOnly(generator).eval().to(device=plan.device, dtype=plan.dtype)
    module = module.to(memory_format=plan.memory_format)  # type: ignore[call-overload]
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    # Batch 2, not 1: torch.export specialises sizes 0 and 1, which would fix the batch axis.
    size = plan.img_size
    example = torch.zeros((2, 3, size, size), dtype=plan.dtype, device=plan.device)
    example = example.contiguous(memory_format=plan.memory_format)
    batch = torch.export.Dim("batch", min=1, max=BATCH_MAX)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", FutureWarning)  # torch's own deprecations inside export
        warnings.simplefilter("ignore", UserWarning)
        exported = torch.export.export(module, (example,), dynamic_shapes=({0: batch},))
        torch._inductor.aoti_compile_and_package(
            exported, package_path=str(path), inductor_configs=dict(_INDUCTOR_CONFIGS)
        )


def load_package(path: Path, plan: InductorPlan) -> Any:
    """The compiled model in ``path``, on ``plan.device``.

    Single-threaded runners are what CUDA-graph capture needs (the default runner's thread
    hand-off is not allowed while a stream captures).
    """
    single_threaded = plan.device.type == "cuda"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if plan.device.type == "cuda" and plan.device.index:
            # device_index arrived in torch 2.8; without it a package loads on the current GPU.
            with torch.cuda.device(plan.device):
                return torch._inductor.aoti_load_package(
                    str(path), run_single_threaded=single_threaded, device_index=plan.device.index
                )
        return torch._inductor.aoti_load_package(str(path), run_single_threaded=single_threaded)


def _cache(config: EngineConfig) -> ArtifactCache:
    return ArtifactCache(cache_dir(config.cache_dir) / "inductor", what="inductor package", suffix=".pt2")


def _cached_or_built(weights: Path, config: EngineConfig, build: bool) -> tuple[Any, InductorPlan, Path]:
    """The package for ``weights`` from the cache, building it when ``build`` (else unavailable)."""
    from p2c.models.weights import load_generator, read_config

    plan = _plan(config, read_config(weights).img_size)  # a cache hit never loads the weights
    fields = plan.fields(weights)
    cache = _cache(config)
    name = f"{weights.stem}-{plan.precision}-{plan.device.type}"
    runner = cache.cached(name, fields, lambda path: load_package(path, plan))
    if runner is None and not build:
        raise BackendUnavailableError(
            f"no compiled inductor package for {weights.name} ({plan.precision} on {plan.device.type}) is "
            f"cached yet, and auto never spends minutes compiling at start; build it once with "
            f"p2c-export {weights} OUT.pt2 --format aoti, or run with --backend inductor"
        )
    if runner is None:
        try:
            runner = cache.build(
                name,
                fields,
                lambda path: compile_package(load_generator(weights), plan, path),
                lambda p: load_package(p, plan),
            )
        except Exception as error:  # inductor fails in many ways (no compiler, an op it cannot lower)
            raise BackendUnavailableError(
                f"the inductor backend could not compile the generator on {plan.device} "
                f"({_first_line(error)}); use --backend torch or onnxruntime"
            ) from error
    return runner, plan, cache.paths(name, fields)[0]


def _package_plan(package: Path, config: EngineConfig) -> InductorPlan:
    """The plan an exported package was built for, checked against this machine and ``config``."""
    record_path = package_record_path(package)
    device = resolve_device(config.device)
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        plan = InductorPlan(
            device,
            record["precision"],
            int(record["input"]["size"]),
            record["input"]["memory_format"] == "channels_last",
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise WeightsError(
            f"{package} needs its record {record_path.name} beside it ({_first_line(error)}); "
            "keep the two files p2c-export wrote together"
        ) from error
    if config.precision not in ("auto", plan.precision):
        raise BackendUnavailableError(
            f"{package} was compiled for {plan.precision}, not {config.precision}; drop --precision or "
            "export another package"
        )
    mismatches = []
    if record.get("device") != device_fields(device):
        mismatches.append(f"device {record.get('device')} (this one is {device_fields(device)})")
    if record.get("versions", {}).get("torch") != torch.__version__:
        mismatches.append(f"torch {record.get('versions', {}).get('torch')} (this is {torch.__version__})")
    if record.get("artifact_sha256") != file_digest(package):
        mismatches.append("other bytes (the file is corrupt or was replaced)")
    if mismatches:
        raise BackendUnavailableError(
            f"{package} was compiled for {'; '.join(mismatches)}; compiled code only runs where it was "
            "built: rebuild it here with p2c-export WEIGHTS OUT.pt2 --format aoti"
        )
    return plan


class InductorBackend:
    """Runs an AOTInductor-compiled generator (see the module docstring)."""

    name = "inductor"

    def __init__(
        self, runner: Any, plan: InductorPlan, max_batch: int = 8, package: Path | None = None
    ) -> None:
        self._runner = runner
        self._plan = plan
        self._device = plan.device
        self.device = str(plan.device)
        self.precision = plan.precision
        self.max_batch = min(max_batch, BATCH_MAX)
        self.package = package
        self._size = plan.img_size
        self._graphs: dict[int, CapturedGraph] = {}
        self._pinned: tuple[torch.Tensor, torch.Tensor] | None = None
        if plan.device.type == "cuda":
            self._capture_graphs()

    @classmethod
    def from_weights(cls, weights: Path, config: EngineConfig) -> InductorBackend:
        """From a compiled ``.pt2`` (loaded after its record is checked), or from ``.pt``/``.safetensors``
        through the cache (built on a miss unless ``auto`` chose this backend)."""
        from p2c.models.weights import detect_format

        weights = Path(weights)
        weights_format = detect_format(weights)
        if weights_format == "onnx":
            raise BackendUnavailableError(
                f"the inductor backend compiles .pt or .safetensors weights, and {weights} is an ONNX file; "
                "use --backend onnxruntime"
            )
        if weights_format == "aoti":
            plan = _package_plan(weights, config)
            try:
                runner = load_package(weights, plan)
            except Exception as error:  # a foreign loader: any failure means it cannot run here
                raise BackendUnavailableError(
                    f"{weights} does not load ({_first_line(error)}); "
                    "rebuild it with p2c-export --format aoti"
                ) from error
            return cls(runner, plan, config.max_batch, package=weights)
        runner, plan, package = _cached_or_built(weights, config, build=config.backend != "auto")
        return cls(runner, plan, config.max_batch, package=package)

    def _capture_graphs(self) -> None:
        """Capture one CUDA graph per small-batch bucket now, so no frame pays for a capture later."""
        size, plan = self._size, self._plan
        try:
            with torch.inference_mode():
                for bucket in buckets_up_to(min(self.max_batch, GRAPH_MAX_BATCH)):
                    inputs = torch.zeros((bucket, 3, size, size), dtype=plan.dtype, device=plan.device)
                    inputs = inputs.contiguous(memory_format=plan.memory_format)
                    self._graphs[bucket] = CapturedGraph(self._runner, inputs)
        except RuntimeError as error:
            log.warning("inductor backend: running without CUDA graphs (%s)", _first_line(error))
            self._graphs.clear()

    def run(self, batch: Batch) -> Batch:
        if isinstance(batch, torch.Tensor):
            tensor = check_tensor_batch(batch, self._size, self._device)
            return concat([self._run_tensor(chunk) for chunk in chunks(tensor, self.max_batch)])
        array = check_batch(batch, self._size)
        run_chunk = self._run_host_cuda if self._device.type == "cuda" else self._run_host_cpu
        return concat([run_chunk(chunk) for chunk in chunks(array, self.max_batch)])

    def _run_host_cpu(self, chunk: np.ndarray) -> np.ndarray:
        return self._run_tensor(torch.from_numpy(chunk)).numpy()

    def _run_host_cuda(self, chunk: np.ndarray) -> np.ndarray:
        """Through page-locked buffers made once: asynchronous copies both ways, one wait."""
        if self._pinned is None:
            shape = (self.max_batch, 3, self._size, self._size)
            self._pinned = (
                torch.empty(shape, dtype=torch.float32).pin_memory(),
                torch.empty(shape, dtype=torch.float32).pin_memory(),
            )
        host_in, host_out = self._pinned
        count = chunk.shape[0]
        host_in[:count].copy_(torch.from_numpy(chunk))
        output = self._run_tensor(host_in[:count].to(self._device, non_blocking=True))
        host_out[:count].copy_(output, non_blocking=True)
        torch.cuda.current_stream(self._device).synchronize()
        return host_out[:count].numpy().copy()  # the pinned buffer is reused by the next call

    def _run_tensor(self, chunk: torch.Tensor) -> torch.Tensor:
        """A chunk on the device -> a new float32 NCHW tensor there."""
        with torch.inference_mode():
            if self._graphs and chunk.shape[0] <= max(self._graphs):
                return self._graphs[bucket_for(chunk.shape[0], max(self._graphs))].run(chunk)
            # The compiled code assumes the strides it was exported with: convert, never guess.
            inputs = chunk.to(self._plan.dtype).contiguous(memory_format=self._plan.memory_format)
            if self._device.type == "cuda":
                return self._runner(inputs).to(torch.float32, memory_format=torch.contiguous_format)
            # Denormal floats make x86 arithmetic many times slower; flushing them changes no pixel.
            # The flag belongs to the calling thread: set per call, reset after.
            torch.set_flush_denormal(True)
            try:
                return self._runner(inputs).to(torch.float32, memory_format=torch.contiguous_format)
            finally:
                torch.set_flush_denormal(False)

    def close(self) -> None:
        self._graphs.clear()
        self._pinned = None
        self._runner = None
        if self._device.type == "cuda":
            torch.cuda.empty_cache()


def build_package_file(weights: Path, out: Path, config: EngineConfig) -> Path:
    """Compile ``weights`` (through the cache, so later starts find it too) and copy the package to
    ``out`` with its record ``out.json``: what ``p2c-export --format aoti`` does."""
    if not out.name.endswith(".pt2"):
        raise InvalidInputError(f"an AOTInductor package is a .pt2 file; name the output {out.stem}.pt2")
    _, _, package = _cached_or_built(Path(weights), config, build=True)
    with atomic_path(out) as temporary:
        shutil.copyfile(package, temporary)
    record = json.loads(package.with_suffix(".json").read_text(encoding="utf-8"))
    with atomic_write(package_record_path(out)) as stream:
        stream.write(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return out
