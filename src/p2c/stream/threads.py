"""How a pipeline run shares the CPU cores between its libraries' thread pools.

The pipeline already runs its stages on threads of their own (decode, track, engine, composite,
encode overlap), so every library pool beside them is one more set of threads fighting for the
same cores. Measured on the 2-core build machine (CPU milliseconds, ``docs/benchmarks.md``):

- **OpenCV**: its own pool splits each warp and blur over the cores; on a 2-core machine that
  made pasting one 720p face cost 10.2 ms of CPU instead of 6.7 ms on one thread. A run sets
  ``cv2.setNumThreads(1)`` (each stage's calls stay on its own thread) and puts it back after.
- **onnxruntime**: its intra-op pool spins while it waits for work; beside the other stages
  that doubled the CPU cost of a compact-generator call (33.8 ms against 17.5 ms on one thread).
  The backend turns spinning off (:mod:`p2c.engine.onnx_runtime`), which keeps the pool's
  two threads for a large generator (19.5 ms of CPU for the compact one).
- **MediaPipe**: each graph runs its model on its own executor threads, one calculator at a
  time, and TFLite's XNNPack delegate uses one thread on desktop Linux: nothing to pin.
- **PyAV / x264**: a file decodes on FFmpeg's frame threads (as fast as it can: a GPU machine
  may want hundreds of frames a second); a live source at its camera's rate decodes in its own
  thread (:func:`decode_in_thread`): the frame threads cost more CPU a frame (1080p clip,
  interleaved runs under load: 7.9-12.6 ms a frame against 7.3-8.3, 720p 3.8-5.8 against
  3.6-3.8) and add three threads to the two cores' dozen. The file sink sets the encoder's
  threads (:mod:`p2c.stream.sinks.video_file`).

The compact generator's one onnxruntime thread is right where the machine is full (a file, four
faces live), but one face live leaves a core idle part of each frame, and the engine call sits on
every frame's path from camera to output: there, two threads (:func:`engine_threads`). Measured,
live 720p clip, one face, three runs each on the idle 2-core machine: p50 / p95 latency 55 / 88,
59 / 84, 49 / 83 ms with two threads, 62 / 111, 62 / 96, 56 / 80 with one; four faces live:
12.8 fps with two, 13.3 with one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from p2c.engine.base import EngineConfig

__all__ = [
    "LIVE_ONE_FACE_ENGINE_THREADS",
    "RUN_OPENCV_THREADS",
    "decode_in_thread",
    "engine_config_for_run",
    "engine_threads",
    "opencv_threads",
]

# OpenCV threads during a pipeline run: the stages are the parallelism.
RUN_OPENCV_THREADS = 1
# onnxruntime threads of a live run with one face (the module docstring).
LIVE_ONE_FACE_ENGINE_THREADS = 2


def engine_threads(live: bool, max_faces: int) -> int | None:
    """The engine's CPU threads for a run: two live with one face, else ``None`` (the engine's own
    choice: one for the compact generator, one per core for photo2cartoon's)."""
    return LIVE_ONE_FACE_ENGINE_THREADS if live and max_faces == 1 else None


def engine_config_for_run(config: EngineConfig, live: bool, max_faces: int) -> EngineConfig:
    """``config`` with :func:`engine_threads`' choice where it leaves the threads unset (``--threads``)."""
    if config.threads is not None:
        return config
    return replace(config, threads=engine_threads(live, max_faces))


def decode_in_thread(stream: Any, live: bool) -> None:
    """Set how a PyAV video ``stream`` decodes: live, in the reading thread alone; otherwise on
    FFmpeg's frame threads (see the module docstring)."""
    if live:
        stream.thread_type = "NONE"
        stream.codec_context.thread_count = 1
    else:
        stream.thread_type = "AUTO"


@contextmanager
def opencv_threads(count: int = RUN_OPENCV_THREADS) -> Iterator[None]:
    """Run the block with OpenCV's pool at ``count`` threads; restore the previous count after.

    The setting is process-wide (OpenCV has no per-thread one), so it brackets the whole run.
    """
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(count)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)
