"""What one training step holds and launches: autograd's saved tensors, and torch.profiler counts.

Used by ``training_throughput.py``; device-independent where it can be, so that CPU runs give
numbers to compare before and after a change even without CUDA kernels to count.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["LAUNCH_CALLS", "NO_KERNEL", "SavedActivations", "profile_counts"]

# fmt: off
NO_KERNEL = frozenset(f"aten::{name}" for name in (
    "empty", "empty_strided", "empty_like", "view", "as_strided", "reshape", "_reshape_alias", "expand",
    "permute", "transpose", "t", "unsqueeze", "squeeze", "slice", "select", "detach", "alias",
    "_unsafe_view", "resize_", "set_", "lift_fresh", "unbind", "split", "chunk", "narrow", "contiguous",
    "numpy_T", "result_type",
))
# fmt: on
LAUNCH_CALLS = ("cudaLaunchKernel", "cuLaunchKernel", "cudaGraphLaunch", "cudaLaunchCooperativeKernel")


class SavedActivations:
    """The peak bytes of tensors autograd saves for backward (each storage once), while active."""

    def __init__(self, parameters: list[torch.Tensor]) -> None:
        self._parameters = {p.untyped_storage().data_ptr() for p in parameters}
        self._counts: dict[int, int] = {}
        self._bytes: dict[int, int] = {}
        self.current = self.peak = 0

    def _pack(self, tensor: torch.Tensor) -> Any:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        holder = _Saved(tensor)
        if key in self._parameters:
            return holder
        if key not in self._counts:
            self._counts[key], self._bytes[key] = 0, storage.nbytes()
            self.current += storage.nbytes()
            self.peak = max(self.peak, self.current)
        self._counts[key] += 1
        weakref.finalize(holder, self._release, key)
        return holder

    def _release(self, key: int) -> None:
        self._counts[key] -= 1
        if self._counts[key] == 0:
            self.current -= self._bytes.pop(key)
            del self._counts[key]

    def hooks(self) -> Any:
        return torch.autograd.graph.saved_tensors_hooks(self._pack, lambda holder: holder.tensor)


class _Saved:
    __slots__ = ("__weakref__", "tensor")

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor


def _union_us(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def profile_counts(call: Callable[[], object], steps: int, cuda: bool) -> dict[str, float | None]:
    """Launches, kernels, operators, copies and GPU kernel time per step, from torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as profiler:
        for _ in range(steps):
            call()
        if cuda:
            torch.cuda.synchronize()
    events = profiler.events()
    operators = copies = launches = kernels = 0
    busy: list[tuple[float, float]] = []
    for event in events:
        name = event.name
        if event.device_type == torch.autograd.DeviceType.CUDA:
            if not name.startswith(("Memcpy", "Memset")):
                kernels += 1
                busy.append((event.time_range.start, event.time_range.end))
        elif name.startswith("aten::"):
            copies += name == "aten::copy_"
            leaf = not any(child.name.startswith("aten::") for child in event.cpu_children)
            operators += leaf and name not in NO_KERNEL
        elif name.startswith(LAUNCH_CALLS):
            launches += 1
    return {
        "operator_launches_per_step": operators / steps,
        "copies_per_step": copies / steps,
        "kernel_launches_per_step": launches / steps if cuda else None,
        "gpu_kernels_per_step": kernels / steps if cuda else None,
        "gpu_kernel_ms_per_step": _union_us(busy) / 1000 / steps if cuda else None,
    }
