"""Which torch device a ``--device`` value means, in one place for inference, compositing and training."""

from __future__ import annotations

import torch

from p2c.errors import BackendUnavailableError, InvalidInputError

__all__ = ["resolve_device"]


def resolve_device(requested: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` -> this process's GPU when PyTorch sees one, else the CPU; ``cuda`` -> ``cuda:LOCAL_RANK``.

    A name torch does not know, or CUDA on a machine without it, is one :class:`P2CError` line.
    ``local_rank`` is the GPU of this process under torchrun (0 for a single process).
    """
    if isinstance(requested, torch.device):
        device = requested
    else:
        name = ("cuda" if torch.cuda.is_available() else "cpu") if requested == "auto" else requested
        try:
            device = torch.device(name)
        except RuntimeError as error:
            raise InvalidInputError(
                f"--device {requested!r} is not a device name (try auto, cpu, cuda, cuda:1)"
            ) from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"--device {requested} was asked for but PyTorch sees no CUDA GPU; use --device cpu"
            )
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device
