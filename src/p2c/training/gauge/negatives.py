"""Images that are neither photos nor cartoons: what untrained generators make of photos.

A gauge fitted on photos against cartoons alone has never seen anything else, and an image unlike
both gets an arbitrary score: the review of the first fit found an untrained generator's pinkish
edge maps at P(cartoon) 0.5-0.66. The gauge judges generators, including untrained and half-trained
ones, so it is fitted with such outputs as "not a cartoon" (label 0) beside the photos.

:func:`untrained_outputs` runs randomly initialised generators of both of p2c's architectures
(photo2cartoon's ``ResnetGenerator``, the ``CompactGenerator``) on photos. Seeds start at 1000,
so the tests' random generators (seed 0) and the fit record's held-out ones (seeds 0-5) are unseen.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from p2c.training.dataset import to_tensor

__all__ = ["NEGATIVE_SEED", "untrained_generators", "untrained_outputs"]

NEGATIVE_SEED = 1000


def untrained_generators(count: int, seed: int = NEGATIVE_SEED) -> list[nn.Module]:
    """``count`` randomly initialised generators: two CompactGenerators, then a ResnetGenerator
    (ngf 8; it costs about 8x as much on a CPU), and again."""
    from p2c.models.compact import CompactGenerator
    from p2c.models.generator import ResnetGenerator

    generators: list[nn.Module] = []
    for index in range(count):
        torch.manual_seed(seed + index)
        if index % 3 == 2:
            generators.append(ResnetGenerator(ngf=8, img_size=256, light=True).eval())
        else:
            generators.append(CompactGenerator().eval())
    return generators


@torch.no_grad()
def untrained_outputs(
    photos: list[np.ndarray], generators: int, per_generator: int, seed: int = NEGATIVE_SEED
) -> list[np.ndarray]:
    """RGB uint8 outputs of ``generators`` untrained generators, each on ``per_generator`` photos."""
    rng = np.random.default_rng(seed)
    outputs = []
    for generator in untrained_generators(generators, seed):
        chosen = rng.choice(len(photos), size=min(per_generator, len(photos)), replace=False)
        for first in range(0, len(chosen), 8):
            batch = torch.stack([to_tensor(photos[int(i)]) for i in chosen[first : first + 8]])
            images = generator(batch)[0].clamp(-1, 1)
            array = ((images + 1.0) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
            outputs += list(array)
    return outputs
