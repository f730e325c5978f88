"""Data parallelism for the compact run on one machine: N processes of one thread each, over gloo.

On a small CPU, two single-threaded processes that average their gradients train faster than one
process with two threads (small convolutions split poorly across threads, docs/default-model.md)
and keep their pace when another program takes a core, where OpenMP threads wait for each other.

:class:`ProcessGroup` is what the training loop needs from its peers: averaged gradients, flags
every rank agrees on (stop, save) and totals (CPU seconds). :data:`SOLO` is the one-process group,
which talks to nobody.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["SOLO", "ProcessGroup", "early_signal", "free_port", "spawn"]


@dataclass(frozen=True)
class ProcessGroup:
    rank: int = 0
    world: int = 1

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def average_gradients(self, parameters: Sequence[torch.nn.Parameter]) -> None:
        """Replace each gradient by its mean over the ranks, in one all-reduce."""
        if self.world == 1:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def agree(self, flags: Sequence[bool]) -> list[bool]:
        """Each flag true on any rank, on every rank: all of them stop or save at the same step."""
        if self.world == 1:
            return list(flags)
        values = torch.tensor([float(f) for f in flags])
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return [bool(v) for v in values]

    def total(self, value: float) -> float:
        """The sum of ``value`` over the ranks (CPU seconds)."""
        if self.world == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(tensor)
        return float(tensor)


SOLO = ProcessGroup()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_EARLY_SIGNALS: list[str] = []


def _remember_signal(number: int, _frame: object) -> None:
    _EARLY_SIGNALS.append(signal.Signals(number).name)


def early_signal() -> str | None:
    """A SIGTERM/SIGINT this process got before its training loop installed its own handler."""
    return _EARLY_SIGNALS[0] if _EARLY_SIGNALS else None


def _entry(
    rank: int, world: int, port: int, log_level: int, function: Callable[..., Any], args: tuple[Any, ...]
) -> None:
    # A signal before the training loop takes over must not kill the process silently.
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, _remember_signal)
    # A spawned process starts with bare logging: give it the parent's level, the commands' format.
    logging.basicConfig(level=log_level, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", force=True)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        function(ProcessGroup(rank, world), *args)
        # Tear down together: a rank that destroys the group while its peer still talks to it can
        # abort the peer in gloo's threads ("terminate called without an active exception").
        dist.barrier()
    finally:
        dist.destroy_process_group()


def spawn(world: int, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """Run ``function(group, *args)`` in ``world`` fresh processes; SIGTERM/SIGINT reach all of them.

    The processes share this one's process group, so a signal sent to it (Ctrl-C in a terminal)
    reaches them; a signal sent to this process alone is passed on to them.
    """
    import torch.multiprocessing as mp

    # The children write to what this process calls stderr, even where the command line has sent
    # file descriptor 2 to /dev/null to hide native libraries' noise (p2c.cli.run_command).
    saved = os.dup(2)
    try:
        if sys.stderr is not None and sys.stderr.fileno() != 2:
            os.dup2(sys.stderr.fileno(), 2)
        context = mp.start_processes(
            _entry,
            args=(world, free_port(), logging.getLogger().level, function, args),
            nprocs=world,
            join=False,
            start_method="spawn",
        )
    finally:
        os.dup2(saved, 2)
        os.close(saved)

    def forward(number: int, _frame: object) -> None:
        for process in context.processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, number)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not context.join():
            pass
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
