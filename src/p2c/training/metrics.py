"""Offline image metrics: KID on fixed features, identity by Face ID embeddings and descriptors.

No Inception weights can be downloaded, so the distribution distance uses a feature space that
needs no training and is the same on every machine: colour statistics (per-channel mean, std and
a coarse joint histogram in YCrCb) plus texture statistics (mean and std of the responses of a
fixed, seeded bank of random convolution filters at three scales, after ReLU). These capture what
separates cartoons from photos and one cartoon style from another: flat colour regions, palette,
edge density and stroke width. KID (the squared MMD with a cubic polynomial kernel, unbiased
estimator) is used instead of FID because it is unbiased for the small sets evaluation has.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from p2c.training.faceid import FaceIdNetwork

__all__ = [
    "DLIB_SAME_PERSON",
    "StyleFeatures",
    "descriptor_distance",
    "identity_rank1",
    "identity_similarity",
    "kernel_inception_distance",
]

DLIB_SAME_PERSON = 0.6  # dlib's convention: descriptors closer than this are the same person


class StyleFeatures(nn.Module):
    """N x 3 x H x W in [-1, 1] -> N x D features (D = 9 + 64 + 2 * 3 * filters), deterministic."""

    def __init__(self, filters: int = 32, seed: int = 20240521, size: int = 128) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        bank = torch.randn(filters, 3, 5, 5, generator=generator)
        bank -= bank.mean(dim=(1, 2, 3), keepdim=True)  # zero-mean: respond to texture, not brightness
        bank /= bank.flatten(1).norm(dim=1)[:, None, None, None]
        self.bank: torch.Tensor
        self.register_buffer("bank", bank)
        self.size = size
        ycrcb = torch.tensor([[0.299, 0.587, 0.114], [0.5, -0.419, -0.081], [-0.169, -0.331, 0.5]])
        self.ycrcb: torch.Tensor
        self.register_buffer("ycrcb", ycrcb)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images.float(), size=(self.size, self.size), mode="bilinear", align_corners=False)
        colour = torch.einsum("ij,njhw->nihw", self.ycrcb, (x + 1.0) / 2.0)
        features = [colour.mean(dim=(2, 3)), colour.std(dim=(2, 3)), _colour_histogram(x)]
        features.append(colour.flatten(2).quantile(0.9, dim=2) - colour.flatten(2).quantile(0.1, dim=2))
        for _ in range(3):
            responses = F.relu(F.conv2d(x, self.bank, padding=2))
            features += [responses.mean(dim=(2, 3)), responses.std(dim=(2, 3))]
            x = F.avg_pool2d(x, 2)
        return torch.cat(features, dim=1)


def _colour_histogram(images: torch.Tensor, bins: int = 4) -> torch.Tensor:
    """Joint RGB histogram with ``bins`` levels per channel, as frequencies (N x bins^3)."""
    levels = ((images.clamp(-1, 1) + 1.0) / 2.0 * bins).long().clamp(max=bins - 1)
    codes = levels[:, 0] * bins * bins + levels[:, 1] * bins + levels[:, 2]
    histogram = F.one_hot(codes.flatten(1), bins**3).float().mean(dim=1)
    return histogram


def kernel_inception_distance(x: torch.Tensor, y: torch.Tensor, standardise: bool = True) -> float:
    """Unbiased squared MMD with kernel (a.b / d + 1)^3 between feature sets x (n x d) and y (m x d).

    ``standardise``: first standardise the features with statistics of both sets together so no
    dimension dominates (False: the caller has, e.g. against a fixed reference set). Needs n, m >= 2.
    Can be slightly negative when the sets are indistinguishable.
    """
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"KID needs at least 2 samples in each set, got {n} and {m}")
    both = torch.cat([x, y]).double()
    if standardise:
        both = (both - both.mean(dim=0)) / both.std(dim=0).clamp_min(1e-8)
    x, y = both[:n], both[n:]
    d = x.shape[1]

    def kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a @ b.T / d + 1.0) ** 3

    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    term_xx = (k_xx.sum() - k_xx.diagonal().sum()) / (n * (n - 1))
    term_yy = (k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    value = float(term_xx + term_yy - 2.0 * k_xy.mean())
    return value if math.isfinite(value) else float("nan")


@torch.no_grad()
def identity_similarity(faceid: nn.Module, photos: torch.Tensor, cartoons: torch.Tensor) -> torch.Tensor:
    """Per pair cosine similarity of Face ID embeddings (1 = same identity as far as it can tell)."""
    return F.cosine_similarity(faceid(photos).float(), faceid(cartoons).float(), dim=1)


def identity_rank1(photo_embeddings: torch.Tensor, cartoon_embeddings: torch.Tensor) -> torch.Tensor:
    """Per photo, whether its own cartoon is the nearest (cosine) of all the cartoons (N bools).

    Row i of both is one photo and its cartoon. A generator that keeps identity lets each photo pick
    out its own cartoon; one that draws the same face for everyone does not, whatever the cosine.
    """
    if photo_embeddings.shape != cartoon_embeddings.shape or photo_embeddings.shape[0] < 2:
        raise ValueError(
            f"rank-1 needs as many cartoons as photos (>= 2), got {tuple(photo_embeddings.shape)} "
            f"and {tuple(cartoon_embeddings.shape)}"
        )
    similarity = (
        F.normalize(photo_embeddings.float(), dim=1) @ F.normalize(cartoon_embeddings.float(), dim=1).T
    )
    return similarity.argmax(dim=1) == torch.arange(similarity.shape[0], device=similarity.device)


@torch.no_grad()
def descriptor_distance(faceid: FaceIdNetwork, photos: torch.Tensor, cartoons: torch.Tensor) -> torch.Tensor:
    """Per pair Euclidean distance of raw descriptors (``faceid.descriptors``; dlib: < 0.6 same person)."""
    return (faceid.descriptors(photos).float() - faceid.descriptors(cartoons).float()).norm(dim=1)
