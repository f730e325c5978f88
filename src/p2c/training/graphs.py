"""The whole D+G step as one CUDA graph, or compiled generators; eager when either fails.

A training step at batch 8 launches about 58,000 kernels (H100 profile, 2026-11-27): the CPU
issues them more slowly than the GPU runs them, so the GPU idles half the time. A CUDA graph
records the step's kernels once and replays them with one launch.

:class:`CudaGraphStep` runs the first ``warmup`` steps eagerly on a side stream (they are real
steps: lazy state such as Adam's moments and cuBLAS workspaces is created there, as capture
requires), captures the next one and replays it from then on; the inputs are copied into the
graph's own tensors, the losses it returns are the graph's outputs (read them before the next
step). The capture costs about one step and is paid once per input shape. If it fails, the step
runs eagerly for the rest of the run, after one warning line.

:class:`CompiledOrEager` is the same safety net for ``torch.compile``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["CompiledOrEager", "CudaGraphStep"]

logger = logging.getLogger(__name__)

Step = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


class CudaGraphStep:
    """``step`` replayed as a CUDA graph after ``warmup`` eager calls; eager for good if capture fails."""

    def __init__(self, step: Step, warmup: int = 3, on_failure: Callable[[], None] | None = None) -> None:
        self.step = step
        self.warmup = warmup
        self.on_failure = on_failure  # e.g. clear gradients left by a half-finished capture
        self.eager = False  # capture failed: every call runs ``step`` as it is
        self.build_s: float | None = None  # seconds the capture took (and its first replay)
        self._calls = 0
        self._graph: torch.cuda.CUDAGraph | None = None
        self._inputs: tuple[torch.Tensor, torch.Tensor] | None = None
        self._outputs: dict[str, torch.Tensor] = {}

    @property
    def captured(self) -> bool:
        return self._graph is not None

    def __call__(self, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.eager:
            return self.step(real_a, real_b)
        if self._graph is None:
            if self._calls < self.warmup:
                self._calls += 1
                return self._on_side_stream(real_a, real_b)
            started = time.perf_counter()
            try:
                self._capture(real_a, real_b)
            except Exception as error:  # any failure to capture means: run eagerly, as before
                logger.warning(
                    "capturing the training step as a CUDA graph failed (%s); it runs eagerly",
                    _first_line(error),
                )
                self._release()
                return self.step(real_a, real_b)
            outputs = self._replay(real_a, real_b)
            torch.cuda.synchronize()
            self.build_s = time.perf_counter() - started
            logger.info("training step captured as a CUDA graph in %.1f s", self.build_s)
            return outputs
        return self._replay(real_a, real_b)

    def _on_side_stream(self, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, torch.Tensor]:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            outputs = self.step(real_a, real_b)
        torch.cuda.current_stream().wait_stream(side)
        return outputs

    def _capture(self, real_a: torch.Tensor, real_b: torch.Tensor) -> None:
        torch.cuda.synchronize()
        inputs = (real_a.clone(), real_b.clone())  # clone keeps the memory format
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = self.step(*inputs)
        self._graph, self._inputs, self._outputs = graph, inputs, outputs

    def _replay(self, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, torch.Tensor]:
        assert self._graph is not None and self._inputs is not None
        self._inputs[0].copy_(real_a)
        self._inputs[1].copy_(real_b)
        self._graph.replay()
        return self._outputs

    def _release(self) -> None:
        self.eager = True
        self._graph, self._inputs, self._outputs = None, None, {}
        if self.on_failure is not None:
            self.on_failure()


class CompiledOrEager:
    """Call ``compiled``; if it raises, warn once and call ``eager`` from then on.

    ``torch.compile`` compiles on the first call (and on a new input shape), where an unsupported
    operation, a missing compiler or a backend error surfaces; training goes on without it.
    """

    def __init__(self, compiled: Callable[..., Any], eager: Callable[..., Any], name: str) -> None:
        self.compiled, self.eager, self.name = compiled, eager, name
        self.failed = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.failed:
            return self.eager(*args, **kwargs)
        try:
            return self.compiled(*args, **kwargs)
        except Exception as error:  # compilation errors come in many types; all mean: run eagerly
            self.failed = True
            logger.warning("torch.compile of %s failed (%s); it runs eagerly", self.name, _first_line(error))
            return self.eager(*args, **kwargs)
