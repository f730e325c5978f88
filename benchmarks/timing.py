"""Timing helpers of the generator benchmarks: calls timed with CUDA synchronised around them,
cases timed in turn on a busy machine, and a later start measured in a fresh process."""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from p2c.engine import EngineConfig, create_engine
from p2c.engine.base import Backend

__all__ = ["cached_start", "interleaved_timings", "time_calls"]

log = logging.getLogger("p2c.benchmarks.generator_throughput")


def _sync(cuda: bool) -> None:
    if cuda:
        torch.cuda.synchronize()


def time_calls(
    call: Callable[[], object], warmup: int, iterations: int, budget_s: float, cuda: bool
) -> list[float]:
    """Seconds per call after ``warmup`` calls; warm-up and timing each stop early past ``budget_s``."""
    started = time.perf_counter()
    for _ in range(warmup):
        call()
        if time.perf_counter() - started > budget_s:
            break
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < iterations:
        _sync(cuda)
        begin = time.perf_counter()
        call()
        _sync(cuda)
        times.append(time.perf_counter() - begin)
        if time.perf_counter() - started > budget_s:
            break
    return times


def interleaved_timings(
    weights: Path, faces: np.ndarray, cases: list[tuple[str, str]], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """The cases timed call by call in turn (A B C A B C ...), numpy in and out, per batch size: on a
    shared machine a change of load then hits every case alike, so their ratios hold."""
    engines: list[tuple[str, str, Backend]] = []
    for name, precision in cases:
        config = EngineConfig(
            backend=name, precision=precision, device=args.device, max_batch=max(args.batch_sizes)
        )
        try:
            engines.append((name, precision, create_engine(weights, config)))
        except Exception as error:
            log.warning("interleaved run: skipping %s %s: %s", name, precision, error)
    rows = []
    try:
        cuda = any(engine.device.startswith("cuda") for _, _, engine in engines)
        for batch_size in args.batch_sizes:
            batch = np.ascontiguousarray(np.resize(faces, (batch_size, *faces.shape[1:])))
            times: dict[str, list[float]] = {f"{n} {p}": [] for n, p, _ in engines}
            for _, _, engine in engines:
                engine.run(batch)  # warm-up at this batch size
            for _ in range(max(3, args.iterations)):
                for name, precision, engine in engines:
                    times[f"{name} {precision}"] += time_calls(
                        partial(engine.run, batch), 0, 1, args.budget_s, cuda
                    )
            medians = {case: float(np.median(values)) for case, values in times.items()}
            first = next(iter(medians.values()))
            rows.append(
                {
                    "batch": batch_size,
                    "rounds": max(3, args.iterations),
                    "ms_per_batch_p50": {case: 1000 * m for case, m in medians.items()},
                    "faces_per_s": {case: batch_size / m for case, m in medians.items()},
                    "speed_vs_first": {case: first / m for case, m in medians.items()},
                }
            )
            log.info(
                "interleaved batch %d: %s", batch_size, {c: f"{1000 * m:.1f} ms" for c, m in medians.items()}
            )
    finally:
        for _, _, engine in engines:
            engine.close()
    return rows


# A later start in a fresh process: what a user waits for once a compiled backend's cache is warm.
_START_CODE = """
import json, sys, time
started = time.perf_counter()
import numpy as np
from p2c.engine import EngineConfig, create_engine
imported = time.perf_counter()
engine = create_engine(sys.argv[1], EngineConfig(**json.loads(sys.argv[2])))
created = time.perf_counter()
size = int(sys.argv[3])
engine.run(np.zeros((1, 3, size, size), np.float32))
done = time.perf_counter()
times = {"import_s": imported - started, "create_s": created - imported, "first_call_s": done - created}
print(json.dumps(times))
"""


def cached_start(
    weights: Path, name: str, precision: str, size: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Seconds a fresh process takes to import p2c.engine, create the engine (a compiled backend
    loads it from the cache the timed run left) and run its first call."""
    config = {
        "backend": name,
        "precision": precision,
        "device": args.device,
        "max_batch": max(args.batch_sizes),
    }
    command = [sys.executable, "-c", _START_CODE, str(weights), json.dumps(config), str(size)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit code {done.returncode}"}
    times: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    times["start_s"] = times["create_s"] + times["first_call_s"]
    return times
