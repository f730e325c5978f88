"""The ONNX Runtime backend: our exports and photo2cartoon's released ONNX, on CPU, CUDA or TensorRT EPs.

The released ONNX may fix its batch axis at 1; such a model is run one sample (or one fixed-size
group, padded) at a time. Our exports have a dynamic batch axis and run ``max_batch`` at a time.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from p2c.devices import resolve_device
from p2c.engine.base import Batch, EngineConfig, resolve_precision
from p2c.engine.cache import cache_dir, cached_onnx
from p2c.engine.tensors import backend_device, check_batch, check_tensor_batch, chunks, concat
from p2c.errors import BackendUnavailableError, MissingDependencyError, P2CError
from p2c.models.onnx import OnnxSignature, onnx_signature
from p2c.models.weights import detect_format

__all__ = ["OnnxRuntimeBackend", "execution_providers"]

log = logging.getLogger(__name__)

_PROVIDER_NAMES = {
    "TensorrtExecutionProvider": "tensorrt-ep",
    "CUDAExecutionProvider": "cuda-ep",
    "CPUExecutionProvider": "cpu",
}


def _onnxruntime():  # type: ignore[no-untyped-def]
    try:
        import onnxruntime
    except ImportError as error:
        raise MissingDependencyError(
            'the onnxruntime backend needs onnxruntime: pip install onnxruntime (or "p2c[gpu]" for CUDA)'
        ) from error
    return onnxruntime


def execution_providers(
    device: str | torch.device, precision: str, trt_cache: Path | None = None
) -> list[object]:
    """The providers to ask for, fastest first: TensorRT EP, CUDA EP on a GPU; the CPU EP always last."""
    ort = _onnxruntime()
    device = torch.device(device)
    if device.type != "cuda":
        return ["CPUExecutionProvider"]
    available = set(ort.get_available_providers())
    if "CUDAExecutionProvider" not in available:
        raise MissingDependencyError(
            f"onnxruntime on {device} needs the CUDA execution provider, which this onnxruntime lacks: "
            'pip install "p2c[gpu]" (onnxruntime-gpu)'
        )
    index = device.index or 0
    providers: list[object] = []
    if "TensorrtExecutionProvider" in available:
        options: dict[str, object] = {"device_id": index, "trt_fp16_enable": precision == "fp16"}
        if trt_cache is not None:
            options.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(trt_cache))
        providers.append(("TensorrtExecutionProvider", options))
    providers.append(("CUDAExecutionProvider", {"device_id": index}))
    providers.append("CPUExecutionProvider")
    return providers


class OnnxRuntimeBackend:
    """Runs an ONNX generator with an ``onnxruntime.InferenceSession``.

    ``threads``: intra-op threads (default: one per physical core, or ``$P2C_ORT_THREADS``);
    ``spin``: let idle pool threads spin-wait for work, onnxruntime's own default, off here
    because p2c always runs the engine beside other busy threads.
    """

    name = "onnxruntime"

    def __init__(
        self,
        model_path: Path,
        device: str | torch.device = "cpu",
        max_batch: int = 8,
        threads: int | None = None,
        trt_cache: Path | None = None,
        trt_fp16: bool | None = None,
        spin: bool = False,
    ) -> None:
        ort = _onnxruntime()
        self.max_batch = max_batch
        self._signature: OnnxSignature = onnx_signature(model_path)
        self.precision = "fp16" if self._signature.dtype == "float16" else "fp32"
        self._input_dtype = np.dtype(self._signature.dtype)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # onnxruntime warns about every node it places on the CPU
        # Not "session.set_denormal_as_zero": it changes the calling thread's FPU flags for good, and
        # MediaPipe's XNNPack delegate then fails in the same thread. onnxruntime measured no faster with it.
        if threads:
            options.intra_op_num_threads = threads
        if not spin:
            # Idle pool threads spin by default; beside the pipeline's other stages that doubled the
            # CPU cost of a compact-generator call on 2 cores (p2c.stream.threads, docs/benchmarks.md).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        # TensorRT's own FP16 mode also speeds up an FP32 model (the released ONNX is FP32).
        trt_fp16 = self.precision == "fp16" if trt_fp16 is None else trt_fp16
        providers = execution_providers(device, "fp16" if trt_fp16 else self.precision, trt_cache)
        try:
            self._session = ort.InferenceSession(str(model_path), sess_options=options, providers=providers)
        except Exception as error:
            raise BackendUnavailableError(
                f"onnxruntime cannot load {model_path} on {device} ({str(error).splitlines()[0]})"
            ) from error
        chosen = self._session.get_providers()[0]
        if chosen == "TensorrtExecutionProvider" and trt_fp16:
            self.precision = "fp16"
        self.device = (
            str(device) if chosen == "CPUExecutionProvider" else f"{device} ({_PROVIDER_NAMES[chosen]})"
        )
        self._device = backend_device(self.device)
        if self._device.type == "cuda" and chosen == "CPUExecutionProvider":
            raise BackendUnavailableError(
                f"onnxruntime fell back to the CPU for {device}; check the CUDA install"
            )
        log.debug("onnxruntime session on %s (%s), signature %s", device, chosen, self._signature)

    @classmethod
    def from_weights(cls, weights: Path, config: EngineConfig) -> OnnxRuntimeBackend:
        device = resolve_device(config.device)
        precision = resolve_precision(config.precision, device)
        if precision == "bf16":
            raise BackendUnavailableError(
                "the onnxruntime backend runs fp32 or fp16, not bf16; use --backend torch"
            )
        execution_providers(device, precision)  # fail before any export when this device cannot run
        trt_cache = cache_dir(config.cache_dir) / "ort-trt" if device.type == "cuda" else None
        if trt_cache is not None:
            trt_cache.mkdir(exist_ok=True)
        if detect_format(weights) == "onnx":
            model_path = Path(weights)
            dtype = onnx_signature(model_path).dtype
            if config.precision != "auto" and dtype != {"fp32": "float32", "fp16": "float16"}[precision]:
                raise BackendUnavailableError(
                    f"{weights} is a {dtype} ONNX model and cannot run at {precision}; "
                    "export one with p2c-export or drop --precision"
                )
        else:
            model_path = cached_onnx(Path(weights), precision, config.cache_dir)
        return cls(
            model_path,
            device=device,
            max_batch=config.max_batch,
            threads=config.threads or _threads() or _default_threads(Path(weights), device),
            trt_cache=trt_cache,
            trt_fp16=precision == "fp16",
        )

    def run(self, batch: Batch) -> Batch:
        if isinstance(batch, torch.Tensor):
            # Through the host: ONNX Runtime's own device buffers (IO binding) are not wired up here.
            tensor = check_tensor_batch(batch, self._signature.size, self._device)
            output = self.run(tensor.detach().float().cpu().numpy())
            return torch.from_numpy(output).to(self._device)
        array = check_batch(batch, self._signature.size)
        step = min(self.max_batch, self._signature.batch or self.max_batch)
        return concat([self._run_chunk(chunk) for chunk in chunks(array, step)])

    def _run_chunk(self, chunk: np.ndarray) -> np.ndarray:
        count = chunk.shape[0]
        fixed = self._signature.batch
        if fixed is not None and count < fixed:  # a static batch axis: pad with copies of the last sample
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], fixed - count, axis=0)])
        feed = {self._signature.input_name: chunk.astype(self._input_dtype, copy=False)}
        (output,) = self._session.run([self._signature.output_name], feed)
        return np.asarray(output[:count], dtype=np.float32)

    def close(self) -> None:
        self._session = None


def _default_threads(weights: Path, device: torch.device) -> int | None:
    """One intra-op thread for the compact generator on a CPU, else onnxruntime's default.

    A 1.1 GFLOP call is too small to split: on the 2-core build machine (beside other load) one
    compact face cost 15.3 ms of CPU on one thread and 16.8 ms on two with no gain in wall time,
    and at batch 8 16.6 against 23.5 ms a face; the pipeline's other stages use the other core.
    """
    if device.type != "cpu" or detect_format(weights) == "onnx":
        return None
    from p2c.models.architectures import arch_of
    from p2c.models.compact import COMPACT_ARCH
    from p2c.models.weights import read_config

    try:
        return 1 if arch_of(read_config(weights)) == COMPACT_ARCH else None
    except (P2CError, OSError, ValueError, KeyError):  # no advice then; the export will say what is wrong
        return None


def _threads() -> int | None:
    """``$P2C_ORT_THREADS`` when set, else onnxruntime's default (one thread per physical core)."""
    value = os.environ.get("P2C_ORT_THREADS")
    return int(value) if value and value.isdigit() else None
