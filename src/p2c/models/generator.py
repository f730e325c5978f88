"""photo2cartoon's generator: U-GAT-IT with Soft-AdaLIN and hourglass modules.

Attribute names and ``nn.Sequential`` layouts follow the released checkpoint exactly, so the
``genA2B`` state dict of ``photo2cartoon_weights.pt`` loads with ``strict=True``. That is why some
modules hold layers they never use (every ``ConvBlock`` owns a ``ConvBlock4`` projection even
when its input and output widths agree): the released weights contain them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from p2c.models.architectures import Generator

__all__ = ["PHOTO2CARTOON_ARCH", "CartoonOnly", "GeneratorConfig", "GeneratorOutput", "ResnetGenerator"]

PHOTO2CARTOON_ARCH = "photo2cartoon"


@dataclass(frozen=True)
class GeneratorConfig:
    """Constructor arguments of :class:`ResnetGenerator`; saved beside our weights."""

    ngf: int = 32
    img_size: int = 256
    light: bool = True

    def __post_init__(self) -> None:
        if self.ngf < 4 or self.ngf % 4:
            raise ValueError(f"ngf must be a positive multiple of 4, got {self.ngf}")
        if self.img_size < 16 or self.img_size % 16:
            raise ValueError(f"img_size must be a multiple of 16 (>= 16), got {self.img_size}")

    @property
    def fixed_input_size(self) -> int | None:
        """The one input size the weights take, or None when any size runs (a light generator is
        fully convolutional: its style MLP reads globally pooled features)."""
        return None if self.light else self.img_size

    def to_dict(self) -> dict[str, int | bool]:
        return asdict(self)


class GeneratorOutput(NamedTuple):
    image: torch.Tensor
    cam_logit: torch.Tensor
    heatmap: torch.Tensor


def _instance_layer_mix(x: torch.Tensor, rho: torch.Tensor, eps: float) -> torch.Tensor:
    """Blend instance-normalised and layer-normalised ``x`` by ``rho`` (U-GAT-IT's LIN core).

    ``torch.var`` keeps its default unbiased estimate: the released weights were trained with it.
    """
    in_mean = x.mean(dim=(2, 3), keepdim=True)
    in_var = x.var(dim=(2, 3), keepdim=True)
    ln_mean = x.mean(dim=(1, 2, 3), keepdim=True)
    ln_var = x.var(dim=(1, 2, 3), keepdim=True)
    out_in = (x - in_mean) / torch.sqrt(in_var + eps)
    out_ln = (x - ln_mean) / torch.sqrt(ln_var + eps)
    return rho * out_in + (1.0 - rho) * out_ln


class adaLIN(nn.Module):  # noqa: N801 - the checkpoint's class name, kept for readers of the paper code
    """Adaptive LIN: gamma and beta come from outside, per sample."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.rho = nn.Parameter(torch.full((1, num_features, 1, 1), 0.9))

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        out = _instance_layer_mix(x, self.rho, self.eps)
        return out * gamma[:, :, None, None] + beta[:, :, None, None]


class SoftAdaLIN(nn.Module):
    """adaLIN whose gamma and beta mix decoder (style) and encoder (content) statistics."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = adaLIN(num_features, eps)
        self.w_gamma = nn.Parameter(torch.zeros(1, num_features))
        self.w_beta = nn.Parameter(torch.zeros(1, num_features))
        self.c_gamma = _mlp(num_features)
        self.c_beta = _mlp(num_features)
        self.s_gamma = nn.Linear(num_features, num_features)
        self.s_beta = nn.Linear(num_features, num_features)

    def forward(self, x: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        gamma = (1.0 - self.w_gamma) * self.s_gamma(style) + self.w_gamma * self.c_gamma(content)
        beta = (1.0 - self.w_beta) * self.s_beta(style) + self.w_beta * self.c_beta(content)
        return self.norm(x, gamma, beta)


class LIN(nn.Module):
    """Layer-instance normalisation with learned gamma and beta (used while up-sampling)."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.rho = nn.Parameter(torch.zeros(1, num_features, 1, 1))
        self.gamma = nn.Parameter(torch.ones(1, num_features, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, num_features, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _instance_layer_mix(x, self.rho, self.eps) * self.gamma + self.beta


def _mlp(dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(True), nn.Linear(dim, dim))


def _pre_activation_conv(dim_in: int, dim_out: int, kernel: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.InstanceNorm2d(dim_in), nn.ReLU(True)]
    if kernel == 3:
        layers.append(nn.ReflectionPad2d(1))
    layers.append(nn.Conv2d(dim_in, dim_out, kernel_size=kernel, stride=1, bias=False))
    return nn.Sequential(*layers)


class ConvBlock(nn.Module):
    """Hierarchical multi-scale residual block: three 3x3 convs whose outputs are concatenated."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.dim_out = dim_out
        self.ConvBlock1 = _pre_activation_conv(dim_in, dim_out // 2, 3)
        self.ConvBlock2 = _pre_activation_conv(dim_out // 2, dim_out // 4, 3)
        self.ConvBlock3 = _pre_activation_conv(dim_out // 4, dim_out // 4, 3)
        self.ConvBlock4 = _pre_activation_conv(dim_in, dim_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.ConvBlock1(x)
        x2 = self.ConvBlock2(x1)
        x3 = self.ConvBlock3(x2)
        residual = x if x.shape[1] == self.dim_out else self.ConvBlock4(x)
        return residual + torch.cat((x1, x2, x3), dim=1)


class HourGlassBlock(nn.Module):
    """Four-level hourglass: average-pool down, nearest up, skip connections at each level."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.ConvBlock1_1 = ConvBlock(dim_in, dim_out)
        self.ConvBlock1_2 = ConvBlock(dim_out, dim_out)
        self.ConvBlock2_1 = ConvBlock(dim_out, dim_out)
        self.ConvBlock2_2 = ConvBlock(dim_out, dim_out)
        self.ConvBlock3_1 = ConvBlock(dim_out, dim_out)
        self.ConvBlock3_2 = ConvBlock(dim_out, dim_out)
        self.ConvBlock4_1 = ConvBlock(dim_out, dim_out)
        self.ConvBlock4_2 = ConvBlock(dim_out, dim_out)
        self.ConvBlock5 = ConvBlock(dim_out, dim_out)
        self.ConvBlock6 = ConvBlock(dim_out, dim_out)
        self.ConvBlock7 = ConvBlock(dim_out, dim_out)
        self.ConvBlock8 = ConvBlock(dim_out, dim_out)
        self.ConvBlock9 = ConvBlock(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        downs = (
            (self.ConvBlock1_1, self.ConvBlock1_2),
            (self.ConvBlock2_1, self.ConvBlock2_2),
            (self.ConvBlock3_1, self.ConvBlock3_2),
            (self.ConvBlock4_1, self.ConvBlock4_2),
        )
        skips = []
        for skip_block, down_block in downs:
            skips.append(skip_block(x))
            x = down_block(F.avg_pool2d(x, 2))
        x = self.ConvBlock5(x)
        ups = (self.ConvBlock6, self.ConvBlock7, self.ConvBlock8, self.ConvBlock9)
        for up_block, skip in zip(ups, reversed(skips), strict=True):
            x = skip + F.interpolate(up_block(x), scale_factor=2.0, mode="nearest")
        return x


class HourGlass(nn.Module):
    """Hourglass with an intermediate RGB head; with ``use_res=False`` that head is the output."""

    def __init__(self, dim_in: int, dim_out: int, use_res: bool = True) -> None:
        super().__init__()
        self.use_res = use_res
        self.HG = nn.Sequential(
            HourGlassBlock(dim_in, dim_out),
            ConvBlock(dim_out, dim_out),
            nn.Conv2d(dim_out, dim_out, kernel_size=1, stride=1, bias=False),
            nn.InstanceNorm2d(dim_out),
            nn.ReLU(True),
        )
        self.Conv1 = nn.Conv2d(dim_out, 3, kernel_size=1, stride=1)
        if use_res:
            self.Conv2 = nn.Conv2d(dim_out, dim_out, kernel_size=1, stride=1)
            self.Conv3 = nn.Conv2d(3, dim_out, kernel_size=1, stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.HG(x)
        rgb = self.Conv1(features)
        if not self.use_res:
            return rgb
        return x + self.Conv2(features) + self.Conv3(rgb)


class ResnetBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, bias=False),
            nn.InstanceNorm2d(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, bias=False),
            nn.InstanceNorm2d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetSoftAdaLINBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.pad1 = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(dim, dim, kernel_size=3, bias=False)
        self.norm1 = SoftAdaLIN(dim)
        self.relu1 = nn.ReLU(True)
        self.pad2 = nn.ReflectionPad2d(1)
        self.conv2 = nn.Conv2d(dim, dim, kernel_size=3, bias=False)
        self.norm2 = SoftAdaLIN(dim)

    def forward(self, x: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.norm1(self.conv1(self.pad1(x)), content, style))
        out = self.norm2(self.conv2(self.pad2(out)), content, style)
        return out + x


def _down_block(dim_in: int, dim_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ReflectionPad2d(1),
        nn.Conv2d(dim_in, dim_out, kernel_size=3, stride=2, bias=False),
        nn.InstanceNorm2d(dim_out),
        nn.ReLU(True),
    )


def _up_block(dim_in: int, dim_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=2.0, mode="nearest"),
        nn.ReflectionPad2d(1),
        nn.Conv2d(dim_in, dim_out, kernel_size=3, bias=False),
        LIN(dim_out),
        nn.ReLU(True),
    )


def _global_avg(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(2, 3))


class ResnetGenerator(nn.Module):
    """photo2cartoon's A->B (or B->A) generator. Input N x 3 x S x S in [-1, 1], output the same."""

    arch: ClassVar[str] = PHOTO2CARTOON_ARCH
    # A key every state dict of this architecture holds (and no other's): how a file is recognised.
    probe_key: ClassVar[str] = "ConvBlock1.1.weight"

    def __init__(self, ngf: int = 32, img_size: int = 256, light: bool = True) -> None:
        super().__init__()
        self.config = GeneratorConfig(ngf=ngf, img_size=img_size, light=light)
        width = ngf * 4
        self.ConvBlock1 = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(3, ngf, kernel_size=7, bias=False),
            nn.InstanceNorm2d(ngf),
            nn.ReLU(True),
        )
        self.HourGlass1 = HourGlass(ngf, ngf)
        self.HourGlass2 = HourGlass(ngf, ngf)
        self.DownBlock1 = _down_block(ngf, ngf * 2)
        self.DownBlock2 = _down_block(ngf * 2, width)
        self.EncodeBlock1 = ResnetBlock(width)
        self.EncodeBlock2 = ResnetBlock(width)
        self.EncodeBlock3 = ResnetBlock(width)
        self.EncodeBlock4 = ResnetBlock(width)
        self.gap_fc = nn.Linear(width, 1)
        self.gmp_fc = nn.Linear(width, 1)
        self.conv1x1 = nn.Conv2d(width * 2, width, kernel_size=1, stride=1)
        self.relu = nn.ReLU(True)
        fc_in = width if light else (img_size // 4) ** 2 * width
        self.FC = nn.Sequential(
            nn.Linear(fc_in, width), nn.ReLU(True), nn.Linear(width, width), nn.ReLU(True)
        )
        self.DecodeBlock1 = ResnetSoftAdaLINBlock(width)
        self.DecodeBlock2 = ResnetSoftAdaLINBlock(width)
        self.DecodeBlock3 = ResnetSoftAdaLINBlock(width)
        self.DecodeBlock4 = ResnetSoftAdaLINBlock(width)
        self.UpBlock1 = _up_block(width, ngf * 2)
        self.UpBlock2 = _up_block(ngf * 2, ngf)
        self.HourGlass3 = HourGlass(ngf, ngf)
        self.HourGlass4 = HourGlass(ngf, ngf, use_res=False)
        self.ConvBlock2 = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(3, 3, kernel_size=7, bias=False), nn.Tanh()
        )

    @classmethod
    def from_config(cls, config: GeneratorConfig) -> ResnetGenerator:
        return cls(ngf=config.ngf, img_size=config.img_size, light=config.light)

    @staticmethod
    def config_from_state_dict(state: Mapping[str, torch.Tensor], img_size: int = 256) -> GeneratorConfig:
        """Infer the constructor arguments from the weights' shapes.

        ``ngf`` is the first convolution's width; the light model's first FC layer takes ``4 * ngf``
        pooled features, the full one ``(img_size / 4) ** 2 * 4 * ngf``, from which ``img_size`` follows.
        A light model is fully convolutional, so its ``img_size`` cannot be read off the weights:
        ``img_size`` (photo2cartoon's 256 by default) is used.
        """
        ngf = int(state[ResnetGenerator.probe_key].shape[0])
        fc_in = int(state["FC.0.weight"].shape[1]) if "FC.0.weight" in state else 4 * ngf
        if fc_in == 4 * ngf:
            return GeneratorConfig(ngf=ngf, img_size=img_size, light=True)
        side = math.isqrt(fc_in // (4 * ngf))
        return GeneratorConfig(ngf=ngf, img_size=side * 4, light=False)

    def forward(self, x: torch.Tensor) -> GeneratorOutput:
        x = self.HourGlass2(self.HourGlass1(self.ConvBlock1(x)))
        x = self.DownBlock2(self.DownBlock1(x))

        # Encoder statistics after each block feed the decoder blocks in reverse order.
        content = []
        for encoder in (self.EncodeBlock1, self.EncodeBlock2, self.EncodeBlock3, self.EncodeBlock4):
            x = encoder(x)
            content.append(_global_avg(x))

        # CAM: the auxiliary classifiers' weights re-weight the feature channels.
        gap_logit = self.gap_fc(_global_avg(x))
        gmp_logit = self.gmp_fc(torch.amax(x, dim=(2, 3)))
        gap = x * self.gap_fc.weight[:, :, None, None]
        gmp = x * self.gmp_fc.weight[:, :, None, None]
        cam_logit = torch.cat((gap_logit, gmp_logit), dim=1)
        x = self.relu(self.conv1x1(torch.cat((gap, gmp), dim=1)))
        heatmap = x.sum(dim=1, keepdim=True)

        style = self.FC(_global_avg(x) if self.config.light else x.flatten(1))
        decoders = (self.DecodeBlock1, self.DecodeBlock2, self.DecodeBlock3, self.DecodeBlock4)
        for decoder, content_features in zip(decoders, reversed(content), strict=True):
            x = decoder(x, content_features, style)

        x = self.UpBlock2(self.UpBlock1(x))
        x = self.HourGlass4(self.HourGlass3(x))
        return GeneratorOutput(self.ConvBlock2(x), cam_logit, heatmap)


class CartoonOnly(nn.Module):
    """Wraps a generator (of any architecture) so it returns the image alone: what inference and
    ONNX export need."""

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.generator(x).image
