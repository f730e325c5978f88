"""Crops held in memory and the batches of a step, drawn as a pure function of ``(seed, step)``.

The compact recipe trains on a CPU, where loader workers would only compete with the networks for
the two cores: a few hundred 256x256 crops fit in memory (545 photos: 107 MB), and a batch costs
a few milliseconds to cut. Augmentation is photo2cartoon's (flip, resize to size + 30, random
crop; :func:`p2c.training.dataset.augment`), and for photos, optionally, webcam and video light
(:mod:`p2c.training.camera_light`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from p2c.errors import InvalidInputError
from p2c.training.camera_light import camera_light
from p2c.training.dataset import _resize, augment, list_images, read_rgb, to_tensor

__all__ = ["CropBank"]


class CropBank:
    """Every crop of one folder, decoded once."""

    def __init__(self, folder: Path, domain: int, camera_light: float = 0.0) -> None:
        self.folder = folder
        self.domain = domain
        self.camera_light = camera_light  # the share of crops shown as a webcam would show them
        self.images = []
        for path in list_images(folder):
            image = read_rgb(path)
            if image is None:
                raise InvalidInputError(
                    f"{path} is not a readable image; delete it or re-run p2c-prepare-data"
                )
            self.images.append(image)
        if not self.images:
            raise InvalidInputError(
                f"{folder} holds no images (.png, .jpg, .webp); run p2c-prepare-data first"
            )

    def __len__(self) -> int:
        return len(self.images)

    def plain(self, index: int, size: int) -> torch.Tensor:
        """Crop ``index`` without augmentation, at ``size``: for sample grids."""
        return to_tensor(_resize(self.images[index], size))

    def batch(self, seed: int, step: int, size: int, count: int, rank: int = 0) -> torch.Tensor:
        """``count`` augmented crops for ``step`` on ``rank``: the same for the same key, on any machine."""
        rng = np.random.default_rng([seed, self.domain, step] + ([rank] if rank else []))
        picks = rng.integers(0, len(self.images), size=count)
        return torch.stack([to_tensor(self._augment(self.images[int(i)], size, rng)) for i in picks])

    def _augment(self, image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
        image = augment(image, size, rng)
        if self.camera_light > 0 and rng.random() < self.camera_light:  # no draw at 0: old runs repeat
            image = camera_light(image, rng)
        return image
