"""Ray for ``p2c-batch``: start a local Ray or join a cluster, and start the worker actors on it.

With no address a Ray instance is started here and stopped at the end (nothing to set up). With
one (``--address``, or ``RAY_ADDRESS``) the driver joins that cluster; an address where nothing
answers is reported in one line within seconds, before Ray would wait minutes for it. Ray's own
log lines and the workers' are kept off the screen unless ``-v``: they go to Ray's log files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import socket
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from p2c.batch.config import ClusterConfig, WorkerSettings
from p2c.batch.jobs import WorkerInfo
from p2c.batch.worker import BatchWorker
from p2c.errors import InvalidInputError, MissingDependencyError, P2CError

__all__ = [
    "ClusterUnavailableError",
    "WorkerPlan",
    "WorkerSlot",
    "check_address",
    "connect",
    "disconnect",
    "import_ray",
    "plan_workers",
    "start_workers",
    "stop_workers",
]

logger = logging.getLogger(__name__)

# The driver and workers pass only small messages: Ray's default object store (30% of the RAM)
# would reserve memory for nothing on a shared machine.
_OBJECT_STORE_BYTES = 256 * 1024**2
# How many times Ray restarts a worker process that died (a new process, a new engine). Each file
# has its own limit (ClusterConfig.retries), so a file that kills workers cannot use these up.
WORKER_RESTARTS = 4
_CONNECT_TIMEOUT_S = 5.0
_DEFAULT_PORT = 6379
_POLL_S = 0.5
_SLOW_START_S = 120.0


class ClusterUnavailableError(P2CError, ConnectionError):
    """No Ray cluster answers at the address given, or it cannot run the workers asked for."""


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError as error:
        raise MissingDependencyError('p2c-batch runs on Ray: pip install "p2c[cluster]"') from error
    return ray


def _host_port(address: str) -> tuple[str, int]:
    text = address.split("://", 1)[-1].rstrip("/")
    host, colon, port = text.rpartition(":")
    if not colon:
        return text, _DEFAULT_PORT
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise InvalidInputError(
            f"--address {address!r} is not HOST:PORT (e.g. head-node:6379 or ray://head-node:10001)"
        ) from None


def check_address(address: str, timeout_s: float = _CONNECT_TIMEOUT_S) -> None:
    """Raise :class:`ClusterUnavailableError` unless something listens at ``address``.

    ``auto`` (a cluster started on this machine with ``ray start``) is left to Ray, which answers
    at once when there is none.
    """
    if address in ("auto", "local"):
        return
    host, port = _host_port(address)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ClusterUnavailableError(
            f"no Ray cluster answers at {address} ({reason.lower()}); start one with `ray start --head` "
            "on the head machine, or fix --address (or RAY_ADDRESS); without either, p2c-batch runs "
            "a local Ray"
        ) from None


def _quiet(ray: Any, verbose: bool) -> None:
    """Keep the messages Ray's processes push to the driver (a worker died, a raylet warning)
    off the screen: p2c-batch reports each failure in its own line. They stay in Ray's logs."""
    if not verbose and hasattr(ray, "_private") and hasattr(ray._private.worker, "_worker_logs_enabled"):
        ray._private.worker._worker_logs_enabled = False


def connect(config: ClusterConfig) -> ModuleType:
    """Start a local Ray, or join the one at ``config.address``; returns the ``ray`` module.

    When this process is already connected to a Ray, that one is used as it is.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray
    options: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": config.verbose,
        "logging_level": logging.INFO if config.verbose else logging.ERROR,
    }
    if config.address is None:
        cores = os.cpu_count() or 1
        wanted = (config.workers or 1) * (config.cpus_per_worker or 1)
        ray.init(
            address="local",
            num_cpus=max(cores, math.ceil(wanted)),
            object_store_memory=_OBJECT_STORE_BYTES,
            **options,
        )
    else:
        check_address(config.address)
        try:
            ray.init(address=config.address, **options)
        except (ConnectionError, RuntimeError, ValueError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            # Ray's own message for a refused token reads like a network failure.
            hint = (
                "; if the cluster uses token authentication (the default of `ray start`), set "
                "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or ~/.ray/auth_token) as for any Ray driver"
                if "failed to connect" in first_line.lower() or "auth" in first_line.lower()
                else ""
            )
            raise ClusterUnavailableError(
                f"cannot join the Ray cluster at {config.address}: {first_line}{hint}"
            ) from None
    _quiet(ray, config.verbose)
    return ray


def disconnect(ray: ModuleType) -> None:
    """Leave the cluster (and stop the local Ray this run started)."""
    if ray.is_initialized():
        ray.shutdown()


@dataclass(frozen=True)
class WorkerPlan:
    """How many workers, and the CPUs and GPUs Ray reserves for each."""

    workers: int
    cpus: float
    gpus: float


def plan_workers(config: ClusterConfig, resources: dict[str, float], nodes: int, local: bool) -> WorkerPlan:
    """Resolve the ``None`` fields of ``config`` against the cluster's ``resources``; raise
    :class:`ClusterUnavailableError` when the cluster cannot hold the workers asked for."""
    total_cpus, total_gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    gpus = config.gpus_per_worker if config.gpus_per_worker is not None else (1.0 if total_gpus else 0.0)
    if config.workers is not None:
        workers = config.workers
    elif gpus > 0:
        workers = max(int(total_gpus // gpus), 1)
    else:
        workers = max(nodes, 1)
    if config.cpus_per_worker is not None:
        cpus = config.cpus_per_worker
    else:
        cpus = float(max(int(total_cpus // workers), 1)) if local else 1.0
    if workers * gpus > total_gpus + 1e-9:
        raise ClusterUnavailableError(
            f"{workers} worker(s) x {gpus:g} GPU need {workers * gpus:g} GPUs, the cluster has "
            f"{total_gpus:g}; use fewer --workers, a fraction such as --gpus-per-worker 0.5, or "
            "--gpus-per-worker 0 for the CPU"
        )
    if workers * cpus > total_cpus + 1e-9:
        raise ClusterUnavailableError(
            f"{workers} worker(s) x {cpus:g} CPU need {workers * cpus:g} CPUs, the cluster has "
            f"{total_cpus:g}; use fewer --workers or a smaller --cpus-per-worker"
        )
    return WorkerPlan(workers=workers, cpus=cpus, gpus=gpus)


@dataclass
class WorkerSlot:
    """One worker actor as the driver sees it: ``busy`` with a file, ``restarting`` after its
    process died (Ray starts a new one), or no longer ``alive`` (out of restarts)."""

    index: int
    handle: Any
    info: WorkerInfo
    alive: bool = True
    busy: bool = False
    restarting: bool = False

    @property
    def free(self) -> bool:
        return self.alive and not self.busy and not self.restarting


def _settings_for(plan: WorkerPlan, settings: WorkerSettings) -> WorkerSettings:
    """Workers without a GPU run on the CPU even where the machine has one (``--device auto``)."""
    if plan.gpus == 0 and settings.engine.device == "auto":
        return dataclasses.replace(settings, engine=dataclasses.replace(settings.engine, device="cpu"))
    return settings


def _remote_cause(ray: Any, error: BaseException) -> BaseException:
    """The exception a worker raised, when it is one of ours (shown as one line); else ``error``."""
    cause = getattr(error, "cause", None)
    if isinstance(error, ray.exceptions.RayTaskError) and isinstance(cause, P2CError):
        return cause
    return error


def start_workers(ray: Any, plan: WorkerPlan, settings: WorkerSettings) -> list[WorkerSlot]:
    """Start ``plan.workers`` actors and wait until each has its engine; a worker that cannot
    create one (missing weights on that machine, no CUDA) stops the run with its reason."""
    actor = ray.remote(BatchWorker).options(
        num_cpus=plan.cpus, num_gpus=plan.gpus, max_restarts=WORKER_RESTARTS, max_task_retries=0
    )
    worker_settings = _settings_for(plan, settings)
    handles = [actor.remote(worker_settings) for _ in range(plan.workers)]
    starts = {handle.start.remote(): index for index, handle in enumerate(handles)}
    infos: dict[int, WorkerInfo] = {}
    began = time.monotonic()
    warned = False
    while len(infos) < len(handles):
        ready, _ = ray.wait(list(starts), num_returns=1, timeout=_POLL_S)
        for ref in ready:
            try:
                infos[starts.pop(ref)] = ray.get(ref)
            except ray.exceptions.RayError as error:
                cause = _remote_cause(ray, error)
                if cause is not error:
                    raise cause from None
                raise
        if not warned and time.monotonic() - began > _SLOW_START_S:
            warned = True
            logger.warning(
                "%d of %d workers have started after %.0f s; the cluster may be busy with other work",
                len(infos),
                len(handles),
                _SLOW_START_S,
            )
    return [WorkerSlot(index, handle, infos[index]) for index, handle in enumerate(handles)]


def stop_workers(ray: Any, slots: list[WorkerSlot], timeout_s: float = 10.0) -> None:
    """Let each live worker release its engine, then end the actors."""
    alive = [slot for slot in slots if slot.alive and not slot.restarting]
    if alive:
        refs = [slot.handle.stop.remote() for slot in alive]
        ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
    for slot in slots:
        with contextlib.suppress(ray.exceptions.RayError):
            ray.kill(slot.handle, no_restart=True)
