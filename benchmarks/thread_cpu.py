"""Where a pipeline run's CPU time goes, thread by thread (Linux ``/proc``): the benchmarks' profile.

A stage's own thread is only part of its cost: MediaPipe runs its models on graph threads of its
own (named ``mediapipe/N``), onnxruntime on a pool, FFmpeg decodes on frame threads (``av:...``)
and x264 encodes on threads of its own. :class:`ThreadCpuSampler` reads every thread's CPU time
from ``/proc/self/task`` every 0.1 s (a thread's time is gone from there once it ends)
and sums it by the stage it belongs to:

- the pipeline's threads by their Python names (``p2c-source``, ``p2c-tracker``, ...; the sinks
  run in the main thread, counted as ``sink``);
- ``mediapipe/*`` threads to the tracker (only the tracker's stage runs MediaPipe), ``av:*``
  threads to the source (decoding);
- threads created while :func:`os_thread_name` gave their creator a name (the engine's pool when
  the engine is built inside ``os_thread_name("p2c-engine")``; the encoder's when the main thread
  is named ``p2c-sink``) inherit that name, as Linux threads do.

``stage_cpu(frames)`` gives CPU milliseconds per frame and cores (CPU seconds over the window's
wall seconds) for each group. Elsewhere than Linux it measures nothing and says so.
"""

from __future__ import annotations

import ctypes
import os
import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["ThreadCpuSampler", "os_thread_name", "process_cpu"]

_TASKS = Path("/proc/self/task")
_PR_SET_NAME, _PR_GET_NAME = 15, 16
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu() -> float:
    """CPU seconds of the whole process so far, every thread (user and system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


@contextmanager
def os_thread_name(name: str) -> Iterator[None]:
    """Name the calling OS thread ``name`` (15 bytes at most) for the block; threads it creates
    meanwhile keep the name. Does nothing where ``prctl`` is missing."""
    libc = _libc()
    if libc is None or not hasattr(libc, "prctl"):
        yield
        return
    previous = ctypes.create_string_buffer(16)
    libc.prctl(_PR_GET_NAME, previous, 0, 0, 0)
    libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)
    try:
        yield
    finally:
        libc.prctl(_PR_SET_NAME, previous, 0, 0, 0)


def _group(python_name: str | None, comm: str) -> str:
    """The stage a thread works for: a Python thread by its name, a native one by its OS name."""
    if python_name is not None:
        if python_name == "MainThread":
            return "sink"
        return python_name.removeprefix("p2c-") if python_name.startswith("p2c-") else "other"
    if comm.startswith("p2c-"):
        return comm.removeprefix("p2c-")
    if comm.startswith("mediapipe/"):
        return "tracker"
    if comm.startswith("av:"):
        return "source"
    return "other"


class ThreadCpuSampler:
    """Samples every thread's CPU time while running; a context manager. See the module docstring."""

    # Every 0.1 s: one sample reads two /proc files per thread in Python (0.7 ms with 9 threads,
    # more with a pipeline's ~25, holding the GIL), so every 10 ms it took a fifth of a core and
    # stretched the very latency a live run measures. Stage threads live for the whole run; what
    # a thread does after the last sample before it ends (< 0.1 s of a 10 s run) is left out.
    def __init__(self, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self.available = _TASKS.is_dir()
        self._seen: dict[str, tuple[str, float]] = {}  # tid -> (group, CPU seconds)
        self._base: dict[str, float] = {}
        self._names: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self._wall = 0.0

    def __enter__(self) -> ThreadCpuSampler:
        if self.available:
            self._sample()
            self._base = {tid: cpu for tid, (_group_name, cpu) in self._seen.items()}
            self._thread = threading.Thread(target=self._loop, daemon=True, name="cpu-sampler")
            self._thread.start()
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self._wall = time.perf_counter() - self._started
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._sample()

    def mark(self) -> None:
        """Start the window now (e.g. at the first frame): earlier CPU time is left out."""
        if self.available:
            self._sample()
            self._base = {tid: cpu for tid, (_group_name, cpu) in self._seen.items()}
        self._started = time.perf_counter()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _sample(self) -> None:
        for thread in threading.enumerate():
            if thread.native_id is not None:
                self._names[str(thread.native_id)] = thread.name
        try:
            tids = os.listdir(_TASKS)
        except OSError:
            return
        for tid in tids:
            try:
                comm = (_TASKS / tid / "comm").read_text().strip()
                fields = (_TASKS / tid / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the thread ended meanwhile
            if self._names.get(tid) == "cpu-sampler":
                continue
            cpu = (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime
            self._seen[tid] = (_group(self._names.get(tid), comm), cpu)

    def stage_cpu(self, frames: int) -> dict[str, dict[str, float]]:
        """Per group: CPU ms per frame (over ``frames``) and cores used over the window."""
        totals: dict[str, float] = {}
        for tid, (group, cpu) in self._seen.items():
            totals[group] = totals.get(group, 0.0) + cpu - self._base.get(tid, 0.0)
        wall = self._wall or (time.perf_counter() - self._started)
        return {
            group: {
                "cpu_ms_per_frame": 1000.0 * seconds / max(frames, 1),
                "cores": seconds / wall if wall > 0 else 0.0,
            }
            for group, seconds in sorted(totals.items())
        }
