"""Style distance: KID to the cartoon set, on hand-made features that see lines, flat regions and layout.

KID on :class:`~p2c.training.metrics.StyleFeatures` (colour and random-filter texture statistics)
lets a bleached, flattened photo pass for a cartoon. These features look at what a drawing has and
a photo has not, each block in one unit, on the 256x256 crop (numpy and OpenCV only: the same on
every machine, some 30 ms a crop on one core):

- ``layout``: oriented-gradient histograms (HOG, 9 orientations, 16 px cells, 2x2-cell blocks) of
  the grey face at 128 px: where the outline, eyes, brows and mouth are, and how they are drawn;
- ``colour``: Lab statistics of the head (mean, std, quantiles) and the mean Lab of a 4x4 grid;
- ``palette``: a hue x saturation histogram of the head;
- ``lines``: edge (Canny) and dark-line (black-hat) density of the head and on a 4x4 grid;
- ``strength``: how strong the gradients, dark lines and fine detail are (grey levels);
- ``flatness``: the share of the head with almost no gradient or local variance, and on a grid.

Each feature is standardised with the cartoon set's mean and standard deviation (a deviation at
least half the block's median, so a feature the cartoons never vary saturates instead of
exploding), clipped at ``Z_CLIP`` and weighted so every block counts the same in the kernel. The
distance is then the unbiased KID (:func:`~p2c.training.metrics.kernel_inception_distance`) to
the standardised cartoon set: about 0 for more cartoons of the set; the calibration (real
cartoons, photos, crude OpenCV stylisations, the models) is in docs/default-model.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from p2c.training.blotches import head_mask
from p2c.training.metrics import kernel_inception_distance

__all__ = [
    "BLOCKS",
    "CALIBRATION",
    "StyleDistance",
    "StyleReference",
    "calibration_line",
    "load_calibration",
    "style_features",
]

# What recipes/style_calibration.py measured against photo2cartoon's cartoons (package data).
CALIBRATION = Path(__file__).with_name("style_calibration.json")

BLOCKS = ("layout", "colour", "palette", "lines", "strength", "flatness")
SIZE = 256  # features are taken on crops of this size
LAYOUT_SIZE = 128  # HOG on the grey face at this size: 8x8 cells of 16 px
GRID = 4  # the coarse grid of the layout statistics
Z_CLIP = 5.0  # standard deviations: as far from the cartoons as a feature counts
SCALE_FLOOR = 0.5  # of the block's median standard deviation
GRADIENT_STEPS = (1, 2, 4, 8, 16)  # grey levels per pixel: "almost no gradient" thresholds
DEVIATION_STEPS = (1, 2, 4, 8)  # grey levels: "almost no local variance" thresholds
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@cache
def _hog() -> Any:
    import cv2

    cell = LAYOUT_SIZE // 8
    return cv2.HOGDescriptor((LAYOUT_SIZE, LAYOUT_SIZE), (2 * cell, 2 * cell), (cell, cell), (cell, cell), 9)


def _grid_means(values: np.ndarray) -> np.ndarray:
    """Mean of each cell of a GRID x GRID grid over an H x W (x C) array, flattened."""
    height, width = values.shape[:2]
    cells = values.reshape(GRID, height // GRID, GRID, width // GRID, -1)
    return cells.mean(axis=(1, 3)).ravel()


def _image_features(rgb: np.ndarray) -> dict[str, np.ndarray]:
    import cv2

    if rgb.shape[:2] != (SIZE, SIZE):
        rgb = cv2.resize(rgb, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    head = head_mask(rgb)
    if head.sum() < 16:  # an all-white image: measure the whole of it
        head = np.ones_like(head)

    layout = _hog().compute(cv2.resize(grey, (LAYOUT_SIZE, LAYOUT_SIZE), interpolation=cv2.INTER_AREA))

    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab_head = lab[head]
    small_lab = cv2.resize(lab, (SIZE // 4, SIZE // 4), interpolation=cv2.INTER_AREA)
    colour = [
        lab_head.mean(0),
        lab_head.std(0),
        np.quantile(lab_head, QUANTILES, axis=0),
        _grid_means(small_lab),
    ]

    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[head]
    palette, _, _ = np.histogram2d(hsv[:, 0], hsv[:, 1], bins=(6, 4), range=((0, 180), (0, 256)))

    level = grey.astype(np.float32)
    gradient = np.hypot(cv2.Sobel(level, cv2.CV_32F, 1, 0), cv2.Sobel(level, cv2.CV_32F, 0, 1)) / 8.0
    edges = cv2.Canny(grey, 50, 150) > 0
    # Black-hat: how much darker a pixel is than its closing, i.e. thin dark strokes (drawn lines).
    ellipse = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    strokes = cv2.morphologyEx(grey, cv2.MORPH_BLACKHAT, ellipse).astype(np.float32)
    lines = [
        [edges[head].mean()],
        _grid_means(edges.astype(np.float32)),
        [(strokes[head] > t).mean() for t in (10, 25, 50)],
        _grid_means((strokes > 25).astype(np.float32)),
    ]
    mean = cv2.blur(level, (5, 5))
    deviation = np.sqrt(np.maximum(cv2.blur(level * level, (5, 5)) - mean * mean, 0.0))[head]
    detail = np.abs(cv2.Laplacian(level, cv2.CV_32F))[head]
    strength = [
        np.quantile(gradient[head], (0.5, 0.75, 0.9, 0.95, 0.99)),
        [strokes[head].mean(), detail.mean(), np.quantile(detail, 0.9)],
        np.quantile(deviation, (0.25, 0.5, 0.75)),
    ]
    flatness = [
        [(gradient[head] < t).mean() for t in GRADIENT_STEPS],
        [(deviation < t).mean() for t in DEVIATION_STEPS],
        _grid_means((gradient < 4).astype(np.float32)),
    ]
    blocks = {
        "layout": [layout],
        "colour": colour,
        "palette": [palette / len(hsv)],
        "lines": lines,
        "strength": strength,
        "flatness": flatness,
    }
    return {name: np.concatenate([np.ravel(part) for part in parts]) for name, parts in blocks.items()}


def style_features(images: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Per block, the N x D features of RGB uint8 images (any size; taken at 256x256)."""
    if not len(images):
        raise ValueError("style features need at least one image")
    per_image = [_image_features(np.ascontiguousarray(image)) for image in images]
    return {name: np.stack([f[name] for f in per_image]).astype(np.float64) for name in BLOCKS}


@dataclass(frozen=True)
class StyleDistance:
    """The style distance of a set of images (KID on every block) and each block's own KID."""

    distance: float
    blocks: dict[str, float]
    images: int


class StyleReference:
    """The cartoon set, standardised: what style distances are measured against."""

    def __init__(self, cartoons: Sequence[np.ndarray]) -> None:
        if len(cartoons) < 2:
            raise ValueError(f"a style reference needs at least 2 cartoons, got {len(cartoons)}")
        self._fit(style_features(cartoons))

    @classmethod
    def from_features(cls, features: dict[str, np.ndarray]) -> StyleReference:
        """The reference of cartoons whose :func:`style_features` are given (at least 2)."""
        count = len(features[BLOCKS[0]])
        if count < 2:
            raise ValueError(f"a style reference needs at least 2 cartoons, got {count}")
        reference = cls.__new__(cls)
        reference._fit(features)
        return reference

    def _fit(self, features: dict[str, np.ndarray]) -> None:
        self.centre = {name: values.mean(axis=0) for name, values in features.items()}
        self.scale: dict[str, np.ndarray] = {}
        for name, values in features.items():
            deviation = values.std(axis=0)
            self.scale[name] = np.maximum(deviation, SCALE_FLOOR * np.median(deviation) + 1e-9)
        self.cartoons = len(features[BLOCKS[0]])
        self.standardised = self.standardise(features)

    def standardise(self, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per block, the features' z-scores against the cartoons, clipped at ``Z_CLIP``."""
        return {
            name: np.clip((features[name] - self.centre[name]) / self.scale[name], -Z_CLIP, Z_CLIP)
            for name in BLOCKS
        }

    def measure_features(self, features: dict[str, np.ndarray]) -> StyleDistance:
        """The style distance of images whose :func:`style_features` are given."""
        mine = self.standardise(features)
        blocks = {name: _kid(mine[name], self.standardised[name]) for name in BLOCKS}
        distance = _kid(_joined(mine), _joined(self.standardised))
        return StyleDistance(distance=distance, blocks=blocks, images=len(features[BLOCKS[0]]))

    def measure(self, images: Sequence[np.ndarray]) -> StyleDistance:
        """The style distance of RGB uint8 images (at least 2) to the cartoon set."""
        if len(images) < 2:
            raise ValueError(f"a style distance needs at least 2 images, got {len(images)}")
        return self.measure_features(style_features(images))


def _joined(blocks: dict[str, np.ndarray]) -> np.ndarray:
    """The blocks side by side, each divided by the square root of its share of the dimensions, so
    that the kernel's mean dot product is the mean over blocks of each block's."""
    total = sum(values.shape[1] for values in blocks.values())
    return np.concatenate(
        [values * np.sqrt(total / (len(blocks) * values.shape[1])) for values in blocks.values()], axis=1
    )


def _kid(x: np.ndarray, y: np.ndarray) -> float:
    return kernel_inception_distance(torch.from_numpy(x), torch.from_numpy(y), standardise=False)


def load_calibration(path: Path = CALIBRATION) -> dict[str, Any] | None:
    """The style distance's calibration (recipes/style_calibration.py), or None where none ships."""
    import json

    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def calibration_line(calibration: dict[str, Any]) -> str:
    """One sentence: where real cartoons, photos, crude stylisations and the models land."""
    figures = "; ".join(f"{name} {value:.2f}" for name, value in calibration["style_distance"].items())
    return (
        f"Style distance calibration (against {calibration['reference']}; {calibration['measured']}): "
        f'{figures}. docs/default-model.md, "Style distance and blotches", says how it was measured.'
    )
