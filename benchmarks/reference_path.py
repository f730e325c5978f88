"""photo2cartoon's way through a scenario clip, frame by frame on one thread: the reference path.

Per frame: detect and align from scratch (``FaceAligner.align``, no tracking), each face through
the engine one at a time (PyTorch FP32 in the scenarios), ``paste_cartoons``; decode and encode
included. Live, a reader thread keeps only the newest camera frame and the loop takes it each time
it is free; a file is decoded in the loop, every frame. ``pipeline_scenarios.py`` runs it beside
p2c's pipeline.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from latency_split import percentiles, steady_percentiles
from thread_cpu import process_cpu

__all__ = ["time_reference"]


def _newest_frames(source: Any, frames: int, stop: threading.Event, counted: dict[str, int]) -> Iterator[Any]:
    """Live: a reader thread keeps only the newest camera frame; yield it each time one is asked for."""
    from p2c.stream.queues import Closed, FrameQueue

    inbox: FrameQueue[Any] = FrameQueue(1, "drop_oldest")

    def read() -> None:
        try:
            for frame in source:
                # The camera's frames so far: those read, and those it let go (read too late).
                if stop.is_set() or counted["in"] + getattr(source, "skipped", 0) >= frames:
                    break
                counted["in"] += 1
                inbox.put(frame, stop)
        finally:
            inbox.close()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while True:
            try:
                yield inbox.get(cancel=stop)
            except Closed:
                return
    finally:
        stop.set()
        reader.join()


def _every_frame(source: Any, frames: int, counted: dict[str, int]) -> Iterator[Any]:
    """File: decode in this thread, one frame after the other, as photo2cartoon's loop does."""
    for frame in source:
        if counted["in"] >= frames:
            return
        counted["in"] += 1
        yield frame


def time_reference(
    source: Any, make_sink: Callable[[Any], Any], engine: Any, aligner: Any, frames: int, max_faces: int
) -> dict[str, Any]:
    """photo2cartoon's way through ``source`` (unopened; live: a reader keeps the newest frame)
    into the sink ``make_sink(source.info)`` makes, frame by frame on one thread."""
    from p2c.engine import batch_to_images, images_to_batch
    from p2c.stream.compositing import paste_cartoons

    stages = dict.fromkeys(("decode", "align", "engine", "composite", "encode"), 0.0)
    latencies: list[float] = []
    arrived: list[float] = []
    faces_per_frame: list[int] = []
    counted = {"in": 0}
    load_before = list(os.getloadavg())
    with source:
        sink = make_sink(source.info)
        with sink:
            stop = threading.Event()
            cpu0, wall0 = process_cpu(), time.perf_counter()
            feed = (
                _newest_frames(source, frames, stop, counted)
                if source.live
                else _every_frame(source, frames, counted)
            )
            while True:
                t0 = time.perf_counter()
                frame = next(feed, None)
                if frame is None:
                    break
                t1 = time.perf_counter()
                faces = aligner.align(frame.image, max_faces=max_faces)
                t2 = time.perf_counter()
                cartoons = [batch_to_images(engine.run(images_to_batch([face.crop])))[0] for face in faces]
                t3 = time.perf_counter()
                if faces:
                    frame.output = paste_cartoons(frame.image, faces, cartoons)
                t4 = time.perf_counter()
                sink.write(frame)
                t5 = time.perf_counter()
                latencies.append(time.monotonic() - frame.arrived)
                arrived.append(frame.arrived)
                for name, seconds in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                    stages[name] += seconds
                faces_per_frame.append(len(faces))
            wall, cpu = time.perf_counter() - wall0, process_cpu() - cpu0
    out = max(len(latencies), 1)
    taken = min(counted["in"] + getattr(source, "skipped", 0), frames)  # live: camera frames, shown or not
    return {
        "frames": {
            "in": taken,
            "out": len(latencies),
            "dropped": taken - len(latencies),
        },
        "faces_per_frame": faces_per_frame,
        "fps": len(latencies) / wall if wall > 0 else 0.0,
        "latency_ms": percentiles(latencies),
        "latency_ms_steady": steady_percentiles(latencies, arrived),
        "cpu_ms_per_frame": 1000.0 * cpu / out,
        "cores": cpu / wall if wall > 0 else 0.0,
        "stage_ms_per_frame": {name: 1000 * seconds / out for name, seconds in stages.items()},
        "load_average": {"before": load_before, "after": list(os.getloadavg())},
    }
