"""The six networks photo2cartoon trains together, under the released checkpoint's names.

The two generators are photo2cartoon's (``ngf`` = ``ch``) or of another architecture
(:mod:`p2c.models.architectures`, at its default config and the run's image size); the four
discriminators are photo2cartoon's, ``ch`` wide, whichever generators they judge.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from p2c.errors import WeightsError
from p2c.models.architectures import (
    DEFAULT_ARCH,
    Generator,
    ModelConfig,
    build_generator,
    config_from_dict,
)
from p2c.models.generator import GeneratorConfig
from p2c.training.discriminator import (
    GLOBAL_LAYERS,
    LOCAL_LAYERS,
    Discriminator,
    clip_generator_,
    mixing_parameters,
)

__all__ = ["DISCRIMINATOR_KEYS", "GENERATOR_KEYS", "NETWORK_KEYS", "CartoonGan", "training_generator_config"]

GENERATOR_KEYS = ("genA2B", "genB2A")
DISCRIMINATOR_KEYS = ("disGA", "disGB", "disLA", "disLB")
NETWORK_KEYS = GENERATOR_KEYS + DISCRIMINATOR_KEYS


def training_generator_config(arch: str, ch: int, img_size: int, light: bool = True) -> ModelConfig:
    """The generators' config for p2c-train's shape options: photo2cartoon's at ``ngf=ch``, any
    other architecture's default config at ``img_size`` (``ch`` and ``light`` are photo2cartoon's)."""
    if arch == DEFAULT_ARCH:
        return GeneratorConfig(ngf=ch, img_size=img_size, light=light)
    return config_from_dict(arch, {"img_size": img_size})


class CartoonGan(nn.Module):
    """A->B and B->A generators; global (G) and local (L) discriminators for domains A and B."""

    genA2B: Generator  # noqa: N815 - the released checkpoint's names
    genB2A: Generator  # noqa: N815

    def __init__(
        self, ch: int = 32, img_size: int = 256, light: bool = True, arch: str = DEFAULT_ARCH
    ) -> None:
        super().__init__()
        self.arch = arch
        config = training_generator_config(arch, ch, img_size, light)
        self.genA2B = build_generator(arch, config)
        self.genB2A = build_generator(arch, config)
        self.disGA = Discriminator(3, ch, GLOBAL_LAYERS)
        self.disGB = Discriminator(3, ch, GLOBAL_LAYERS)
        self.disLA = Discriminator(3, ch, LOCAL_LAYERS)
        self.disLB = Discriminator(3, ch, LOCAL_LAYERS)

    def network(self, key: str) -> nn.Module:
        return getattr(self, key)

    def generator_parameters(self) -> list[nn.Parameter]:
        return [p for key in GENERATOR_KEYS for p in self.network(key).parameters()]

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return [p for key in DISCRIMINATOR_KEYS for p in self.network(key).parameters()]

    def clip_(self) -> None:
        for key in GENERATOR_KEYS:
            clip_generator_(self.network(key))

    def mixing_parameters(self) -> list[nn.Parameter]:
        """Both generators' rho, w_gamma and w_beta: what :meth:`clip_` clamps into [0, 1] (none for
        an architecture without LIN mixing weights, such as the compact one)."""
        return [p for key in GENERATOR_KEYS for p in mixing_parameters(self.network(key))]

    def network_state_dicts(self) -> dict[str, dict[str, torch.Tensor]]:
        """``{"genA2B": state_dict, ...}``: the released checkpoint's layout."""
        return {key: self.network(key).state_dict() for key in NETWORK_KEYS}

    def load_network_state_dicts(
        self, states: Mapping[str, Any], source: str, generators_only: bool = False
    ) -> None:
        """Load the six (or two) state dicts; a missing key or a shape mismatch is a WeightsError."""
        keys = GENERATOR_KEYS if generators_only else NETWORK_KEYS
        missing = [key for key in keys if key not in states]
        if missing:
            raise WeightsError(
                f"{source} lacks {', '.join(missing)}; --pretrained needs photo2cartoon_weights.pt "
                "(six networks) or a p2c-train checkpoint"
            )
        for key in keys:
            try:
                self.network(key).load_state_dict(states[key], strict=True)
            except (RuntimeError, TypeError, AttributeError) as error:
                first_line = (
                    str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                )
                raise WeightsError(
                    f"{source}: {key} does not fit networks with these --arch/--ch/--img-size options "
                    f"({first_line})"
                ) from error
