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
- **PyAV / x264**: decoding uses FFmpeg's frame threads; the file sink sets the encoder's
  threads (:mod:`p2c.stream.sinks.video_file`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["RUN_OPENCV_THREADS", "opencv_threads"]

# OpenCV threads during a pipeline run: the stages are the parallelism.
RUN_OPENCV_THREADS = 1


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
