"""White-box cartoonisation's surface and texture representations (Wang & Yu, CVPR 2020).

A cartoon is told from a photo by two things a discriminator on the whole picture mixes up with
colour and layout: **flat shading** and **clean lines**. White-box cartoonisation separates them
and gives each its own discriminator, on unpaired data:

- the **surface** of an image is its self-guided filter (He et al.): edges kept, everything
  between them flattened. A discriminator on surfaces judges only the shading: smooth colour
  regions with soft gradients, as the cartoons' skin and hair are drawn;
- the **texture** of an image is a random grey mix of its channels (weights around the luminance
  ones, drawn anew each time, as the paper's ``color_shift``). With colour gone, a discriminator
  on textures judges only lines and high-frequency detail: outlines, strands, the eyes' strokes.

Both are differentiable, so the generator learns from both discriminators' verdicts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["SURFACE_EPS", "SURFACE_RADIUS", "draw_texture_mix", "guided_filter", "surface", "texture"]

# The paper's values at 256 px (images in [-1, 1]); the radius scales with the image.
SURFACE_RADIUS = 5
SURFACE_EPS = 2e-2
# Per-channel grey weights, each drawn uniformly in its range (the paper's color_shift, RGB order).
TEXTURE_WEIGHTS = ((0.199, 0.399), (0.487, 0.687), (0.014, 0.214))


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """The mean over a (2r+1)^2 window (fewer pixels at the border), as a row pass then a column
    pass: 2(2r+1) reads a pixel instead of (2r+1)^2 (the filter at 256 px doubled a step's time)."""
    k = 2 * radius + 1
    rows = F.avg_pool2d(x, (1, k), stride=1, padding=(0, radius), count_include_pad=False)
    return F.avg_pool2d(rows, (k, 1), stride=1, padding=(radius, 0), count_include_pad=False)


def guided_filter(guide: torch.Tensor, image: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    """He et al.'s guided filter, per channel: ``image`` smoothed where ``guide`` is flat."""
    mean_g, mean_i = _box(guide, radius), _box(image, radius)
    covariance = _box(guide * image, radius) - mean_g * mean_i
    variance = _box(guide * guide, radius) - mean_g * mean_g
    a = covariance / (variance + eps)
    b = mean_i - a * mean_g
    return _box(a, radius) * guide + _box(b, radius)


def surface(images: torch.Tensor) -> torch.Tensor:
    """N x 3 x S x S in [-1, 1] -> the same, flattened between edges (the self-guided filter)."""
    radius = max(1, round(SURFACE_RADIUS * images.shape[-1] / 256))
    return guided_filter(images, images, radius, SURFACE_EPS)


def draw_texture_mix(rng: torch.Generator) -> torch.Tensor:
    """Three grey weights summing to 1, one per channel: drawn once a step, for real and fake alike."""
    low = torch.tensor([lo for lo, _ in TEXTURE_WEIGHTS])
    high = torch.tensor([hi for _, hi in TEXTURE_WEIGHTS])
    weights = low + (high - low) * torch.rand(3, generator=rng)
    return weights / weights.sum()


def texture(images: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """N x 3 x S x S -> N x 1 x S x S: the channels mixed to grey with ``mix``."""
    return (images * mix.to(images)[None, :, None, None]).sum(dim=1, keepdim=True)
