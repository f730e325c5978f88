"""The patchwise contrastive loss of CUT (Park et al., ECCV 2020): content kept without a second generator.

A patch of the cartoon must be closer, in the generator's own encoder features (passed through a
small MLP per layer), to the photo patch at the same place than to the other patches of that
photo. That keeps the face's layout and features where they were, which U-GAT-IT gets from a
cycle through a second generator at twice the cost. FastCUT's choice: several encoder layers,
256 patches per layer, temperature 0.07, no identity term.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PatchSampler", "patch_nce_loss"]


class PatchSampler(nn.Module):
    """One two-layer MLP per encoder layer; samples the same patch positions from photo and cartoon."""

    def __init__(self, channels: Sequence[int], dim: int = 256, patches: int = 256) -> None:
        super().__init__()
        self.patches = patches
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(c, dim), nn.ReLU(), nn.Linear(dim, dim)) for c in channels
        )

    def positions(self, features: Sequence[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
        """Random patch indices per layer (at most ``patches``, no repeats)."""
        out = []
        for feature in features:
            count = feature.shape[2] * feature.shape[3]
            out.append(torch.randperm(count, generator=generator)[: min(self.patches, count)])
        return out

    def forward(
        self,
        features: Sequence[torch.Tensor],
        positions: Sequence[torch.Tensor],
        layers: Sequence[int] | None = None,
    ) -> list[torch.Tensor]:
        """Per layer: N x P x dim unit vectors of the features at ``positions``. ``layers``: which
        encoder layers ``features`` are (their heads), when not all."""
        heads = list(self.heads) if layers is None else [self.heads[i] for i in layers]
        out = []
        for head, feature, index in zip(heads, features, positions, strict=True):
            flat = feature.flatten(2).transpose(1, 2)  # N x HW x C
            picked = flat[:, index.to(feature.device), :]
            out.append(F.normalize(head(picked), dim=-1))
        return out


def patch_nce_loss(query: torch.Tensor, key: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """InfoNCE between N x P x D queries (cartoon patches) and keys (photo patches at the same places).

    The positive of query i is key i; the negatives are the other P - 1 keys of the same image.
    """
    n, p, _ = query.shape
    logits = torch.bmm(query, key.transpose(1, 2)) / temperature  # N x P x P, positives on the diagonal
    target = torch.arange(p, device=query.device).expand(n, p)
    return F.cross_entropy(logits.reshape(n * p, p), target.reshape(n * p))
