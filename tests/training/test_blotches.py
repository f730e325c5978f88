"""Blotches: a cartoon's patches of a colour skin and hair never take, which its photo had not."""

from __future__ import annotations

import numpy as np
import pytest

from p2c.training.blotches import (
    BLOTCH_SHARE_LIMIT,
    BlotchColours,
    blotch_mask,
    blotch_shares,
    head_mask,
    olive_skin,
)

SKIN = (224, 172, 150)  # RGB
GREEN = (40, 170, 60)
BLUE = (30, 60, 170)
WHITE = (255, 255, 255)


def _head_on_white(size: int = 64) -> np.ndarray:
    """A skin-coloured square head (rows and columns 16-47) on the crop's white background."""
    image = np.full((size, size, 3), WHITE, np.uint8)
    image[16:48, 16:48] = SKIN
    return image


def test_a_green_patch_on_skin_is_a_blotch() -> None:
    photo = _head_on_white()
    cartoon = photo.copy()
    cartoon[20:28, 20:28] = GREEN  # 64 of the head's 1024 pixels
    assert blotch_mask(photo, cartoon).sum() == 64
    (share,) = blotch_shares([photo], [cartoon])
    assert share == pytest.approx(64 / 1024) and share > BLOTCH_SHARE_LIMIT


def test_the_same_patch_where_the_photo_was_already_blue_is_not() -> None:
    photo = _head_on_white()
    photo[20:28, 20:28] = BLUE  # a blue shirt or blue eyes in the photo
    cartoon = photo.copy()
    cartoon[20:28, 20:28] = GREEN
    assert blotch_mask(photo, cartoon).sum() == 0
    # Slightly larger than the photo's blue: the rim is excused by the dilation, not further out.
    cartoon[18:30, 18:30] = GREEN
    assert blotch_mask(photo, cartoon).sum() == 0
    cartoon[16:40, 16:40] = GREEN
    assert blotch_mask(photo, cartoon).sum() > 0


def test_the_white_background_never_counts() -> None:
    photo = _head_on_white()
    cartoon = np.full_like(photo, GREEN)  # the whole cartoon green, background too
    mask = blotch_mask(photo, cartoon)
    assert mask.sum() == 1024 and not mask[:16].any() and not mask[:, 48:].any()
    assert head_mask(photo).sum() == 1024
    blank = np.full_like(photo, WHITE)  # no head at all: nothing to count
    assert blotch_shares([blank], [cartoon])[0] == 0.0


def test_skin_hair_and_dark_pixels_are_not_blotch_colours() -> None:
    photo = _head_on_white()
    cartoon = photo.copy()
    cartoon[16:24, 16:48] = (70, 45, 30)  # brown hair
    cartoon[24:32, 16:48] = (230, 200, 120)  # blonde, where the photo had blonde hair
    photo[24:32, 16:48] = (200, 170, 100)
    cartoon[32:40, 16:48] = (20, 22, 30)  # near-black with a blue cast: its hue is noise
    cartoon[40:48, 16:48] = (235, 190, 190)  # pale pink skin
    assert blotch_mask(photo, cartoon).sum() == 0


def test_skin_turned_olive_is_a_blotch_and_yellow_hair_kept_yellow_is_not() -> None:
    photo = _head_on_white()
    photo[16:24, 16:48] = (200, 170, 100)  # blonde hair in the photo
    photo[32:48, 16:48] = (150, 100, 80)  # a shadowed cheek: darker, still red to orange
    cartoon = photo.copy()
    cartoon[16:24, 16:48] = (235, 215, 130)  # the hair drawn yellow: the photo's own colour
    cartoon[32:40, 16:48] = (190, 190, 90)  # the shadowed cheek painted yellow-green
    mask = blotch_mask(photo, cartoon)
    assert mask[32:40, 16:48].all() and not mask[16:24].any() and not mask[40:48].any()
    assert olive_skin(photo, photo).sum() == 0  # a photo against itself


def test_cartoons_of_another_size_are_compared_at_the_photo_size() -> None:
    photo = _head_on_white(64)
    cartoon = np.full((32, 32, 3), GREEN, np.uint8)
    assert blotch_shares([photo], [cartoon])[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one shape"):
        blotch_mask(photo, cartoon)
    with pytest.raises(ValueError, match="hue_min"):
        BlotchColours(hue_min=140, hue_max=130)


def test_real_crops_have_no_blotches_of_their_own_and_a_painted_patch_is_one(prepared: dict) -> None:
    from p2c.training.evaluation import load_crops

    photos = load_crops(prepared["data"] / "trainA")[1]
    assert not blotch_shares(photos, photos).any()  # a "cartoon" that keeps every colour
    painted = [photo.copy() for photo in photos]
    for image in painted:
        image[96:128, 112:144] = BLUE  # mid-face, 1,024 pixels: at least 1 % of any head here
    shares = blotch_shares(photos, painted)
    assert (shares > BLOTCH_SHARE_LIMIT).all() and (shares < 0.1).all()
