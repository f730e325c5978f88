"""Backends by name, and ``create_engine``: the one way the rest of p2c gets a generator to run.

Adding a backend means adding one factory to ``_FACTORIES``; ``auto`` tries the backends fastest first
by the figures measured per device type in :mod:`p2c.engine.ranking`. Factories import their library
inside, so a missing optional library only matters when it is asked for.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path

import torch

from p2c.engine.base import Backend, EngineConfig
from p2c.engine.ranking import explain_order, rank_backends
from p2c.errors import BackendUnavailableError, MissingDependencyError, P2CError, WeightsError
from p2c.models.weights import default_weights_path, detect_format

__all__ = ["auto_order", "available_backends", "backend_names", "create_backend", "create_engine"]

log = logging.getLogger(__name__)

BackendFactory = Callable[[Path, EngineConfig], Backend]


def _torch(weights: Path, config: EngineConfig) -> Backend:
    weights_format = detect_format(weights)
    if weights_format in ("onnx", "aoti"):
        runner = "onnxruntime" if weights_format == "onnx" else "inductor"
        what = "an ONNX file" if weights_format == "onnx" else "a compiled AOTInductor package"
        raise BackendUnavailableError(
            f"the torch backend runs .pt or .safetensors weights, and {weights} is {what}; "
            f"use --backend {runner}"
        )
    from p2c.engine.torch_backend import TorchBackend

    return TorchBackend.from_weights(weights, config)


def _onnxruntime(weights: Path, config: EngineConfig) -> Backend:
    from p2c.engine.onnx_runtime import OnnxRuntimeBackend

    return OnnxRuntimeBackend.from_weights(weights, config)


def _tensorrt(weights: Path, config: EngineConfig) -> Backend:
    from p2c.engine.tensorrt import TensorRTBackend

    return TensorRTBackend.from_weights(weights, config)


def _inductor(weights: Path, config: EngineConfig) -> Backend:
    from p2c.engine.inductor import InductorBackend

    return InductorBackend.from_weights(weights, config)


_FACTORIES: dict[str, BackendFactory] = {
    "torch": _torch,
    "onnxruntime": _onnxruntime,
    "tensorrt": _tensorrt,
    "inductor": _inductor,
}
# The library each backend needs, checked without importing it.
_LIBRARIES = {
    "torch": "torch",
    "onnxruntime": "onnxruntime",
    "tensorrt": "torch_tensorrt",
    "inductor": "torch",
}
# The only backend that runs each of these weights formats.
_ONLY_RUNNER = {"onnx": "onnxruntime", "aoti": "inductor"}


def _device_type(device: str) -> str:
    """``cpu`` or ``cuda``: which kind of device ``device`` (a --device value) asks for; never raises."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if device.startswith("cuda") else "cpu"


def backend_names() -> list[str]:
    """Every backend p2c knows, installed or not."""
    return list(_FACTORIES)


def available_backends() -> list[str]:
    """The backends whose library is installed and that have a device to run on here."""
    names = [name for name in _FACTORIES if importlib.util.find_spec(_LIBRARIES[name]) is not None]
    if "tensorrt" in names and not torch.cuda.is_available():
        names.remove("tensorrt")
    return names


def auto_order(weights_format: str, device: str, arch: str = "photo2cartoon") -> list[str]:
    """The backends ``auto`` tries for these weights on ``device`` (a --device value or a resolved one):
    fastest first by the measured figures of the generator's ``arch`` in :mod:`p2c.engine.ranking`."""
    if weights_format in _ONLY_RUNNER:
        return [_ONLY_RUNNER[weights_format]]
    return rank_backends(_device_type(device), _FACTORIES, arch)


def _arch(weights: Path, weights_format: str) -> str:
    """The generator architecture of a weights file, for the ranking: photo2cartoon's unless its
    config says otherwise (an ONNX or compiled file carries none)."""
    if weights_format not in ("pt", "safetensors"):
        return "photo2cartoon"
    from p2c.models.architectures import arch_of
    from p2c.models.weights import read_config

    try:
        return arch_of(read_config(weights))
    except (P2CError, OSError, ValueError, KeyError):  # the backend itself will say what is wrong
        return "photo2cartoon"


def create_backend(name: str, weights: str | Path, config: EngineConfig) -> Backend:
    """The backend ``name`` running ``weights``; ValueError listing the names for an unknown one."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown backend {name!r}; choose one of: {', '.join(['auto', *_FACTORIES])}")
    return _FACTORIES[name](Path(weights), config)


def create_engine(weights: str | Path | None, config: EngineConfig | None = None) -> Backend:
    """A ready backend running the generator in ``weights`` (default: the model shipped with p2c).

    With ``config.backend == "auto"`` each backend in :func:`auto_order` is tried in turn; every
    downgrade is logged at WARNING, and if none works one BackendUnavailableError lists each reason.
    """
    config = config or EngineConfig()
    if weights is None:
        weights = default_weights_path()
        if weights is None:
            raise WeightsError(
                "no default model ships with this version yet; pass --weights PATH with photo2cartoon's "
                "photo2cartoon_weights.pt or .onnx, or a p2c .safetensors file"
            )
    weights = Path(weights)
    weights_format = detect_format(weights)  # a bad file is the user's to fix, whatever the backend
    if config.backend != "auto":
        return create_backend(config.backend, weights, config)
    device_type = _device_type(config.device)
    arch = _arch(weights, weights_format)
    order = auto_order(weights_format, device_type, arch)
    reasons: list[str] = []
    for name in order:
        try:
            backend = create_backend(name, weights, config)
        except (BackendUnavailableError, MissingDependencyError) as error:
            reasons.append(f"{name}: {error}")
            log.debug("backend %s unavailable: %s", name, error)
            continue
        if reasons:
            log.warning("using the %s backend because %s", name, "; ".join(reasons))
        log.info(
            "inference backend: %s on %s at %s (auto: the first that works here of %s)",
            backend.name,
            backend.device,
            backend.precision,
            explain_order(device_type, order, arch),
        )
        return backend
    raise BackendUnavailableError("no inference backend can run here: " + "; ".join(reasons))
