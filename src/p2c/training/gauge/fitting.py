"""Fitting the cartoon-ness gauge, and the figures that say how well it separates held-out images.

:func:`fit_gauge` trains a :class:`~p2c.training.gauge.network.CartoonGauge` on "not a cartoon"
(label 0): photo crops and untrained generators' outputs of them
(:mod:`~p2c.training.gauge.negatives`); against cartoon crops (label 1). Every epoch shows each
photo and each negative once and as many cartoons, drawn in turn from repeated permutations (the
classes are balanced however unequal the sets); each image changed by
:func:`~p2c.training.gauge.augmentation.augment_style`. Everything random is a function of the
seed, the epoch and the position, so with one torch thread a fit is repeatable.

:func:`separation` gives accuracy at 0.5, AUC and each image's P(cartoon) on held-out sets;
:func:`stress_figures` the mean P(cartoon) of held-out images made softer (blurred, down-sampled,
re-compressed, smoothed) or paler: a blurred or pale photo must stay a photo.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from p2c.errors import InvalidInputError
from p2c.training.dataset import to_tensor

from .augmentation import AugmentConfig, augment_style, blurred, downscaled, recompressed, washed
from .negatives import untrained_outputs
from .network import CartoonGauge, GaugeConfig

__all__ = ["FitConfig", "FitResult", "auc", "fit_gauge", "scores", "separation", "stress_figures"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitConfig:
    """How the gauge is fitted; ``gauge`` and ``augment`` configure the network and the changes."""

    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    seed: int = 0
    negative_generators: int = 18  # untrained generators whose outputs are "not a cartoon"
    negatives_per_generator: int = 10
    gauge: GaugeConfig = field(default_factory=GaugeConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError(f"epochs must be >= 1 and batch_size >= 2, got {self.epochs}, {self.batch_size}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if min(self.negative_generators, self.negatives_per_generator) < 0:
            raise ValueError(
                f"negative_generators and negatives_per_generator must be >= 0, got "
                f"{self.negative_generators}, {self.negatives_per_generator}"
            )
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must lie in [0, 0.5), got {self.label_smoothing}")

    def to_dict(self) -> dict[str, Any]:
        content = asdict(self)
        content["gauge"] = self.gauge.to_dict()
        return content


@dataclass
class FitResult:
    gauge: CartoonGauge
    seconds: float  # all of it: the negatives and the training
    history: list[dict[str, float]]
    negatives: int


PHOTO, CARTOON, NEGATIVE = 0, 1, 2  # the sets; the label is 1 for CARTOON only


def _epoch_plan(photos: int, cartoons: int, negatives: int, seed: int, epoch: int) -> list[tuple[int, int]]:
    """(set, index) pairs of one epoch: every photo and negative once, as many cartoons, shuffled."""
    rng = np.random.default_rng([seed, epoch])
    others = [(PHOTO, int(i)) for i in rng.permutation(photos)]
    others += [(NEGATIVE, int(i)) for i in rng.permutation(negatives)]
    drawn = np.concatenate([rng.permutation(cartoons) for _ in range(math.ceil(len(others) / cartoons))])
    plan = others + [(CARTOON, int(i)) for i in drawn[: len(others)]]
    return [plan[int(i)] for i in rng.permutation(len(plan))]


def fit_gauge(photos: list[np.ndarray], cartoons: list[np.ndarray], config: FitConfig) -> FitResult:
    """Fit a gauge on RGB uint8 crops of photos (P = 0) and cartoons (P = 1), and on untrained
    generators' outputs of the photos (P = 0; ``config.negative_generators`` of them)."""
    if len(photos) < 2 or len(cartoons) < 2:
        raise InvalidInputError(
            f"the gauge needs >= 2 photos and >= 2 cartoons, got {len(photos)}, {len(cartoons)}"
        )
    started = time.perf_counter()
    negatives = untrained_outputs(photos, config.negative_generators, config.negatives_per_generator)
    torch.manual_seed(config.seed)
    gauge = CartoonGauge(config.gauge)
    optimiser = torch.optim.AdamW(
        gauge.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    steps_per_epoch = math.ceil(2 * (len(photos) + len(negatives)) / config.batch_size)
    total, warmup = config.epochs * steps_per_epoch, steps_per_epoch

    def rate(step: int) -> float:  # linear warm-up over one epoch, then a cosine to zero
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, rate)
    sets = {PHOTO: photos, CARTOON: cartoons, NEGATIVE: negatives}
    history = []
    gauge.train()
    for epoch in range(config.epochs):
        plan = _epoch_plan(len(photos), len(cartoons), len(negatives), config.seed, epoch)
        losses, correct = [], 0
        for first in range(0, len(plan), config.batch_size):
            chunk = plan[first : first + config.batch_size]
            images = torch.stack(
                [
                    to_tensor(
                        augment_style(
                            sets[which][index],
                            np.random.default_rng([config.seed, epoch, first + k]),
                            config.augment,
                        )
                    )
                    for k, (which, index) in enumerate(chunk)
                ]
            )
            labels = torch.tensor([float(which == CARTOON) for which, _ in chunk])
            targets = labels * (1 - 2 * config.label_smoothing) + config.label_smoothing
            logits = gauge.logits(images)
            loss = F.binary_cross_entropy_with_logits(logits, targets)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item() * len(chunk))
            correct += int(((logits > 0).float() == labels).sum())
        record = {"epoch": epoch + 1, "loss": sum(losses) / len(plan), "accuracy": correct / len(plan)}
        record["seconds"] = round(time.perf_counter() - started, 1)
        history.append(record)
        logger.info(
            "epoch %d: loss %.4f, accuracy %.3f (%.0f s)",
            epoch + 1,
            record["loss"],
            record["accuracy"],
            record["seconds"],
        )
    gauge.eval().requires_grad_(False)
    return FitResult(
        gauge=gauge, seconds=time.perf_counter() - started, history=history, negatives=len(negatives)
    )


@torch.no_grad()
def scores(gauge: CartoonGauge, images: list[np.ndarray], batch_size: int = 32) -> np.ndarray:
    """P(cartoon) of each RGB uint8 image."""
    parts = [
        gauge(torch.stack([to_tensor(image) for image in images[i : i + batch_size]])).numpy()
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def auc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve: P(a positive scores above a negative), ties counting half."""
    if len(negatives) == 0 or len(positives) == 0:
        raise ValueError("AUC needs at least one negative and one positive score")
    difference = np.asarray(positives)[:, None] - np.asarray(negatives)[None, :]
    return float((difference > 0).mean() + 0.5 * (difference == 0).mean())


def separation(
    gauge: CartoonGauge,
    photos: list[np.ndarray],
    cartoons: list[np.ndarray],
    photo_names: list[str] | None = None,
    cartoon_names: list[str] | None = None,
) -> dict[str, Any]:
    """Accuracy (threshold 0.5), AUC and each image's P(cartoon) on held-out photos and cartoons."""
    p_photo, p_cartoon = scores(gauge, photos), scores(gauge, cartoons)
    correct = int((p_photo < 0.5).sum() + (p_cartoon >= 0.5).sum())

    def named(names: list[str] | None, values: np.ndarray) -> dict[str, float]:
        keys = names or [str(i) for i in range(len(values))]
        return {key: round(float(value), 4) for key, value in zip(keys, values, strict=True)}

    return {
        "photos": len(photos),
        "cartoons": len(cartoons),
        "accuracy": correct / (len(photos) + len(cartoons)),
        "auc": auc(p_photo, p_cartoon),
        "photos_below_half": float((p_photo < 0.5).mean()),
        "cartoons_at_least_half": float((p_cartoon >= 0.5).mean()),
        "photo_max": float(p_photo.max()),
        "cartoon_min": float(p_cartoon.min()),
        "p_photo": named(photo_names, p_photo),
        "p_cartoon": named(cartoon_names, p_cartoon),
    }


def _bilateral(image: np.ndarray) -> np.ndarray:
    import cv2

    for _ in range(2):
        image = cv2.bilateralFilter(image, 9, 40, 7)
    return image


def _pale(image: np.ndarray) -> np.ndarray:
    x = image.astype(np.float32)
    grey = x.mean(axis=2, keepdims=True)
    return np.clip((grey + (x - grey) * 0.7) * 1.15, 0, 255).astype(np.uint8)


# name -> change: what a soft, slightly blurry GAN output may look like, applied to held-out images;
# "bilateral" smooths skin and flattens shading (a beauty filter), "pale" is 15 % brighter and 30 %
# less saturated, "washed" 40 % desaturated and lifted 40 % toward white: they move a photo toward
# the cartoons' look without drawing anything.
STRESSES = {
    "identity": lambda image: image,
    "blur_sigma_1": lambda image: blurred(image, 1.0),
    "blur_sigma_2": lambda image: blurred(image, 2.0),
    "blur_sigma_3": lambda image: blurred(image, 3.0),
    "downscaled_x0.5": lambda image: downscaled(image, 0.5),
    "downscaled_x0.25": lambda image: downscaled(image, 0.25),
    "jpeg_q30": lambda image: recompressed(image, 30),
    "bilateral": _bilateral,
    "pale": _pale,
    "washed": lambda image: washed(image, 0.4, 0.4),
}


def stress_figures(gauge: CartoonGauge, images: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """Per change in :data:`STRESSES`: mean P(cartoon) and the fraction >= 0.5 of the changed images."""
    figures = {}
    for name, change in STRESSES.items():
        values = scores(gauge, [change(image) for image in images])
        figures[name] = {"mean": float(values.mean()), "at_least_half": float((values >= 0.5).mean())}
    return figures
