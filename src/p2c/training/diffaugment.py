"""Differentiable augmentation for the discriminator's inputs (DiffAugment, Zhao et al., NeurIPS 2020).

A GAN trained on a couple of hundred images lets its discriminator memorise them, and the
generator then gets no useful gradient. DiffAugment applies the same random, differentiable
transforms to real and generated images every time the discriminator sees them, so it must judge
what survives the transforms (the style), and the generator's gradient flows back through them.
The policy ``color,translation,cutout`` is the paper's choice for 100-image data sets.

Every draw comes from the ``torch.Generator`` passed in, so a training step is a pure function of
its seed (resumed runs repeat it exactly).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["POLICIES", "diff_augment"]

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _uniform(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, generator=generator).to(x)


def brightness(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return x + (_uniform(x, generator) - 0.5)


def saturation(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform(x, generator) * 2.0) + mean


def contrast(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, generator) + 0.5) + mean


def translation(x: torch.Tensor, generator: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size; the uncovered border is zero, as the paper's."""
    n, _, h, w = x.shape
    max_y, max_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    shift_y = torch.randint(-max_y, max_y + 1, (n,), generator=generator)
    shift_x = torch.randint(-max_x, max_x + 1, (n,), generator=generator)
    padded = F.pad(x, (max_x, max_x, max_y, max_y))
    rows = [
        padded[i, :, max_y - int(dy) : max_y - int(dy) + h, max_x - int(dx) : max_x - int(dx) + w]
        for i, (dy, dx) in enumerate(zip(shift_y, shift_x, strict=True))
    ]
    return torch.stack(rows)


def cutout(x: torch.Tensor, generator: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Zero a random ``ratio``-sized rectangle of each image (its centre anywhere in the image)."""
    n, _, h, w = x.shape
    cut_h, cut_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    centre_y = torch.randint(0, h + (1 - cut_h % 2), (n,), generator=generator)
    centre_x = torch.randint(0, w + (1 - cut_w % 2), (n,), generator=generator)
    ys = torch.arange(h)[None, :, None]
    xs = torch.arange(w)[None, None, :]
    top = (centre_y - cut_h // 2)[:, None, None]
    left = (centre_x - cut_w // 2)[:, None, None]
    inside = (ys >= top) & (ys < top + cut_h) & (xs >= left) & (xs < left + cut_w)
    return x * (~inside).to(x)[:, None]


POLICIES: dict[str, tuple[Transform, ...]] = {
    "color": (brightness, saturation, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
}


def diff_augment(x: torch.Tensor, policy: str, generator: torch.Generator) -> torch.Tensor:
    """``x`` through every transform the comma-separated ``policy`` names ("" leaves it as it is)."""
    for name in filter(None, (part.strip() for part in policy.split(","))):
        if name not in POLICIES:
            raise ValueError(f"unknown DiffAugment policy {name!r}; choose from {', '.join(POLICIES)}")
        for transform in POLICIES[name]:
            x = transform(x, generator)
    return x.contiguous()
