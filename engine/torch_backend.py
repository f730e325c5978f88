"""The PyTorch backend: the generator as an ``nn.Module`` on the CPU or a CUDA GPU.

Precision is handled at the boundary: the float32 batch is cast to the module's dtype on the way in
and the result cast back to float32 on the way out, so callers only ever see FP32.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from p2c.engine.base import EngineConfig, resolve_device, resolve_precision
from p2c.engine.tensors import check_batch, chunks
from p2c.errors import BackendUnavailableError
from p2c.models.generator import CartoonOnly, ResnetGenerator
from p2c.models.weights import load_generator

__all__ = ["DTYPES", "TorchBackend"]

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _check_device(device: str) -> None:
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"the torch backend cannot use {device}: this PyTorch sees no CUDA GPU; use --device cpu"
            )
        index = torch.device(device).index or 0
        if index >= torch.cuda.device_count():
            raise BackendUnavailableError(
                f"the torch backend cannot use {device}: only {torch.cuda.device_count()} CUDA GPU(s) here"
            )


def _check_precision(device: str, precision: str) -> None:
    """Probe one tiny convolution so an unsupported dtype fails here, not in the middle of a video."""
    dtype = DTYPES[precision]
    try:
        with torch.inference_mode():
            probe = torch.nn.functional.conv2d(
                torch.zeros(1, 3, 8, 8, dtype=dtype, device=device),
                torch.zeros(3, 3, 3, 3, dtype=dtype, device=device),
            )
            torch.nn.functional.instance_norm(probe)
    except (RuntimeError, TypeError) as error:
        raise BackendUnavailableError(
            f"the torch backend cannot run {precision} on {device} ({str(error).splitlines()[0]}); "
            "use --precision fp32"
        ) from error


class TorchBackend:
    """Runs a :class:`ResnetGenerator` under ``torch.inference_mode``."""

    name = "torch"

    def __init__(
        self,
        generator: ResnetGenerator,
        device: str = "cpu",
        precision: str = "fp32",
        max_batch: int = 8,
        compile: bool = False,
        channels_last: bool | None = None,
    ) -> None:
        device = resolve_device(device)
        precision = resolve_precision(precision, device)
        _check_device(device)
        _check_precision(device, precision)
        self.device = device
        self.precision = precision
        self.max_batch = max_batch
        self._dtype = DTYPES[precision]
        # A light generator is fully convolutional, so its nominal img_size does not bind the input.
        self._size = None if generator.config.light else generator.config.img_size
        # channels_last lets cuDNN pick its tensor-core kernels; on the CPU it is measured slower, so off.
        self._channels_last = device.startswith("cuda") if channels_last is None else channels_last
        memory_format = torch.channels_last if self._channels_last else torch.contiguous_format
        module = (
            CartoonOnly(generator).eval().to(device=device, dtype=self._dtype, memory_format=memory_format)
        )
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        self._module: torch.nn.Module = module
        self._forward = torch.compile(module, dynamic=False) if compile else module
        self.compiled = compile
        log.debug("torch backend on %s, %s, max batch %d, compile=%s", device, precision, max_batch, compile)

    @classmethod
    def from_weights(cls, weights: Path, config: EngineConfig) -> TorchBackend:
        return cls(
            load_generator(weights),
            device=config.device,
            precision=config.precision,
            max_batch=config.max_batch,
            compile=config.compile,
        )

    def run(self, batch: np.ndarray) -> np.ndarray:
        batch = check_batch(batch, self._size)
        outputs = [self._run_chunk(chunk) for chunk in chunks(batch, self.max_batch)]
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)

    def _run_chunk(self, chunk: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            inputs = torch.from_numpy(chunk).to(self.device, non_blocking=True)
            inputs = inputs.to(self._dtype)
            if self._channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            output = self._forward(inputs)
            return output.float().cpu().numpy()

    def close(self) -> None:
        self._module = self._forward = None  # type: ignore[assignment]
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
