"""The Torch-TensorRT backend (FP16, dynamic batch, engines cached on disk)."""

from __future__ import annotations

from pathlib import Path

from p2c.engine.base import Backend, EngineConfig
from p2c.errors import BackendUnavailableError, MissingDependencyError

__all__ = ["TensorRTBackend"]


class TensorRTBackend:
    name = "tensorrt"

    @classmethod
    def from_weights(cls, weights: Path, config: EngineConfig) -> Backend:
        try:
            import torch_tensorrt  # noqa: F401
        except ImportError as error:
            raise MissingDependencyError(
                'the tensorrt backend needs torch-tensorrt: pip install "p2c[gpu]"'
            ) from error
        raise BackendUnavailableError("the tensorrt backend is not built yet in this version")
