"""Blotches: patches of a colour that skin and hair never take, which a cartoon has and its photo had not.

The shipped model paints dark blue-black patches on hair and bright blue ones on dark collars. A
pixel of a cartoon is a blotch when it is

- in the head: a non-white pixel of the photo crop (the aligner whitens everything outside the
  person, so this is head, neck and shoulders);
- saturated green to blue (:class:`BlotchColours`): hue 70-260 degrees, saturation and value
  over floors. Skin and hair are red to yellow (hue under 50 degrees), so only clothes, eyes and
  accessories take these colours in the photos and cartoons of the data;
- where the photo, dilated by a few pixels, was not already near that colour (a looser range), so
  a blue shirt or blue eyes the photo had are not counted.

A cartoon's blotch share is the blotch pixels over the head's pixels; a cartoon "has blotches"
over :data:`BLOTCH_SHARE_LIMIT`. docs/default-model.md ("Style distance and blotches") shows how
the thresholds were checked on the photos and cartoons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BLOTCH_SHARE_LIMIT",
    "WHITE",
    "BlotchColours",
    "blotch_mask",
    "blotch_shares",
    "head_mask",
]

WHITE = 240  # a pixel with every channel at least this is the crop's whitened background
BLOTCH_SHARE_LIMIT = 0.01  # a cartoon with more of its head in blotches than this "has blotches"


@dataclass(frozen=True)
class BlotchColours:
    """The blotch colours in OpenCV's HSV (hue 0-180 = 0-360 degrees; saturation, value 0-255),
    and the looser range a photo pixel must be in to excuse a blotch near it.

    Hue 35-130 is 70-260 degrees: yellow-green through green and cyan to blue. The floors keep out
    grey and near-black pixels, whose hue is noise (dark hair has a faint blue cast in many photos).
    """

    hue_min: int = 35
    hue_max: int = 130
    saturation_min: int = 80
    value_min: int = 40
    photo_hue_margin: int = 5
    photo_saturation_min: int = 40
    photo_value_min: int = 20
    dilation: int = 4  # pixels: how far the photo's own such colour excuses the cartoon's

    def __post_init__(self) -> None:
        if not 0 <= self.hue_min <= self.hue_max <= 180:
            raise ValueError(f"BlotchColours needs 0 <= hue_min <= hue_max <= 180, got {self}")
        if self.dilation < 0:
            raise ValueError(f"BlotchColours.dilation must be >= 0, got {self.dilation}")


def head_mask(crop: np.ndarray, white: int = WHITE) -> np.ndarray:
    """H x W bools: the pixels of an RGB uint8 crop that are not the whitened background."""
    return crop.min(axis=2) < white


def _in_range(hsv: np.ndarray, hue: tuple[int, int], saturation: int, value: int) -> np.ndarray:
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    return (h >= hue[0]) & (h <= hue[1]) & (s >= saturation) & (v >= value)


def blotch_colour(rgb: np.ndarray, colours: BlotchColours = BlotchColours()) -> np.ndarray:
    """H x W bools: the pixels of an RGB uint8 image in the blotch colours."""
    import cv2

    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    return _in_range(hsv, (colours.hue_min, colours.hue_max), colours.saturation_min, colours.value_min)


def _photo_had_it(photo: np.ndarray, colours: BlotchColours) -> np.ndarray:
    import cv2

    hsv = cv2.cvtColor(photo, cv2.COLOR_RGB2HSV)
    margin = colours.photo_hue_margin
    near = _in_range(
        hsv,
        (colours.hue_min - margin, colours.hue_max + margin),
        colours.photo_saturation_min,
        colours.photo_value_min,
    )
    if colours.dilation == 0:
        return near
    size = 2 * colours.dilation + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    return cv2.dilate(near.astype(np.uint8), kernel) > 0


def blotch_mask(
    photo: np.ndarray, cartoon: np.ndarray, colours: BlotchColours = BlotchColours()
) -> np.ndarray:
    """H x W bools: the cartoon's blotch pixels (both RGB uint8 of one size, the photo whitened)."""
    if photo.shape != cartoon.shape:
        raise ValueError(f"photo and cartoon must have one shape, got {photo.shape} and {cartoon.shape}")
    return head_mask(photo) & blotch_colour(cartoon, colours) & ~_photo_had_it(photo, colours)


def blotch_shares(
    photos: Sequence[np.ndarray], cartoons: Sequence[np.ndarray], colours: BlotchColours = BlotchColours()
) -> np.ndarray:
    """Per pair, the share of the photo's head pixels that are blotches in its cartoon (0 if no head).

    Cartoons of another size than their photos are resized to the photo's.
    """
    import cv2

    if len(photos) != len(cartoons):
        raise ValueError(f"need one cartoon per photo, got {len(photos)} photos and {len(cartoons)} cartoons")
    shares = np.zeros(len(photos))
    for index, (photo, cartoon) in enumerate(zip(photos, cartoons, strict=True)):
        if cartoon.shape != photo.shape:
            cartoon = cv2.resize(cartoon, photo.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        head = int(head_mask(photo).sum())
        if head:
            shares[index] = blotch_mask(photo, cartoon, colours).sum() / head
    return shares
