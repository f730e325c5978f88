"""MobileFaceNet, the face recogniser photo2cartoon's Face ID loss was trained with.

Attribute names follow photo2cartoon's ``models/mobilefacenet.py`` so that its released
``model_mobilefacenet.pth`` (a bare state dict) loads strictly. Input: N x 3 x 112 x 112 RGB in
[-1, 1] (photo2cartoon feeds its generator tensors unchanged); output: N x 512, L2-normalised.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from p2c.errors import InputNotFoundError, WeightsError

__all__ = ["MOBILEFACENET_INPUT_SIZE", "MobileFaceNet", "load_mobilefacenet"]

MOBILEFACENET_INPUT_SIZE = 112
EMBEDDING_SIZE = 512


class ConvBlock(nn.Module):
    """Convolution without bias, batch norm and (unless ``linear``) a per-channel PReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int = 1,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        linear: bool = False,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.prelu = None if linear else nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.prelu is None else self.prelu(x)


class DepthWise(nn.Module):
    """Inverted bottleneck: expand to ``hidden`` channels, depthwise 3x3, project back."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int, stride: int, residual: bool) -> None:
        super().__init__()
        self.residual = residual
        self.conv = ConvBlock(in_channels, hidden)
        self.conv_dw = ConvBlock(hidden, hidden, kernel=3, stride=stride, padding=1, groups=hidden)
        self.project = ConvBlock(hidden, out_channels, linear=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.conv_dw(self.conv(x)))
        return x + y if self.residual else y


class Residual(nn.Module):
    """``count`` residual DepthWise units at constant width (held in ``.model`` like the original)."""

    def __init__(self, channels: int, count: int, hidden: int) -> None:
        super().__init__()
        self.model = nn.Sequential(
            *(DepthWise(channels, channels, hidden, stride=1, residual=True) for _ in range(count))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class MobileFaceNet(nn.Module):
    """MobileFaceNet with a 512-d embedding; 112x112 input in [-1, 1], L2-normalised output."""

    def __init__(self, embedding_size: int = EMBEDDING_SIZE) -> None:
        super().__init__()
        self.conv1 = ConvBlock(3, 64, kernel=3, stride=2, padding=1)
        self.conv2_dw = ConvBlock(64, 64, kernel=3, padding=1, groups=64)
        self.conv_23 = DepthWise(64, 64, hidden=128, stride=2, residual=False)
        self.conv_3 = Residual(64, count=4, hidden=128)
        self.conv_34 = DepthWise(64, 128, hidden=256, stride=2, residual=False)
        self.conv_4 = Residual(128, count=6, hidden=256)
        self.conv_45 = DepthWise(128, 128, hidden=512, stride=2, residual=False)
        self.conv_5 = Residual(128, count=2, hidden=256)
        self.conv_6_sep = ConvBlock(128, 512)
        # A 7x7 depthwise "global" convolution: it is why the input must be exactly 112x112.
        self.conv_6_dw = ConvBlock(512, 512, kernel=7, groups=512, linear=True)
        self.linear = nn.Linear(512, embedding_size, bias=False)
        self.bn = nn.BatchNorm1d(embedding_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in (
            self.conv1,
            self.conv2_dw,
            self.conv_23,
            self.conv_3,
            self.conv_34,
            self.conv_4,
            self.conv_45,
            self.conv_5,
            self.conv_6_sep,
            self.conv_6_dw,
        ):
            x = stage(x)
        return F.normalize(self.bn(self.linear(x.flatten(1))), dim=1)


def load_mobilefacenet(path: str | Path) -> MobileFaceNet:
    """Load photo2cartoon's ``model_mobilefacenet.pth`` (strict, weights only) into eval mode."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"face-ID weights {path} do not exist: check the path")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for non-checkpoint files
        raise WeightsError(
            f"{path} cannot be read as a PyTorch checkpoint ({type(error).__name__}): "
            "pass photo2cartoon's model_mobilefacenet.pth"
        ) from None
    if not isinstance(state, Mapping):
        raise WeightsError(f"{path} holds no state dict: pass photo2cartoon's model_mobilefacenet.pth")
    model = MobileFaceNet()
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError) as error:
        first = str(error).strip().splitlines()[0]
        raise WeightsError(
            f"{path} is not photo2cartoon's MobileFaceNet ({first}): pass model_mobilefacenet.pth"
        ) from None
    return model.eval().requires_grad_(False)
