"""The foreign-colour loss: a cartoon may not turn green to blue where its photo was not.

On video light the adversarial game keeps painting dark grey coats navy and shadowed cheeks
olive (:mod:`p2c.training.blotches` measures it). The cartoons of the data never ask for it: skin
and hair are red to yellow, and photo2cartoon's cartoons keep the clothes' colours. AnimeGAN ties
the whole chroma of its output to the photo (a YUV colour loss); that would also hold the skin to
the photo's tan, which this style whitens. This loss only holds the one direction the blotches
take: a pixel's green or blue rising above its red further than the photo's did nearby.

In RGB, ``max(G, B) > R`` is exactly hue 60-300 degrees, the blotch colours (70-260) with
yellow-green and magenta at the edges; skin, hair, lips and a grey pixel have ``R >= max(G, B)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["COLOUR_MARGIN", "EXCUSE_RADIUS", "blue_green_excess", "foreign_colour_loss"]

COLOUR_MARGIN = 0.03  # in [-1, 1] units: 4 of 255, a tint no one sees
EXCUSE_RADIUS = 4  # pixels at 256 px: the photo's own green or blue this near excuses the cartoon's


def blue_green_excess(images: torch.Tensor) -> torch.Tensor:
    """N x H x W: how far green or blue rises above red, per pixel of N x 3 x H x W RGB images."""
    red, green, blue = images.unbind(1)
    return F.relu(torch.maximum(green, blue) - red)


def foreign_colour_loss(
    photos: torch.Tensor,
    cartoons: torch.Tensor,
    margin: float = COLOUR_MARGIN,
    radius: int = EXCUSE_RADIUS,
) -> torch.Tensor:
    """Mean over pixels of the cartoon's green-to-blue excess beyond the photo's (its largest within
    ``radius`` pixels, scaled with the image) and ``margin``; 0 where the cartoon is as warm."""
    scaled = max(round(radius * photos.shape[-1] / 256), 0)
    allowed = blue_green_excess(photos)
    if scaled:
        allowed = F.max_pool2d(allowed.unsqueeze(1), 2 * scaled + 1, stride=1, padding=scaled).squeeze(1)
    return F.relu(blue_green_excess(cartoons) - allowed - margin).mean()
