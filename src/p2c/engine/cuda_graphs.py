"""CUDA-graph replay of a generator at fixed batch sizes, shared by the torch and inductor backends.

Replaying a captured graph launches the generator's ~1,000 small kernels in one call, which is what
small batches are bound by. A batch is padded up to the next captured size (its bucket).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["CapturedGraph", "bucket_for", "buckets_up_to"]


def bucket_for(count: int, max_batch: int) -> int:
    """The captured batch size that serves ``count`` samples: the next power of two, at most max_batch."""
    size = 1
    while size < count:
        size *= 2
    return min(size, max_batch)


def buckets_up_to(max_batch: int) -> list[int]:
    """Every bucket :func:`bucket_for` can return for ``max_batch``: 1, 2, 4, ... and max_batch itself."""
    return sorted({bucket_for(count, max_batch) for count in range(1, max_batch + 1)})


class CapturedGraph:
    """One CUDA graph replaying ``forward`` on a fixed-size static input buffer."""

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor) -> None:
        self.inputs = inputs
        side_stream = torch.cuda.Stream(device=inputs.device)
        side_stream.wait_stream(torch.cuda.current_stream(inputs.device))
        with torch.cuda.stream(side_stream):  # warm-up outside the graph: cuDNN picks its algorithms here
            for _ in range(3):
                forward(inputs)
        torch.cuda.current_stream(inputs.device).wait_stream(side_stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs: torch.Tensor = forward(inputs)

    def replay(self) -> torch.Tensor:
        """Run the graph on what ``inputs`` holds now; the result is ``outputs``, overwritten next time."""
        self.graph.replay()
        return self.outputs

    def run(self, chunk: torch.Tensor) -> torch.Tensor:
        """The graph's result for ``chunk`` (at most the captured size) as a new float32 NCHW tensor."""
        count = chunk.shape[0]
        self.inputs[:count].copy_(chunk)  # the padding rows keep old data: samples are independent
        # A copy, always: the output buffer is overwritten by the next replay.
        return self.replay()[:count].to(torch.float32, memory_format=torch.contiguous_format, copy=True)
