"""Training checkpoints: atomic writes, the latest N kept, RNG states, compact variants.

A checkpoint is a plain dict of tensors and numbers (loadable with ``weights_only=True``):
the six networks at the top level under the released names (so ``load_generator(path)`` and
``--pretrained`` read it like ``photo2cartoon_weights.pt``), plus ``format``, ``step``,
``config``, ``optimizers``, ``scalers`` and ``rng`` (one entry per rank).
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from p2c.errors import InputNotFoundError, OutputError, WeightsError
from p2c.files import atomic_path
from p2c.training.gan import DISCRIMINATOR_KEYS, GENERATOR_KEYS, NETWORK_KEYS

__all__ = [
    "CHECKPOINT_FORMAT",
    "capture_rng",
    "checkpoint_path",
    "compact",
    "expand",
    "latest_checkpoint",
    "list_checkpoints",
    "prune_checkpoints",
    "read_checkpoint",
    "restore_rng",
    "write_checkpoint",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "p2c-train/1"
_NAME = re.compile(r"^ckpt_(\d{8})\.pt$")


def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"ckpt_{step:08d}.pt"


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` for every checkpoint in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def latest_checkpoint(folder: Path) -> Path | None:
    checkpoints = list_checkpoints(folder)
    return checkpoints[-1][1] if checkpoints else None


def prune_checkpoints(folder: Path, keep: int) -> None:
    for _, path in list_checkpoints(folder)[:-keep]:
        path.unlink(missing_ok=True)


def write_checkpoint(path: Path, payload: Mapping[str, Any]) -> None:
    """``torch.save`` through :func:`p2c.files.atomic_path`: never a torn file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary:
            torch.save(dict(payload), temporary)
    except OSError as error:
        raise OutputError(f"cannot write checkpoint {path}: {error.strerror or error}") from error


def read_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load with ``weights_only=True`` (no pickled code runs); unreadable files are WeightsError."""
    if not path.is_file():
        raise InputNotFoundError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # torch raises pickle, zip and runtime errors for foreign files
        raise WeightsError(
            f"{path} is not a PyTorch checkpoint p2c can read safely ({type(error).__name__}); "
            "pass photo2cartoon_weights.pt or a p2c-train checkpoint"
        ) from error
    if not isinstance(payload, dict):
        raise WeightsError(f"{path} holds a {type(payload).__name__}, not a dict of state dicts")
    return payload


def _cast_floats(state: Mapping[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            out[key] = value.to(dtype)
        elif isinstance(value, Mapping):
            out[key] = _cast_floats(value, dtype)
        else:
            out[key] = value
    return out


def compact(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Discriminators and their Adam moments in FP16; generators stay FP32 (they are the product).

    Roughly halves the file. A run resumed from it continues closely but not bit-exactly.
    """
    out = dict(payload)
    for key in DISCRIMINATOR_KEYS:
        out[key] = _cast_floats(payload[key], torch.float16)
    optimizers = dict(payload["optimizers"])
    optimizers["D"] = _cast_floats(optimizers["D"], torch.float16)
    out["optimizers"] = optimizers
    out["compact"] = True
    return out


def expand(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Undo :func:`compact` (FP16 -> FP32) so state dicts load into FP32 networks and optimisers."""
    if not payload.get("compact"):
        return dict(payload)
    out = dict(payload)
    for key in DISCRIMINATOR_KEYS:
        out[key] = _cast_floats(payload[key], torch.float32)
    optimizers = dict(payload["optimizers"])
    optimizers["D"] = _cast_floats(optimizers["D"], torch.float32)
    out["optimizers"] = optimizers
    return out


def capture_rng() -> dict[str, Any]:
    """This process's torch, CUDA, NumPy and Python RNG states as tensors and plain numbers."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].cpu().numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached"],
        )
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = [s.cpu() for s in state["cuda"]]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def is_released_format(payload: Mapping[str, Any]) -> bool:
    return all(key in payload for key in NETWORK_KEYS)


def has_generators(payload: Mapping[str, Any]) -> bool:
    return all(key in payload for key in GENERATOR_KEYS)
