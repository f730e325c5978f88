"""The PyTorch backend: the generator as an ``nn.Module`` on the CPU or a CUDA GPU.

Precision is handled at the boundary: the float32 batch is cast to the module's dtype on the way in
and the result cast back to float32 on the way out, so callers only ever see FP32.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from p2c.devices import resolve_device
from p2c.engine.base import Batch, EngineConfig, resolve_precision
from p2c.engine.cuda_graphs import CapturedGraph, bucket_for
from p2c.engine.tensors import check_batch, check_tensor_batch, chunks, concat
from p2c.errors import BackendUnavailableError
from p2c.models.architectures import Generator
from p2c.models.generator import CartoonOnly
from p2c.models.weights import load_generator

__all__ = ["DTYPES", "TorchBackend"]

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _check_device(device: torch.device) -> None:
    if device.type == "cuda":
        index = device.index or 0
        if index >= torch.cuda.device_count():
            raise BackendUnavailableError(
                f"the torch backend cannot use {device}: only {torch.cuda.device_count()} CUDA GPU(s) here"
            )


def _check_precision(device: torch.device, precision: str) -> None:
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
    """Runs a generator (of any architecture, see :mod:`p2c.models.architectures`) under
    ``torch.inference_mode``.

    On CUDA the host side uses pinned buffers allocated once per image size and non-blocking copies;
    with ``cuda_graphs`` each batch is padded up to a captured size (1, 2, 4, ... max_batch) and the
    recorded graph is replayed, which removes the per-kernel launch cost of ~1,000 small kernels.
    """

    name = "torch"

    def __init__(
        self,
        generator: Generator,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
        max_batch: int = 8,
        compile: bool = False,
        channels_last: bool | None = None,
        cuda_graphs: bool = False,
    ) -> None:
        torch_device = resolve_device(device)
        precision = resolve_precision(precision, torch_device)
        _check_device(torch_device)
        _check_precision(torch_device, precision)
        if cuda_graphs and torch_device.type != "cuda":
            raise BackendUnavailableError(
                f"CUDA graphs need a CUDA device, and this backend runs on {torch_device}"
            )
        self.device = str(torch_device)
        self._device = torch_device
        self.precision = precision
        self.max_batch = max_batch
        self._dtype = DTYPES[precision]
        self._cuda = torch_device.type == "cuda"
        # A fully convolutional generator (light photo2cartoon, compact) takes any size: its nominal
        # img_size does not bind the input.
        self._size = generator.config.fixed_input_size
        # channels_last lets cuDNN pick its tensor-core kernels; on the CPU it is measured slower, so off.
        self._channels_last = self._cuda if channels_last is None else channels_last
        self._memory_format = torch.channels_last if self._channels_last else torch.contiguous_format
        module = CartoonOnly(generator).eval().to(device=torch_device, dtype=self._dtype)
        # Module.to takes memory_format at run time, but torch's stubs do not declare it.
        module = module.to(memory_format=self._memory_format)  # type: ignore[call-overload]
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        self._module: torch.nn.Module = module
        self._forward = torch.compile(module, dynamic=False) if compile else module
        self.compiled = compile
        self.cuda_graphs = cuda_graphs
        self._graphs: dict[tuple[int, int], CapturedGraph] = {}
        self._pinned: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        log.debug(
            "torch backend on %s, %s, max batch %d, compile=%s, channels_last=%s, cuda_graphs=%s",
            device,
            precision,
            max_batch,
            compile,
            self._channels_last,
            cuda_graphs,
        )

    @classmethod
    def from_weights(cls, weights: Path, config: EngineConfig) -> TorchBackend:
        return cls(
            load_generator(weights),
            device=config.device,
            precision=config.precision,
            max_batch=config.max_batch,
            compile=config.compile,
            cuda_graphs=config.cuda_graphs,
        )

    def run(self, batch: Batch) -> Batch:
        if isinstance(batch, torch.Tensor):
            tensor = check_tensor_batch(batch, self._size, self._device)
            return concat([self._run_tensor(chunk) for chunk in chunks(tensor, self.max_batch)])
        array = check_batch(batch, self._size)
        return concat([self._run_chunk(chunk) for chunk in chunks(array, self.max_batch)])

    def _run_chunk(self, chunk: np.ndarray) -> np.ndarray:
        if self._cuda:
            with torch.inference_mode():
                return self._run_cuda(chunk)
        return self._run_tensor(torch.from_numpy(chunk)).numpy()

    def _run_tensor(self, chunk: torch.Tensor) -> torch.Tensor:
        """A chunk already on the device -> a new float32 tensor there (contiguous NCHW)."""
        with torch.inference_mode():
            if self._cuda:
                if self.cuda_graphs:
                    return self._replay(chunk)
                return self._forward(self._prepared(chunk)).float().contiguous()
            # Denormal floats make x86 FP32 arithmetic many times slower (measured 3x-30x on this
            # generator); flushing them to zero changes no pixel. The flag belongs to the calling thread,
            # so it is set per call and reset after, leaving the caller's numpy arithmetic as it was.
            torch.set_flush_denormal(True)
            try:
                return self._forward(self._prepared(chunk)).float().contiguous()
            finally:
                torch.set_flush_denormal(False)

    def _prepared(self, chunk: torch.Tensor) -> torch.Tensor:
        return chunk.to(self._dtype).contiguous(memory_format=self._memory_format)

    def _replay(self, chunk: torch.Tensor) -> torch.Tensor:
        """The generator on ``chunk`` through the captured graph of its bucket; a fresh tensor."""
        return self._graph(chunk.shape[0], chunk.shape[2]).run(chunk)

    def _pinned_buffers(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Page-locked host input and output buffers for ``max_batch`` images of ``size``, made once."""
        if size not in self._pinned:
            shape = (self.max_batch, 3, size, size)
            self._pinned[size] = (
                torch.empty(shape, dtype=torch.float32).pin_memory(),
                torch.empty(shape, dtype=torch.float32).pin_memory(),
            )
        return self._pinned[size]

    def _graph(self, count: int, size: int) -> CapturedGraph:
        key = (bucket_for(count, self.max_batch), size)
        if key not in self._graphs:
            log.debug("capturing a CUDA graph for batch %d at %d px", *key)
            inputs = torch.zeros((key[0], 3, size, size), device=self._device, dtype=self._dtype)
            self._graphs[key] = CapturedGraph(
                self._forward, inputs.contiguous(memory_format=self._memory_format)
            )
        return self._graphs[key]

    def _run_cuda(self, chunk: np.ndarray) -> np.ndarray:
        count, size = chunk.shape[0], chunk.shape[2]
        host_in, host_out = self._pinned_buffers(size)
        host_in[:count].copy_(torch.from_numpy(chunk))
        device_in = host_in[:count].to(self._device, non_blocking=True)
        if self.cuda_graphs:
            graph = self._graph(count, size)
            graph.inputs[:count].copy_(device_in)  # the padding rows keep old data: samples are independent
            output = graph.replay()[:count]
        else:
            output = self._forward(self._prepared(device_in))
        host_out[:count].copy_(output.float(), non_blocking=True)
        torch.cuda.current_stream(self._device).synchronize()
        return host_out[:count].numpy().copy()  # the pinned buffer is reused by the next call

    def close(self) -> None:
        self._graphs.clear()
        self._pinned.clear()
        self._module = self._forward = None  # type: ignore[assignment]
        if self._cuda:
            torch.cuda.empty_cache()
