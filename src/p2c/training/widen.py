"""Function-preserving widening: a trained state continued in a network with more channels.

Issue 24's wider compact generator starts from the long run's state instead of from scratch (0.75
CPU-hours of a pilot arm cannot retrain a generator). Each tensor of the wider network keeps its
fresh initialisation except where the trained tensor fits: the trained values fill the leading
slice, and the weights by which the trained outputs read the new input channels are zeroed. The new
channels are computed (from fresh weights) but read by nothing yet, so the wider network computes
exactly what the trained one did. Their readers' weights get gradients from the first step (their
inputs are not zero), so the new channels join in at once: Net2Net's function-preserving growth
(Chen et al., ICLR 2016), with zero outgoing weights instead of split copies.

Tensors are read as ``(out, in, ...)`` (``nn.Conv2d``, ``nn.Linear``; a depthwise convolution's
``in`` is 1 and never grows); transposed convolutions, whose layout is ``(in, out, ...)``, are not
supported.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["can_widen", "widen_state", "widen_tensor"]


def _fits(trained: torch.Tensor, fresh: torch.Tensor) -> bool:
    return trained.ndim == fresh.ndim and all(t <= f for t, f in zip(trained.shape, fresh.shape, strict=True))


def can_widen(trained: Mapping[str, torch.Tensor], fresh: Mapping[str, torch.Tensor]) -> bool:
    """Whether ``trained`` is ``fresh``'s network with the same tensors, none wider than ``fresh``'s
    and at least one narrower: a state :func:`widen_state` can continue in ``fresh``'s network."""
    if trained.keys() != fresh.keys():
        return False
    if not all(_fits(trained[key], fresh[key]) for key in fresh):
        return False
    return any(trained[key].shape != fresh[key].shape for key in fresh)


def widen_tensor(trained: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor:
    """``fresh`` with ``trained`` in its leading slice and the trained outputs' new inputs zeroed."""
    if not _fits(trained, fresh):
        raise ValueError(f"cannot widen a {tuple(trained.shape)} tensor to {tuple(fresh.shape)}")
    out = fresh.detach().clone()
    if out.ndim >= 2 and out.shape[1] > trained.shape[1]:
        out[: trained.shape[0], trained.shape[1] :] = 0
    out[tuple(slice(0, size) for size in trained.shape)] = trained.to(out.dtype)
    return out


def widen_state(
    trained: Mapping[str, torch.Tensor], fresh: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """A state dict for ``fresh``'s (wider) network that computes what ``trained`` computed."""
    if trained.keys() != fresh.keys():
        missing = sorted(set(fresh) ^ set(trained))
        raise ValueError(f"cannot widen: the networks differ in more than width ({missing[0]})")
    return {key: widen_tensor(trained[key], fresh[key]) for key in fresh}
