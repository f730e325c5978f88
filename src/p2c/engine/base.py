"""The inference backend contract and the engine configuration every backend receives."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np
import torch

__all__ = ["PRECISIONS", "Backend", "Batch", "EngineConfig", "resolve_precision"]

# What ``Backend.run`` takes and gives back: numpy in, numpy out; a tensor in, a tensor out.
Batch = TypeVar("Batch", np.ndarray, torch.Tensor)

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


@runtime_checkable
class Backend(Protocol):
    """Runs the generator on a batch of face crops.

    Contract, which every backend must keep:

    - ``name`` is the registry name (``"torch"``, ``"inductor"``, ``"onnxruntime"``, ``"tensorrt"``);
      ``device`` says where it runs (``"cpu"``, ``"cuda:0"``, or the onnxruntime execution provider) and
      ``precision`` the arithmetic actually used (``"fp32"``, ``"fp16"``, ``"bf16"``), never ``"auto"``.
    - ``run(batch)`` takes N x 3 x S x S floating-point values in [-1, 1], any N >= 1, C-contiguous or not,
      either as a numpy array or as a torch tensor, and returns a new batch of the same shape in [-1, 1]
      and of the same kind: numpy in, ``float32`` numpy out; a tensor in, a ``float32`` tensor out, on the
      same device. A tensor must be on the backend's device (``torch.device(backend.device.split()[0])``);
      the torch, inductor and tensorrt backends then run without any host copy, onnxruntime copies through
      the host. The backend splits N by its ``max_batch`` itself; precision is handled inside (cast in,
      FP32 out). It must raise ``ValueError`` (``InvalidInputError``) naming the expected and received
      shape (or device) for any other input, and must not keep a reference to the caller's batch or hand
      out one to its own buffers.
    - The constructor must raise ``BackendUnavailableError`` or ``MissingDependencyError`` (never succeed
      half-way) when it cannot run here, with a sentence saying why, so ``auto`` can try the next one.
    - ``close()`` releases the device memory and sessions; it is called exactly once, and ``run`` is not
      called after it. Backends are not thread-safe: one thread calls ``run``.
    """

    name: str
    device: str
    precision: str

    def run(self, batch: Batch) -> Batch: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class EngineConfig:
    """How to run the generator: which backend, precision, device and largest batch.

    ``backend="auto"`` picks the fastest backend that works here; ``precision="auto"`` is FP16 on CUDA and
    FP32 on the CPU; ``device="auto"`` is the first CUDA GPU when there is one. ``compile`` asks the torch
    backend for ``torch.compile`` and ``cuda_graphs`` for CUDA-graph replay of fixed batch sizes.
    ``cache_dir`` holds exported and compiled models (default ``~/.cache/p2c`` or ``$P2C_CACHE_DIR``).
    ``threads``: onnxruntime's intra-op threads on the CPU (``None``: one for the compact generator,
    whose calls are too small to split over cores, one per core for photo2cartoon's).
    """

    backend: str = "auto"
    precision: str = "auto"
    device: str = "auto"
    max_batch: int = 8
    compile: bool = False
    cuda_graphs: bool = False
    cache_dir: Path | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        from p2c.engine.registry import backend_names

        names = ("auto", *backend_names())
        if self.backend not in names:
            raise ValueError(f"backend must be one of {', '.join(names)}, got {self.backend!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if not isinstance(self.device, str) or not _DEVICE.match(self.device):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        if (
            isinstance(self.max_batch, bool)
            or not isinstance(self.max_batch, int)
            or not 1 <= self.max_batch <= 1024
        ):
            raise ValueError(f"max_batch must be an integer from 1 to 1024, got {self.max_batch!r}")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise ValueError(f"threads must be an integer >= 1 or None, got {self.threads!r}")
        if self.cache_dir is not None and not isinstance(self.cache_dir, Path):
            object.__setattr__(self, "cache_dir", Path(self.cache_dir))


def resolve_precision(precision: str, device: str | torch.device) -> str:
    """``auto`` -> FP16 on CUDA, FP32 on the CPU (where FP16 is slower and less exact)."""
    if precision != "auto":
        return precision
    return "fp16" if torch.device(device).type == "cuda" else "fp32"
