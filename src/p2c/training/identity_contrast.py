"""The contrastive identity loss: each cartoon nearer its own photo than other people's photos.

The Face ID loss (1 - cosine to its own photo) rewards a cartoon for keeping its photo's
embedding, but face embeddings of different people already lie close together (dlib's: cosine
0.5-0.7), so a generator that draws every face as one template still scores well on it. The gate
asks the other question: does each photo pick out its own cartoon among all the cartoons (rank-1,
:func:`p2c.training.metrics.identity_rank1`)? This loss asks that question while training, as
InfoNCE over embeddings, in both directions:

- a cartoon against its own photo and the other photos (of the batch and of the last steps);
- a photo against its own cartoon and the other cartoons (of the batch and of the last steps).

The banks hold detached embeddings of earlier batches, so the negatives cost nothing; they are
not saved with the state, since a few dozen steps refill them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["IdentityContrast"]

SAME_FACE_COSINE = 0.999  # a banked embedding this close to the positive is the same photo drawn again


class IdentityContrast:
    """InfoNCE between cartoons' and photos' unit embeddings, with banks of recent negatives."""

    def __init__(self, bank_size: int = 256, temperature: float = 0.1) -> None:
        if bank_size < 0 or not temperature > 0:
            raise ValueError(f"need bank_size >= 0 and temperature > 0, got {bank_size} and {temperature}")
        self.bank_size = bank_size
        self.temperature = temperature
        self.photo_bank: torch.Tensor | None = None
        self.cartoon_bank: torch.Tensor | None = None

    def __call__(self, cartoons: torch.Tensor, photos: torch.Tensor) -> torch.Tensor:
        """The loss for N x D unit embeddings, row i of both one photo and its cartoon; then bank them."""
        if cartoons.shape != photos.shape or cartoons.ndim != 2:
            shapes = f"{tuple(cartoons.shape)} and {tuple(photos.shape)}"
            raise ValueError(f"need two N x D embeddings, got {shapes}")
        photos = photos.detach()
        to_photos = self._info_nce(cartoons, photos, self.photo_bank)
        to_cartoons = self._info_nce(photos, cartoons, self.cartoon_bank)
        self.photo_bank = self._banked(self.photo_bank, photos)
        self.cartoon_bank = self._banked(self.cartoon_bank, cartoons.detach())
        return 0.5 * (to_photos + to_cartoons)

    def _info_nce(self, queries: torch.Tensor, keys: torch.Tensor, bank: torch.Tensor | None) -> torch.Tensor:
        logits = queries @ keys.T
        if bank is not None:
            banked = queries @ bank.T
            # the same photo (or its cartoon) drawn again is no negative
            same = (keys.detach() @ bank.T) > SAME_FACE_COSINE
            logits = torch.cat([logits, banked.masked_fill(same, float("-inf"))], dim=1)
        target = torch.arange(queries.shape[0], device=queries.device)
        return F.cross_entropy(logits.float() / self.temperature, target)

    def _banked(self, bank: torch.Tensor | None, new: torch.Tensor) -> torch.Tensor | None:
        if self.bank_size == 0:
            return None
        joined = new if bank is None else torch.cat([new, bank])
        return joined[: self.bank_size].float()
