"""The compact resume state of a time-sliced run: small enough to travel between GPU machines.

A full checkpoint at photo2cartoon's size is 431 MB (262 MB compact), too big to carry from one
short-lived GPU machine to the next. A slice state keeps what a run cannot rebuild and drops the
rest, within :data:`SLICE_LIMIT_BYTES` (60 MB):

- both generators in FP32, exactly (2 x 3.83 M parameters, 30.6 MB): they are the product
  (or in FP16, 15.3 MB, with ``generators="fp16"``; see :data:`GENERATOR_PRECISIONS`);
- the four discriminators with every weight matrix or convolution kernel in int8, one FP32 scale
  per output channel (symmetric), and the small tensors (biases, spectral-norm vectors) in FP16.
  They hold 28.3 M values (global 2 x 13.3 M, local 2 x 0.83 M): FP32 would be 113 MB, FP16
  57 MB, which with the generators is 87 MB, so FP16 does not fit; int8 is 28.3 MB. The round
  trip moves each discriminator weight by at most half a quantisation step (1/254 of its
  channel's largest magnitude);
- the step, the run's configuration, each process's RNG states and the warm-up start;
- no Adam moments (another 2 x 34.5 M values) and no GradScaler state: a run resumed from a
  slice state restarts both optimisers and ramps the learning rate up linearly over
  ``warmup_steps`` (fresh Adam's first updates are about ``lr`` in every coordinate, whatever
  the gradient's scale, which a warm-up keeps from shaking a trained GAN).

The file is a plain dict of tensors and numbers (``torch.load(weights_only=True)`` reads it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from p2c.errors import InputNotFoundError, OutputError, WeightsError
from p2c.files import atomic_path
from p2c.training.gan import DISCRIMINATOR_KEYS, GENERATOR_KEYS

__all__ = [
    "GENERATOR_PRECISIONS",
    "SLICE_FORMAT",
    "SLICE_LIMIT_BYTES",
    "dequantize_int8",
    "pack_slice_state",
    "quantize_int8",
    "read_slice_state",
    "unpack_slice_state",
    "write_slice_state",
]

logger = logging.getLogger(__name__)

SLICE_FORMAT = "p2c-slice/1"
SLICE_LIMIT_BYTES = 60_000_000  # decimal megabytes: what the issue allows per slice
# fp32: 59.4 MB at full size, exact. fp16: 44.1 MB, for when the state must travel in one 64 MiB
# bundle with the training crops and the Face ID network (docs/default-model.md). Rounding a weight
# to FP16 moves it by at most 2^-11 of its magnitude: less than one Adam step (about lr = 1e-4)
# for every weight below 0.2 in magnitude, which is nearly all of them; done once per slice.
GENERATOR_PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16}


def quantize_int8(tensor: torch.Tensor) -> dict[str, torch.Tensor]:
    """Symmetric int8 with one FP32 scale per output channel (dimension 0)."""
    flat = tensor.detach().float().reshape(tensor.shape[0], -1)
    scale = flat.abs().amax(dim=1).clamp_min(1e-12) / 127.0
    values = torch.round(flat / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return {"int8": values.reshape(tensor.shape).cpu(), "scale": scale.cpu()}


def dequantize_int8(packed: Mapping[str, torch.Tensor]) -> torch.Tensor:
    values = packed["int8"]
    scale = packed["scale"].reshape(-1, *([1] * (values.dim() - 1)))
    return values.float() * scale


def _pack_discriminator(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    packed: dict[str, Any] = {}
    for name, tensor in state.items():
        if tensor.is_floating_point() and tensor.dim() >= 2:
            packed[name] = quantize_int8(tensor)
        elif tensor.is_floating_point():
            packed[name] = tensor.detach().to(torch.float16).cpu()
        else:
            packed[name] = tensor.detach().cpu()
    return packed


def _unpack_discriminator(packed: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for name, value in packed.items():
        if isinstance(value, Mapping):
            state[name] = dequantize_int8(value)
        else:
            state[name] = value.float() if value.is_floating_point() else value
    return state


def pack_slice_state(payload: Mapping[str, Any], generators: str = "fp32") -> dict[str, Any]:
    """The slice state of a full training payload (``Trainer._payload`` or a read checkpoint).

    ``generators``: ``fp32`` (exact) or ``fp16`` (see :data:`GENERATOR_PRECISIONS`).
    """
    if generators not in GENERATOR_PRECISIONS:
        raise ValueError(f"generators must be one of {', '.join(GENERATOR_PRECISIONS)}, got {generators!r}")
    dtype = GENERATOR_PRECISIONS[generators]
    state: dict[str, Any] = {
        "format": SLICE_FORMAT,
        "step": int(payload["step"]),
        "config": dict(payload["config"]),
        "world_size": int(payload.get("world_size", 1)),
        "rng": payload.get("rng", []),
        "warmup_start": payload.get("warmup_start"),
    }
    for key in GENERATOR_KEYS:
        state[key] = {
            name: (t.detach().to(dtype) if t.is_floating_point() else t.detach()).cpu()
            for name, t in payload[key].items()
        }
    for key in DISCRIMINATOR_KEYS:
        state[key] = _pack_discriminator(payload[key])
    return state


def unpack_slice_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """FP32 state dicts of the six networks under their released names, plus step, config, rng."""
    if state.get("format") != SLICE_FORMAT:
        raise WeightsError(
            f"not a p2c slice state (format {state.get('format')!r}, expected {SLICE_FORMAT!r}); "
            "pass a file written by p2c-train --slice-state"
        )
    out = {key: value for key, value in state.items() if key not in DISCRIMINATOR_KEYS}
    for key in GENERATOR_KEYS:
        out[key] = {name: t.float() if t.is_floating_point() else t for name, t in state[key].items()}
    for key in DISCRIMINATOR_KEYS:
        out[key] = _unpack_discriminator(state[key])
    return out


def write_slice_state(
    path: Path, payload: Mapping[str, Any], generators: str = "fp32", limit: int = SLICE_LIMIT_BYTES
) -> int:
    """Pack ``payload`` and write it atomically to ``path``; returns its size in bytes.

    A state over ``limit`` is not written (an existing file at ``path`` is kept): OutputError.
    """
    state = pack_slice_state(payload, generators)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary:
            torch.save(state, temporary)
            size = os.path.getsize(temporary)
            if size > limit:  # raised inside: the temporary file goes, an existing state stays
                raise OutputError(
                    f"the slice state would be {size / 1e6:.1f} MB, over its {limit / 1e6:.0f} MB limit "
                    f"(networks with --ch {state['config'].get('ch')}); train photo2cartoon's size "
                    "(--ch 32) or carry a full checkpoint instead"
                )
    except OutputError:
        raise
    except OSError as error:
        raise OutputError(f"cannot write slice state {path}: {error.strerror or error}") from error
    logger.info("slice state %s: step %d, %.1f MB", path, state["step"], size / 1e6)
    return size


def read_slice_state(path: Path) -> dict[str, Any]:
    """Read (``weights_only=True``) and unpack a slice state; errors say what to pass instead."""
    if not path.is_file():
        raise InputNotFoundError(f"slice state {path} does not exist; pass a file written by --slice-state")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, zip and runtime errors for foreign files
        raise WeightsError(
            f"{path} is not a slice state p2c can read safely ({type(error).__name__}); "
            "pass a file written by p2c-train --slice-state"
        ) from error
    if not isinstance(state, dict):
        raise WeightsError(f"{path} holds a {type(state).__name__}, not a p2c slice state")
    return unpack_slice_state(state)
