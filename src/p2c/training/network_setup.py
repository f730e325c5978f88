"""Setting the training networks up for a fast step, without changing a weight or a result.

Each function changes how a network computes, never what: its state dict keeps its names, shapes
and values, so checkpoints, exports and slice states are as before.

- :func:`to_channels_last`: 4-D weights (and, in the step, the inputs) in NHWC order, cuDNN's
  native layout for bf16/fp16 convolutions; otherwise it converts every input and output of every
  convolution (the NCHW->NHWC kernels in the H100 profile). Spectral-normalised weights stay NCHW:
  spectral norm reshapes them into a matrix on every call, which would copy a channels-last one.
- :func:`use_out_of_place_activations`: an in-place ReLU on a view (``InstanceNorm2d`` returns a
  view of batch norm's output) makes autograd copy the whole activation (``CopySlices``).
- :func:`checkpoint_hourglasses`: the generators' hourglasses keep only their inputs for the
  backward pass and recompute the rest there: less memory, one more forward of each hourglass.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from p2c.models.generator import HourGlass

__all__ = ["checkpoint_hourglasses", "to_channels_last", "use_out_of_place_activations"]


def to_channels_last(module: nn.Module) -> nn.Module:
    """Every 4-D parameter and buffer of ``module`` in channels-last order, except ``weight_orig``."""
    for child in module.modules():
        for name, tensor in [*child.named_parameters(recurse=False), *child.named_buffers(recurse=False)]:
            if tensor.dim() == 4 and name != "weight_orig":
                tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
    return module


def use_out_of_place_activations(module: nn.Module) -> nn.Module:
    for child in module.modules():
        if isinstance(child, (nn.ReLU, nn.LeakyReLU)):
            child.inplace = False
    return module


def _checkpointed(forward: Callable[..., Any], *args: Any) -> Any:
    if not torch.is_grad_enabled():
        return forward(*args)
    # No RNG inside an hourglass: saving and restoring RNG states would only cost a device sync.
    return checkpoint(forward, *args, use_reentrant=False, preserve_rng_state=False)


def checkpoint_hourglasses(generator: nn.Module) -> nn.Module:
    """Recompute each :class:`~p2c.models.generator.HourGlass` in the backward pass (an instance-level
    ``forward``: the module, its parameters and its state dict stay as they are)."""
    for module in generator.modules():
        if isinstance(module, HourGlass) and "forward" not in vars(module):
            module.forward = functools.partial(_checkpointed, module.forward)  # type: ignore[method-assign]
    return generator
