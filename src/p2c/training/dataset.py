"""Unpaired image folders (trainA photos, trainB cartoons) with photo2cartoon's augmentation.

Randomness is a pure function of (seed, domain, epoch, position in the epoch's permutation):
every sample's flip and crop come from its own seed, carried by the batch sampler. The position is
global (rank r of w holds positions r, r + w, ...), so N processes with batch B see the same
samples, identically augmented, as one process with batch N x B (when N divides the dataset size).
A run stopped at step k and resumed sees exactly the batches an uninterrupted run sees, whatever
the number of loader workers, with no data-loader state in the checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from p2c.errors import InputNotFoundError, InvalidInputError

__all__ = [
    "IMAGE_SUFFIXES",
    "AugmentedFolder",
    "DomainBatchSampler",
    "augment",
    "list_images",
    "make_loader",
    "read_rgb",
    "to_tensor",
]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
CROP_MARGIN = 30  # photo2cartoon: resize to size + 30, then a random size x size crop


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (the order is part of determinism)."""
    if not folder.is_dir():
        raise InputNotFoundError(f"image folder {folder} does not exist; run p2c-prepare-data first")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_rgb(path: Path) -> np.ndarray | None:
    """Decode ``path`` as uint8 RGB, or None if it is not an image OpenCV can read."""
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        return None
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    shrinking = image.shape[0] > size or image.shape[1] > size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def augment(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Random horizontal flip, resize to size + 30, random size x size crop (photo2cartoon's recipe)."""
    if rng.random() < 0.5:
        image = image[:, ::-1]
    image = _resize(np.ascontiguousarray(image), size + CROP_MARGIN)
    top, left = rng.integers(0, CROP_MARGIN + 1, size=2)
    return image[top : top + size, left : left + size]


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 H x W x 3 RGB -> float32 3 x H x W in [-1, 1]."""
    array = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
    return torch.from_numpy(array).div_(127.5).sub_(1.0)


class AugmentedFolder(Dataset[torch.Tensor]):
    """A folder of crops. Indexed by ``(index, seed)``: the seed drives that sample's augmentation."""

    def __init__(self, folder: Path, size: int) -> None:
        self.folder = folder
        self.size = size
        self.paths = list_images(folder)
        if not self.paths:
            raise InvalidInputError(
                f"{folder} holds no images (.png, .jpg, .webp); run p2c-prepare-data first"
            )

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> np.ndarray:
        image = read_rgb(self.paths[index])
        if image is None:
            raise InvalidInputError(
                f"{self.paths[index]} is not a readable image; delete it or re-run preparation"
            )
        return image

    def plain(self, index: int) -> torch.Tensor:
        """The sample without augmentation, resized to ``size``: for sample grids and evaluation."""
        return to_tensor(_resize(self.load(index), self.size))

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:  # type: ignore[override]
        index, seed = key
        return to_tensor(augment(self.load(index), self.size, np.random.default_rng(seed)))


class DomainBatchSampler(Sampler[list[tuple[int, int]]]):
    """An endless stream of batches of ``(index, augmentation seed)`` for one domain on one rank.

    Each epoch is a :class:`DistributedSampler` permutation (so ranks see disjoint shards), cut
    into full batches; ``start_step`` skips the batches a resumed run has already trained on.
    """

    def __init__(
        self,
        length: int,
        batch_size: int,
        seed: int,
        domain: int,
        rank: int = 0,
        world_size: int = 1,
        start_step: int = 0,
    ) -> None:
        self.sampler: DistributedSampler[int] = DistributedSampler(
            range(length),  # type: ignore[arg-type]  # a sized sequence is all it reads
            num_replicas=world_size,
            rank=rank,
            shuffle=True,
            seed=seed,
            drop_last=False,
        )
        per_rank = len(self.sampler)
        if per_rank < batch_size:
            raise InvalidInputError(
                f"a domain has {length} images, fewer than batch size {batch_size} x {world_size} "
                "process(es); add images or lower --batch-size"
            )
        self.batch_size = batch_size
        self.batches_per_epoch = per_rank // batch_size
        self.seed, self.domain, self.rank, self.world_size = seed, domain, rank, world_size
        self.start_step = start_step

    def __len__(self) -> int:  # endless; DataLoader only uses this for progress estimates
        return 2**62

    def _sample_seed(self, epoch: int, position: int) -> int:
        """``position`` is this rank's; the seed uses the global one (DistributedSampler strides)."""
        entropy = [self.seed, self.domain, epoch, position * self.world_size + self.rank]
        return int(np.random.SeedSequence(entropy).generate_state(1)[0])

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, batch = divmod(self.start_step, self.batches_per_epoch)
        while True:
            self.sampler.set_epoch(epoch)
            order = list(self.sampler)
            for b in range(batch, self.batches_per_epoch):
                positions = range(b * self.batch_size, (b + 1) * self.batch_size)
                yield [(order[p], self._sample_seed(epoch, p)) for p in positions]
            epoch, batch = epoch + 1, 0


def make_loader(
    dataset: AugmentedFolder, sampler: DomainBatchSampler, num_workers: int, pin_memory: bool
) -> Iterator[torch.Tensor]:
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=False,
    )
    return iter(loader)
