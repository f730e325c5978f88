"""Blotches: patches of a colour that skin and hair never take, which a cartoon has and its photo had not.

The shipped model paints dark blue-black patches on hair and bright blue ones on dark collars. A
pixel of a cartoon is a blotch when it is

- in the head: a non-white pixel of the photo crop (the aligner whitens everything outside the
  person, so this is head, neck and shoulders);
- saturated green to blue (:class:`BlotchColours`): hue 70-260 degrees, saturation and value
  over floors. Skin and hair are red to yellow (hue under 50 degrees), so only clothes, eyes and
  accessories take these colours in the photos and cartoons of the data;
- where the photo, dilated by a few pixels, was not already near that colour (a looser range), so
  a blue shirt or blue eyes the photo had are not counted;

or, second kind, **olive skin** (:class:`OliveSkin`): skin in the photo (YCrCb's skin range, red
to orange) that the cartoon painted saturated yellow to yellow-green (hue 40-80 degrees). That is
the shadowed cheek of video light; a colour rule alone cannot see it, since blonde hair has the
same hue, so it is judged against the photo's own pixel: skin there, never yellow. A photo
measured against itself scores 0 on testA and on the clips' frames.

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
    "OliveSkin",
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


@dataclass(frozen=True)
class OliveSkin:
    """Skin turned olive: the photo pixel skin (YCrCb Cr and Cb ranges, OpenCV hue at most
    ``photo_hue_max`` or at least ``photo_hue_wrap``: red to orange), the cartoon pixel hue
    ``hue_min``-``hue_max`` (40-80 degrees) over saturation and value floors."""

    cr: tuple[int, int] = (135, 180)
    cb: tuple[int, int] = (85, 135)
    photo_hue_max: int = 17
    photo_hue_wrap: int = 170
    hue_min: int = 20
    hue_max: int = 40
    saturation_min: int = 60
    value_min: int = 60


def olive_skin(photo: np.ndarray, cartoon: np.ndarray, olive: OliveSkin = OliveSkin()) -> np.ndarray:
    """H x W bools: where the photo's skin became yellow to yellow-green in the cartoon."""
    import cv2

    ycc = cv2.cvtColor(photo, cv2.COLOR_RGB2YCrCb)
    hue = cv2.cvtColor(photo, cv2.COLOR_RGB2HSV)[..., 0]
    skin = (
        (ycc[..., 1] >= olive.cr[0])
        & (ycc[..., 1] <= olive.cr[1])
        & (ycc[..., 2] >= olive.cb[0])
        & (ycc[..., 2] <= olive.cb[1])
        & ((hue <= olive.photo_hue_max) | (hue >= olive.photo_hue_wrap))
    )
    painted = _in_range(
        cv2.cvtColor(cartoon, cv2.COLOR_RGB2HSV),
        (olive.hue_min, olive.hue_max),
        olive.saturation_min,
        olive.value_min,
    )
    return skin & painted


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
    """H x W bools: the cartoon's blotch pixels (both RGB uint8 of one size, the photo whitened):
    green to blue the photo had not, or the photo's skin turned olive."""
    if photo.shape != cartoon.shape:
        raise ValueError(f"photo and cartoon must have one shape, got {photo.shape} and {cartoon.shape}")
    foreign = blotch_colour(cartoon, colours) & ~_photo_had_it(photo, colours)
    return head_mask(photo) & (foreign | olive_skin(photo, cartoon))


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
