"""The face's parts at their fixed places in an aligned crop: what part discriminators look at.

photo2cartoon's preprocessing levels the eyes and expands the landmark box by a fixed amount, so
in every crop, photo or cartoon, the eyes, brows and mouth sit in the same windows. Measured on 60
aligned trainA photos and 60 trainB cartoons (MediaPipe's 68 points in crop pixels at 256): brows
at y 97-102, eyes at y 116-128 and x 84-173, mouth at y 174-198 and x 103-152; the spread across
faces is 1-4 px vertically and 7-15 px horizontally (head turns). The windows below hold those
with a margin for the spread and for the training crops' random shift (up to 15 px).

Portrait-drawing GANs judge such windows with discriminators of their own: that is how drawn eyes
with irises and highlights, and drawn lips, are learned from unpaired data.
"""

from __future__ import annotations

import torch

__all__ = ["PART_WINDOWS", "part_windows"]

# name -> (top, left, height, width) in a 256 x 256 crop
PART_WINDOWS: dict[str, tuple[int, int, int, int]] = {
    "eyes": (80, 52, 64, 152),  # both brows and both eyes
    "mouth": (160, 80, 56, 96),
}


def part_windows(images: torch.Tensor, name: str) -> torch.Tensor:
    """The ``name`` window of each N x C x S x S image, scaled from 256 px to S."""
    top, left, height, width = (round(v * images.shape[-1] / 256) for v in PART_WINDOWS[name])
    return images[..., top : top + height, left : left + width]
