"""photo2cartoon's discriminator: a spectral-normalised PatchGAN with a CAM head.

Parameter names and ``nn.Sequential`` indices follow the released six-network checkpoint
(``disGA``, ``disGB``, ``disLA``, ``disLB``), so its state dicts load with ``strict=True``. That is
why the old-style :func:`torch.nn.utils.spectral_norm` is used: it stores ``weight_orig``,
``weight_u`` and ``weight_v``, the names in the released file (the parametrization API would
rename them).
"""

from __future__ import annotations

from typing import NamedTuple, cast

import torch
from torch import nn
from torch.nn.utils import spectral_norm

__all__ = [
    "GLOBAL_LAYERS",
    "LOCAL_LAYERS",
    "Discriminator",
    "DiscriminatorOutput",
    "clip_generator_",
    "clip_mixing_",
    "mixing_parameters",
]

GLOBAL_LAYERS = 7  # sees the whole face: receptive field covers the 256x256 crop
LOCAL_LAYERS = 5  # sees patches: texture and strokes


class DiscriminatorOutput(NamedTuple):
    logit: torch.Tensor  # N x 1 x H' x W' patch logits
    cam_logit: torch.Tensor  # N x 2 (average- and max-pooled CAM classifiers)
    heatmap: torch.Tensor  # N x 1 x H' x W'


def _down(dim_in: int, dim_out: int, stride: int) -> list[nn.Module]:
    conv = nn.Conv2d(dim_in, dim_out, kernel_size=4, stride=stride, padding=0, bias=True)
    return [nn.ReflectionPad2d(1), spectral_norm(conv), nn.LeakyReLU(0.2, True)]


class Discriminator(nn.Module):
    """``n_layers`` = 7 for the global discriminator, 5 for the local one; ``ndf`` = the ``ch`` option."""

    def __init__(self, input_nc: int = 3, ndf: int = 32, n_layers: int = GLOBAL_LAYERS) -> None:
        super().__init__()
        if n_layers < 3:
            raise ValueError(f"n_layers must be >= 3, got {n_layers}")
        layers = _down(input_nc, ndf, stride=2)
        for i in range(1, n_layers - 2):
            width = ndf * 2 ** (i - 1)
            layers += _down(width, width * 2, stride=2)
        width = ndf * 2 ** (n_layers - 3)
        layers += _down(width, width * 2, stride=1)
        width *= 2
        self.gap_fc = spectral_norm(nn.Linear(width, 1, bias=False))
        self.gmp_fc = spectral_norm(nn.Linear(width, 1, bias=False))
        self.conv1x1 = nn.Conv2d(width * 2, width, kernel_size=1, stride=1, bias=True)
        self.leaky_relu = nn.LeakyReLU(0.2, True)
        self.pad = nn.ReflectionPad2d(1)
        self.conv = spectral_norm(nn.Conv2d(width, 1, kernel_size=4, stride=1, padding=0, bias=False))
        self.model = nn.Sequential(*layers)

    @staticmethod
    def _raw_weight(layer: nn.Module) -> torch.Tensor:
        return cast(torch.Tensor, layer.weight_orig)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        x = self.model(x)
        # The CAM re-weighting uses the raw (not spectrally normalised) classifier weights, as the
        # released discriminators were trained that way: ``weight_orig`` is the stored parameter.
        gap_logit = self.gap_fc(x.mean(dim=(2, 3)))
        gmp_logit = self.gmp_fc(torch.amax(x, dim=(2, 3)))
        gap = x * self._raw_weight(self.gap_fc)[:, :, None, None]
        gmp = x * self._raw_weight(self.gmp_fc)[:, :, None, None]
        cam_logit = torch.cat((gap_logit, gmp_logit), dim=1)
        x = self.leaky_relu(self.conv1x1(torch.cat((gap, gmp), dim=1)))
        heatmap = x.sum(dim=1, keepdim=True)
        return DiscriminatorOutput(self.conv(self.pad(x)), cam_logit, heatmap)


MIXING_NAMES = ("rho", "w_gamma", "w_beta")


def mixing_parameters(generator: nn.Module) -> list[nn.Parameter]:
    """Every LIN/adaLIN ``rho`` and Soft-AdaLIN ``w_gamma``/``w_beta`` of ``generator``."""
    found = []
    for module in generator.modules():
        for name in MIXING_NAMES:
            parameter = getattr(module, name, None)
            if isinstance(parameter, nn.Parameter):
                found.append(parameter)
    return found


@torch.no_grad()
def clip_generator_(generator: nn.Module, low: float = 0.0, high: float = 1.0) -> None:
    """Clamp every LIN/adaLIN ``rho`` and Soft-AdaLIN ``w_gamma``/``w_beta`` into [low, high], in place.

    They are mixing weights (instance vs layer norm; content vs style statistics): outside [0, 1]
    the mix extrapolates and training diverges, so U-GAT-IT clips them after every optimiser step.
    """
    for parameter in mixing_parameters(generator):
        parameter.clamp_(low, high)


@torch.no_grad()
def clip_mixing_(parameters: list[torch.Tensor], low: float = 0.0, high: float = 1.0) -> None:
    """:func:`clip_generator_` on parameters collected once: two multi-tensor kernels in all (none
    for a generator without mixing weights)."""
    if not parameters:
        return
    torch._foreach_clamp_min_(parameters, low)
    torch._foreach_clamp_max_(parameters, high)
