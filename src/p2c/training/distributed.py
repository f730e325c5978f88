"""One process per device: torchrun's environment, process groups and rank-0-only I/O.

``torchrun --nproc_per_node N`` (or ``python -m torch.distributed.run``) sets RANK, LOCAL_RANK
and WORLD_SIZE; across machines add ``--nnodes``, ``--node_rank`` and ``--rdzv_endpoint``.
Without those variables training runs as a single process.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from p2c.errors import InvalidInputError

__all__ = ["DistContext", "all_gather_objects", "init_distributed", "shutdown", "use_device"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as error:
        raise InvalidInputError(f"environment variable {name}={value!r} is not an integer") from error


def use_device(device: torch.device) -> None:
    """Make ``device`` this process's current GPU (NCCL and ``torch.cuda`` calls default to it).

    The device itself comes from :func:`p2c.devices.resolve_device` (``cuda`` -> ``cuda:LOCAL_RANK``).
    """
    if device.type == "cuda":
        torch.cuda.set_device(device)


def init_distributed(device: torch.device) -> DistContext:
    """Join the process group torchrun describes (nccl on CUDA, gloo on CPU), or stay single."""
    world_size = _env_int("WORLD_SIZE", 1)
    context = DistContext(_env_int("RANK", 0), _env_int("LOCAL_RANK", 0), world_size)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        logger.info("rank %d of %d joined the %s process group", context.rank, world_size, backend)
    return context


def local_rank_from_env() -> int:
    return _env_int("LOCAL_RANK", 0)


def all_gather_objects(context: DistContext, value: Any) -> list[Any]:
    """Every rank's ``value`` in rank order (just ``[value]`` when single-process)."""
    if not context.distributed:
        return [value]
    gathered: list[Any] = [None] * context.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def barrier(context: DistContext) -> None:
    if context.distributed:
        dist.barrier()


def shutdown(context: DistContext) -> None:
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()
