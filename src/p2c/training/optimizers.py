"""Both sides' Adam and GradScaler, built once, and the learning rate they share.

- Fused Adam (``fused=True``: one kernel per parameter group instead of about ten multi-tensor ones)
  where torch has fused kernels for the device; the arithmetic is Adam's, as before.
- Under a CUDA graph the optimisers must be ``capturable`` and the learning rate must live on the
  GPU: a graph replays the kernels it captured with the numbers they were captured with, so a
  Python float would freeze the rate. It is then a one-element tensor filled in place.
- A checkpoint stays what it was: the rate is written as a float, and an optimiser state loaded
  from any checkpoint is made to fit this run's settings (fused or not, step counters on the device
  or the host, moments in the parameters' memory format).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["Optimizers", "build_optimizers", "fused_adam_available"]


def fused_adam_available(device: torch.device) -> bool:
    """Whether torch has fused Adam kernels for this device type."""
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    return device.type in _get_fused_kernels_supported_devices()


@dataclass
class Optimizers:
    """The generators' and the discriminators' Adam with their GradScalers (enabled for fp16)."""

    g: torch.optim.Adam
    d: torch.optim.Adam
    g_scaler: torch.amp.GradScaler
    d_scaler: torch.amp.GradScaler
    fused: bool = False
    capturable: bool = False

    def _pairs(self) -> tuple[tuple[str, torch.optim.Adam, torch.amp.GradScaler], ...]:
        return (("G", self.g, self.g_scaler), ("D", self.d, self.d_scaler))

    def set_lr(self, lr: float, d_lr: float | None = None) -> None:
        """Both sides' rate (``d_lr``: the discriminators' when it differs): a float, or
        (capturable) filled into the device tensor in place."""
        for name, optimizer, _ in self._pairs():
            rate = d_lr if name == "D" and d_lr is not None else lr
            for group in optimizer.param_groups:
                if isinstance(group["lr"], torch.Tensor):
                    group["lr"].fill_(rate)
                else:
                    group["lr"] = rate

    def state_dicts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """``({"G": ..., "D": ...}, {"G": ..., "D": ...})`` for a checkpoint; rates as floats."""
        optimizers, scalers = {}, {}
        for name, optimizer, scaler in self._pairs():
            state = optimizer.state_dict()
            state["param_groups"] = [{**group, "lr": float(group["lr"])} for group in state["param_groups"]]
            optimizers[name], scalers[name] = state, scaler.state_dict()
        return optimizers, scalers

    def load_state_dicts(self, optimizers: Mapping[str, Any], scalers: Mapping[str, Any]) -> None:
        for name, optimizer, scaler in self._pairs():
            lrs = [group["lr"] for group in optimizer.param_groups]
            optimizer.load_state_dict(optimizers[name])
            scaler.load_state_dict(scalers[name])
            _conform(optimizer, self.fused, self.capturable, lrs)


def _conform(optimizer: torch.optim.Adam, fused: bool, capturable: bool, lrs: list[Any]) -> None:
    """Make a loaded state fit this optimiser: ``load_state_dict`` takes the saved groups' flags."""
    for group, lr in zip(optimizer.param_groups, lrs, strict=True):
        group["fused"] = fused or None
        group["foreach"] = None
        group["capturable"] = capturable
        if isinstance(lr, torch.Tensor):  # keep the device tensor a captured graph reads
            lr.fill_(float(group["lr"]))
            group["lr"] = lr
        on_device = fused or capturable
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for key, value in state.items():
                if key == "step":
                    device = param.device if on_device else torch.device("cpu")
                    state[key] = value.to(device=device, dtype=torch.float32)
                elif isinstance(value, torch.Tensor) and value.shape == param.shape:
                    state[key] = torch.empty_like(param).copy_(value)  # the parameter's strides


def _adam(
    parameters: Iterable[nn.Parameter], config: Any, device: torch.device, fused: bool, capturable: bool
) -> torch.optim.Adam:
    lr: float | torch.Tensor = torch.tensor(config.lr, device=device) if capturable else config.lr
    return torch.optim.Adam(
        list(parameters),
        lr=lr,
        betas=config.betas,
        weight_decay=config.weight_decay,
        fused=fused or None,
        capturable=capturable,
    )


def build_optimizers(
    generators: Iterable[nn.Parameter],
    discriminators: Iterable[nn.Parameter],
    config: Any,
    device: torch.device,
    use_scaler: bool,
    fused: bool,
    capturable: bool = False,
) -> Optimizers:
    """``config``: a :class:`~p2c.training.config.TrainConfig` (its ``lr``, ``betas``, ``weight_decay``)."""
    fused = fused and fused_adam_available(device)
    return Optimizers(
        g=_adam(generators, config, device, fused, capturable),
        d=_adam(discriminators, config, device, fused, capturable),
        g_scaler=torch.amp.GradScaler(device.type, enabled=use_scaler),
        d_scaler=torch.amp.GradScaler(device.type, enabled=use_scaler),
        fused=fused,
        capturable=capturable,
    )
