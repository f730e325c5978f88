"""The generator state: what a run keeps between GPU sessions, small enough to live in the repository.

A folder with both generators in the engine's format (FP16 safetensors + JSON architecture and
model config, as :func:`p2c.models.weights.save_generator` writes them: 7.7 MB each at
photo2cartoon's size) and ``state.json`` (the step, the networks' shape options including ``arch``,
and whatever the caller adds, such as the samples seen). The discriminators and both Adams are not
kept: a run continued with ``p2c-train --init-from STATE`` builds fresh ones and first trains the
discriminators alone for ``--d-warmup-steps`` steps (generators frozen), so that the generators'
first updates come from discriminators that already tell their cartoons from real ones.

Rounding a generator to FP16 moves each weight by at most 2^-11 of its magnitude: less than one
Adam step (about ``lr`` = 1e-4) for every weight below 0.2 in magnitude, which is nearly all.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from p2c.errors import InputNotFoundError, OutputError, WeightsError
from p2c.files import atomic_write
from p2c.models.architectures import DEFAULT_ARCH
from p2c.training.gan import GENERATOR_KEYS

__all__ = ["STATE_FORMAT", "GeneratorState", "read_generator_state", "write_generator_state"]

logger = logging.getLogger(__name__)

STATE_FORMAT = "p2c-generator-state/1"
STATE_FILE = "state.json"


@dataclass
class GeneratorState:
    """Both generators' FP32 state dicts, the step they reached and ``state.json``'s other entries."""

    step: int
    networks: dict[str, dict[str, torch.Tensor]]
    info: dict[str, Any] = field(default_factory=dict)


def write_generator_state(
    folder: Path,
    generators: Mapping[str, nn.Module],
    step: int,
    config: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``genA2B``/``genB2A`` (FP16) and ``state.json`` into ``folder``; returns ``folder``.

    ``config``: the run's :meth:`TrainConfig.to_dict`; its shape options (``arch``, ``ch``,
    ``img_size``, ``light``) are recorded. ``extra``: more entries for ``state.json`` (kept as given).
    """
    from p2c.training.export import export_generator

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create {folder}: {error.strerror or error}") from error
    for key in GENERATOR_KEYS:
        export_generator(generators[key], folder / f"{key}.safetensors")  # type: ignore[arg-type]
    info = {
        **(extra or {}),
        "format": STATE_FORMAT,
        "step": int(step),
        "arch": config.get("arch", DEFAULT_ARCH),
        "ch": config["ch"],
        "img_size": config["img_size"],
        "light": config["light"],
    }
    with atomic_write(folder / STATE_FILE) as stream:
        stream.write(json.dumps(info, indent=2, sort_keys=True) + "\n")
    logger.info("generator state %s: step %d", folder, step)
    return folder


def read_generator_state(folder: Path) -> GeneratorState:
    """Read a folder :func:`write_generator_state` wrote; errors say what to pass instead."""
    from p2c.models.weights import read_state_dict

    info_path = folder / STATE_FILE
    if not info_path.is_file():
        raise InputNotFoundError(
            f"{folder} holds no {STATE_FILE}; pass a folder written by p2c-train --generator-state"
        )
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        step = int(info["step"])
    except (ValueError, KeyError, TypeError) as error:
        raise WeightsError(f"{info_path} is not a p2c generator state ({error})") from error
    if info.get("format") != STATE_FORMAT:
        raise WeightsError(f"{info_path} has format {info.get('format')!r}, expected {STATE_FORMAT!r}")
    networks = {key: read_state_dict(folder / f"{key}.safetensors")[0] for key in GENERATOR_KEYS}
    return GeneratorState(step=step, networks=networks, info=info)
