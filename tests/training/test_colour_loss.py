"""The foreign-colour loss: a grey coat painted navy costs, a warmer or paler cartoon does not."""

from __future__ import annotations

import numpy as np
import torch

from p2c.training.blotches import blotch_shares
from p2c.training.colour_loss import blue_green_excess, foreign_colour_loss
from p2c.training.onesided import (
    OneSidedConfig,
    OneSidedNetworks,
    OneSidedWeights,
    generator_step,
    step_generator,
)

SKIN = (0.55, 0.15, -0.05)  # RGB in [-1, 1]: a light tan
GREY_COAT = (-0.6, -0.6, -0.58)
NAVY = (-0.78, -0.68, -0.45)


def portrait(coat: tuple[float, float, float] = GREY_COAT, size: int = 64) -> torch.Tensor:
    """1 x 3 x size x size: skin on top, a coat on the bottom third, in [-1, 1]."""
    image = torch.empty(1, 3, size, size)
    image[0, :, : 2 * size // 3] = torch.tensor(SKIN).view(3, 1, 1)
    image[0, :, 2 * size // 3 :] = torch.tensor(coat).view(3, 1, 1)
    return image


def to_uint8(image: torch.Tensor) -> np.ndarray:
    return ((image[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)


def test_the_excess_is_zero_for_skin_and_grey_and_positive_for_blue_and_green() -> None:
    colours = torch.tensor([SKIN, GREY_COAT, NAVY, (-0.2, 0.4, -0.3)]).view(1, 4, 3).permute(2, 0, 1)
    excess = blue_green_excess(colours.unsqueeze(0))[0, 0]
    assert excess[0] == 0 and excess[1] < 0.03
    assert excess[2] > 0.3 and excess[3] > 0.5


def test_a_grey_coat_turned_navy_costs_and_is_a_blotch() -> None:
    photo = portrait()
    cartoon = portrait(NAVY)
    assert foreign_colour_loss(photo, cartoon) > 0.05
    assert blotch_shares([to_uint8(photo)], [to_uint8(cartoon)])[0] > 0.3  # what the gate sees


def test_a_cartoon_that_is_paler_or_warmer_costs_nothing() -> None:
    photo = portrait()
    paler = photo * 0.5 + 0.5  # whiter skin, lighter coat: the style
    warmer = photo.clone()
    warmer[:, 0] += 0.2
    assert foreign_colour_loss(photo, photo) == 0
    assert foreign_colour_loss(photo, paler) == 0
    assert foreign_colour_loss(photo, warmer) == 0


def test_the_photos_own_blue_excuses_the_cartoon_nearby_but_not_far_away() -> None:
    photo = portrait(NAVY, size=256)  # a navy coat in the photo: the cartoon may keep it
    assert foreign_colour_loss(photo, photo) == 0
    shifted = photo.roll(-3, dims=2)  # the coat's edge drawn three pixels higher
    assert foreign_colour_loss(photo, shifted) == 0
    far = photo.roll(-24, dims=2)
    assert foreign_colour_loss(photo, far) > 0


def test_a_generator_step_with_the_loss_reports_it_and_pulls_the_blue_down() -> None:
    torch.manual_seed(0)
    from p2c.models.compact import CompactConfig

    config = OneSidedConfig(
        generator=CompactConfig(img_size=64, widths=(4, 8, 8), blocks=1, expand=2),
        disc_width=4,
        nce_patches=16,
        weights=OneSidedWeights(adv=0.0, nce=0.0, colour=100.0),
    )
    nets = OneSidedNetworks(config)
    with torch.no_grad():  # a generator that paints blue: its last layer's blue bias raised
        last = [m for m in nets.generator.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        last.bias[2] += 1.0
    g = torch.optim.Adam(nets.generator_parameters(), lr=3e-3)
    d = torch.optim.Adam(nets.discriminator_parameters(), lr=1e-3)
    photos = portrait().repeat(2, 1, 1, 1)
    first = generator_step(nets, photos, photos, g, d, step_generator(0, 0)).colour
    for step in range(1, 30):
        last_value = generator_step(nets, photos, photos, g, d, step_generator(0, step)).colour
    assert first > 0.01
    assert last_value < 0.5 * first
