"""p2c's compact generator: photo2cartoon's contract at about 1/30 of its FLOPs, made for a CPU.

Same contract as :class:`~p2c.models.generator.ResnetGenerator`: N x 3 x S x S RGB in [-1, 1] in (an
aligned, white-background crop), the cartoon in [-1, 1] out, as a :class:`GeneratorOutput` so the
trainers, :class:`CartoonOnly` and every backend take either generator.

Why this shape (measured on the 2-core CPU, ``docs/default-model.md``):

- one strided 3x3 convolution is the only layer that reads the full-resolution input, and one 3x3
  convolution the only one that writes it: full-resolution layers dominate a CPU's time;
- the work happens at 1/8 resolution (32x32 for a 256 crop), in inverted-residual blocks
  (1x1 expand, depthwise 3x3, 1x1 project), which onnxruntime fuses with their ReLUs;
- the decoder upsamples bilinearly and adds the encoder's features of the same size (U-Net skips):
  no transposed or nearest-neighbour upsampling, whose checkerboard and blocky artifacts the first
  CPU pilot showed; the skips carry the geometry that keeps a face recognisable;
- no normalisation layers outside the body, where instance norm is cheap at 1/8 resolution and
  evens out the photos' lighting before the style is applied;
- a CAM head (global average and max pooled logits, as U-GAT-IT's) for photo2cartoon's objective;
  inference ignores it.

Two output stages for crisp lines (issue 24: the cartoons' lines are half as sharp as trainB's):

- ``head="shuffle"``: the last convolution runs at 1/2 resolution and writes each pixel of a 2x2 block
  with its own weights (pixel shuffle), at the bilinear head's cost. Bilinear upsampling followed by a
  3x3 convolution is a special case of it, so a bilinear state converts exactly (:func:`shuffle_head`);
- ``sharpen=True``: a learned unsharp mask on the last convolution's output, one amount per colour.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from p2c.models.generator import GeneratorOutput

__all__ = [
    "COMPACT_ARCH",
    "HEADS",
    "CompactConfig",
    "CompactGenerator",
    "shuffle_head",
    "with_sharpen_amount",
]

COMPACT_ARCH = "compact"
HEADS = ("bilinear", "shuffle")
# What a state without the sharpening stage starts it at: the amount of a Gaussian unsharp mask that
# brought the bilinear head's lines nearest trainB's when applied after the fact (docs/default-model.md;
# its amount pilot then measured a start at 1.0 better for a generator trained with the stage).
SHARPEN_START = 0.5


@dataclass(frozen=True)
class CompactConfig:
    """Constructor arguments of :class:`CompactGenerator`; saved beside its weights.

    ``widths`` are the channels at 1/2, 1/4 and 1/8 resolution; ``blocks`` inverted-residual blocks
    of ``expand`` x the last width run at 1/8; ``head`` and ``sharpen`` pick the output stage.
    """

    img_size: int = 256
    widths: tuple[int, int, int] = (16, 32, 64)
    blocks: int = 6
    expand: int = 4
    head: str = "bilinear"
    sharpen: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if len(self.widths) != 3 or min(self.widths) < 3:
            raise ValueError(f"widths must be three channel counts >= 3, got {self.widths}")
        if self.img_size < 16 or self.img_size % 8:
            raise ValueError(f"img_size must be a multiple of 8 (>= 16), got {self.img_size}")
        if self.blocks < 1 or self.expand < 1:
            raise ValueError(f"blocks and expand must be >= 1, got {self.blocks} and {self.expand}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}")

    @property
    def fixed_input_size(self) -> int | None:
        """None: the network is fully convolutional (global pooling only in the CAM head), so any
        multiple of 8 runs; ``img_size`` is the size it was trained at."""
        return None

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["widths"] = list(self.widths)
        return out


def _conv(dim_in: int, dim_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(dim_in, dim_out, kernel_size=3, stride=stride, padding=1)


class InvertedResidual(nn.Module):
    """MobileNetV2's block with an instance norm in front: x + project(dw(expand(norm(x))))."""

    def __init__(self, dim: int, expand: int) -> None:
        super().__init__()
        hidden = dim * expand
        self.norm = nn.InstanceNorm2d(dim, affine=True)
        self.expand = nn.Conv2d(dim, hidden, kernel_size=1)
        self.depthwise = nn.Conv2d(hidden, hidden, kernel_size=3, padding=1, groups=hidden)
        self.project = nn.Conv2d(hidden, dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.expand(self.norm(x)))
        y = F.relu(self.depthwise(y))
        return x + self.project(y)


class CompactGenerator(nn.Module):
    """Encoder (3 strided convs) -> inverted residuals at 1/8 -> bilinear decoder with skips."""

    arch: ClassVar[str] = COMPACT_ARCH
    # A key every state dict of this architecture holds (and no other's): how a file is recognised.
    probe_key: ClassVar[str] = "enc0.weight"
    blur_kernel: torch.Tensor  # the sharpening stage's, when it has one

    def __init__(self, config: CompactConfig | None = None) -> None:
        super().__init__()
        self.config = config or CompactConfig()
        w0, w1, w2 = self.config.widths
        self.enc0 = _conv(3, w0, stride=2)
        self.enc1 = _conv(w0, w1, stride=2)
        self.enc1b = _conv(w1, w1)
        self.enc2 = _conv(w1, w2, stride=2)
        self.body = nn.ModuleList(InvertedResidual(w2, self.config.expand) for _ in range(self.config.blocks))
        self.gap_fc = nn.Linear(w2, 1)
        self.gmp_fc = nn.Linear(w2, 1)
        self.dec2 = _conv(w2, w1)
        self.dec2b = _conv(w1, w1)
        self.dec1 = _conv(w1, w0)
        self.dec1b = _conv(w0, w0)
        self.dec0 = _conv(w0, 12 if self.config.head == "shuffle" else 3)
        if self.config.sharpen:
            self.sharpen_amount = nn.Parameter(torch.full((1, 3, 1, 1), SHARPEN_START))
            self.register_buffer("blur_kernel", _binomial_kernel(3), persistent=False)

    @classmethod
    def from_config(cls, config: CompactConfig) -> CompactGenerator:
        return cls(config)

    @staticmethod
    def config_from_state_dict(state: Mapping[str, torch.Tensor], img_size: int = 256) -> CompactConfig:
        """Infer the constructor arguments from the weights' shapes: the widths are the output channels
        of ``enc0``, ``enc1`` and ``enc2``, ``blocks`` the number of ``body.N`` modules, ``expand`` the
        first block's hidden width over the last width. ``img_size`` cannot be read off the weights
        (the network is fully convolutional): the one given is used."""
        w0, w1, w2 = (int(state[f"enc{i}.weight"].shape[0]) for i in range(3))
        blocks = len({m.group(1) for key in state if (m := re.match(r"body\.(\d+)\.", key))})
        expand = int(state["body.0.expand.weight"].shape[0]) // w2
        head = "shuffle" if int(state["dec0.weight"].shape[0]) == 12 else "bilinear"
        return CompactConfig(
            img_size=img_size,
            widths=(w0, w1, w2),
            blocks=blocks,
            expand=expand,
            head=head,
            sharpen="sharpen_amount" in state,
        )

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's features, finest first: what the patchwise contrastive loss compares."""
        f0 = F.relu(self.enc0(x))
        f1 = F.relu(self.enc1b(F.relu(self.enc1(f0))))
        f2 = F.relu(self.enc2(f1))
        features = [f0, f1, f2]
        h = f2
        for index, block in enumerate(self.body):
            h = block(h)
            if index == len(self.body) // 2 - 1:
                features.append(h)
        features.append(h)
        return features

    def decode(self, features: list[torch.Tensor]) -> torch.Tensor:
        f0, f1, h = features[0], features[1], features[-1]
        y = F.relu(self.dec2(_up(h)))
        y = F.relu(self.dec2b(y + f1))
        y = F.relu(self.dec1(_up(y)))
        y = F.relu(self.dec1b(y + f0))
        y = F.pixel_shuffle(self.dec0(y), 2) if self.config.head == "shuffle" else self.dec0(_up(y))
        if self.config.sharpen:
            blurred = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), self.blur_kernel, groups=3)
            y = y + self.sharpen_amount * (y - blurred)
        return torch.tanh(y)

    def _load_from_state_dict(  # type: ignore[no-untyped-def]
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ) -> None:
        """A state of the bilinear head or without the sharpening stage continues in this one: the head
        converts exactly, the stage starts at :data:`SHARPEN_START`."""
        weight_key, bias_key = f"{prefix}dec0.weight", f"{prefix}dec0.bias"
        weight = state_dict.get(weight_key)
        if self.config.head == "shuffle" and weight is not None and weight.shape[0] == 3:
            state_dict[weight_key], state_dict[bias_key] = shuffle_head(weight, state_dict[bias_key])
        if self.config.sharpen and f"{prefix}sharpen_amount" not in state_dict:
            state_dict[f"{prefix}sharpen_amount"] = torch.full((1, 3, 1, 1), SHARPEN_START)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def forward(self, x: torch.Tensor) -> GeneratorOutput:
        features = self.encode(x)
        h = features[-1]
        cam_logit = torch.cat(
            (self.gap_fc(h.mean(dim=(2, 3))), self.gmp_fc(torch.amax(h, dim=(2, 3)))), dim=1
        )
        heatmap = (h * self.gap_fc.weight[:, :, None, None]).sum(dim=1, keepdim=True)
        return GeneratorOutput(self.decode(features), cam_logit, heatmap)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def _binomial_kernel(channels: int) -> torch.Tensor:
    """[1, 2, 1]/4 in both directions, one per channel (a depthwise convolution's weight)."""
    taps = torch.tensor([1.0, 2.0, 1.0]) / 4.0
    return (taps[:, None] * taps[None, :]).expand(channels, 1, 3, 3).clone()


# Bilinear 2x upsampling (half-pixel centres) then a 3x3 convolution, seen from the low-resolution
# grid: output pixel 2i+phase reads low-resolution pixels i-1, i, i+1 with these mixes of the
# convolution's three taps (rows: the low-resolution offset, columns: the tap).
_PHASE_MIX = (
    ((0.75, 0.25, 0.0), (0.25, 0.75, 0.75), (0.0, 0.0, 0.25)),
    ((0.25, 0.0, 0.0), (0.75, 0.75, 0.25), (0.0, 0.25, 0.75)),
)


def shuffle_head(weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The bilinear head's last convolution (C_out x C_in x 3 x 3) as the shuffle head's
    (4 C_out x C_in x 3 x 3): the same cartoon, but for the two pixels at the border."""
    mix = [weight.new_tensor(m) for m in _PHASE_MIX]
    kernels = [torch.einsum("ak,oikl,bl->oiab", mix[py], weight, mix[px]) for py in (0, 1) for px in (0, 1)]
    # pixel_shuffle reads channel c * 4 + py * 2 + px into output channel c, phase (py, px)
    return torch.stack(kernels, dim=1).flatten(0, 1), bias.repeat_interleave(4)


def with_sharpen_amount(state: Mapping[str, torch.Tensor], amount: float) -> dict[str, torch.Tensor]:
    """A copy of a compact state with its unsharp amount set to ``amount`` in every colour.

    Training settles the amount where the adversarial game balances, not where the lines look
    drawn: set after training, a larger amount draws the lines nearer the cartoons' while flat
    regions gain a little grain (docs/default-model.md, "the amount at shipping").
    """
    if "sharpen_amount" not in state:
        raise ValueError("these weights have no sharpening stage (train with --sharpen)")
    if not 0.0 <= amount <= 3.0:
        raise ValueError(f"the unsharp amount must be in [0, 3], got {amount}")
    out = dict(state)
    out["sharpen_amount"] = torch.full_like(state["sharpen_amount"], amount)
    return out
