"""The compact run's two states: full (exact resume on one machine) and portable (a new machine).

- **full** (``OUT/state.pt``, git-ignored, written atomically every few minutes): the networks in
  FP32, both Adams, the step, samples seen, CPU and wall seconds, the sessions.
- **portable** (e.g. ``recipes/state/``, a few MB, committed once per session): every network in
  FP16 (``networks.safetensors``), the shipped candidate (the generator's moving average,
  ``genA2B.safetensors`` + ``.json`` in the engine's format) and ``state.json`` (step, samples,
  CPU-hours, configuration, the sessions). No optimiser moments: a continuation re-warms them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from p2c.errors import InputNotFoundError, InvalidInputError
from p2c.files import atomic_path, atomic_write
from p2c.training.onesided import NETWORK_NAMES, OneSidedNetworks
from p2c.training.widen import can_widen, widen_state

log = logging.getLogger(__name__)

EXTRA_DISCRIMINATORS = "disc_extra"  # a ModuleDict: its discriminators load one by one
# What a portable state may continue in with more channels (--widths): the generator, its average
# and the patch MLPs that read its features (p2c.training.widen).
WIDENABLE = ("generator", "generator_ema", "patch_sampler")

__all__ = [
    "CANDIDATE",
    "FULL_STATE",
    "PORTABLE_JSON",
    "PORTABLE_NETWORKS",
    "RunProgress",
    "export_portable_state",
    "full_state_step",
    "load_full_state",
    "load_portable_networks",
    "read_portable_summary",
    "save_full_state",
]

FULL_STATE = "state.pt"
PORTABLE_NETWORKS = "networks.safetensors"
PORTABLE_JSON = "state.json"
PORTABLE_FORMAT = "p2c-compact-state/1"
CANDIDATE = "genA2B.safetensors"


@dataclass
class RunProgress:
    """The counters a run carries from session to session."""

    step: int = 0
    samples: int = 0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    resumed_at: int = 0  # the step a continuation (fresh Adams) started from
    sessions: list[dict[str, Any]] = field(default_factory=list)


def save_full_state(
    path: Path,
    config: dict[str, Any],
    nets: OneSidedNetworks,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    progress: RunProgress,
) -> None:
    payload = {
        "config": config,
        "networks": {name: getattr(nets, name).state_dict() for name in NETWORK_NAMES},
        "optimizers": [optimizer.state_dict() for optimizer in optimizers],
        "progress": asdict(progress),
    }
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)


def load_full_state(
    path: Path, nets: OneSidedNetworks, optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer]
) -> RunProgress:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    for name in NETWORK_NAMES:
        _load_network(nets, name, payload["networks"].get(name, {}), path)
    for optimizer, state in zip(optimizers, payload["optimizers"], strict=True):
        optimizer.load_state_dict(state)
    return RunProgress(**payload["progress"])


def _widened(
    nets: OneSidedNetworks, name: str, state: dict[str, torch.Tensor], source: Path
) -> dict[str, torch.Tensor]:
    """``state`` grown to this run's wider network, where it is narrower; else ``state`` as it is.
    The generator and its average grow alike: its average is a copy of the fresh generator."""
    fresh = getattr(nets, name).state_dict()
    if name not in WIDENABLE or not can_widen(state, fresh):
        return state
    log.info("%s: %s widened to this run's channels (the new ones start unread)", source, name)
    return widen_state(state, fresh)


def _load_network(nets: OneSidedNetworks, name: str, state: dict[str, torch.Tensor], source: Path) -> None:
    """Load one network; the extra discriminators one by one: those the state lacks start fresh
    (a run that adds a discriminator continues from a state without it), those this run lacks are
    left out."""
    module = getattr(nets, name)
    parts = module.items() if name == EXTRA_DISCRIMINATORS else [("", module)]
    for part, network in parts:
        prefix = f"{part}." if part else ""
        own = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if part and not own:
            log.info("%s: no %s discriminator in the state: it starts fresh", source, part)
            continue
        try:
            network.load_state_dict(own)
        except RuntimeError as error:
            raise InvalidInputError(
                f"{source}: {name} does not fit this run's networks ({str(error).splitlines()[0]}); "
                "continue with the configuration in its state.json"
            ) from error


def full_state_step(path: Path) -> int | None:
    """The step of the full state at ``path``, None when there is none."""
    if not path.is_file():
        return None
    return int(torch.load(path, map_location="cpu", weights_only=True)["progress"]["step"])


def export_portable_state(
    folder: Path, config: dict[str, Any], nets: OneSidedNetworks, progress: RunProgress
) -> None:
    """``networks.safetensors`` (all FP16), the candidate generator and ``state.json``, each atomic."""
    from safetensors.torch import save_file

    from p2c.models.weights import save_generator

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"{name}.{key}": value.detach()
        .to(torch.float16 if value.is_floating_point() else value.dtype)
        .cpu()
        .contiguous()
        for name in NETWORK_NAMES
        for key, value in getattr(nets, name).state_dict().items()
    }
    with atomic_path(folder / PORTABLE_NETWORKS) as temporary:
        save_file(tensors, str(temporary))
    save_generator(nets.generator_ema, folder / CANDIDATE)
    summary = {
        "format": PORTABLE_FORMAT,
        "step": progress.step,
        "samples": progress.samples,
        "cpu_hours": round(progress.cpu_seconds / 3600, 4),
        "wall_hours": round(progress.wall_seconds / 3600, 4),
        "config": config["objective"],
        "run": {k: v for k, v in config.items() if k not in ("objective", "data_dir", "out_dir")},
        "sessions": progress.sessions,
    }
    with atomic_write(folder / PORTABLE_JSON) as stream:
        stream.write(json.dumps(summary, indent=2) + "\n")


def read_portable_summary(folder: Path) -> dict[str, Any] | None:
    path = folder / PORTABLE_JSON
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def load_portable_networks(folder: Path, nets: OneSidedNetworks) -> RunProgress:
    """Networks from FP16 (cast back to FP32) and the counters; the Adams are not part of it. A
    generator narrower than this run's (``--widths``) is widened so that it computes what it did."""
    from safetensors.torch import load_file

    summary = read_portable_summary(folder)
    if summary is None or not (folder / PORTABLE_NETWORKS).is_file():
        raise InputNotFoundError(
            f"{folder} holds no compact training state ({PORTABLE_NETWORKS}, {PORTABLE_JSON})"
        )
    tensors = load_file(str(folder / PORTABLE_NETWORKS))
    for name in NETWORK_NAMES:
        prefix = f"{name}."
        state = {k[len(prefix) :]: v.float() for k, v in tensors.items() if k.startswith(prefix)}
        _load_network(nets, name, _widened(nets, name, state, folder), folder)
    return RunProgress(
        step=summary["step"],
        samples=summary["samples"],
        cpu_seconds=summary["cpu_hours"] * 3600,
        wall_seconds=summary.get("wall_hours", 0.0) * 3600,
        resumed_at=summary["step"],
        sessions=list(summary.get("sessions", [])),
    )
