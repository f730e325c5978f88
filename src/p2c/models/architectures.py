"""The generator architectures p2c knows, by the name saved beside their weights.

Every architecture keeps one contract, so inference, export and training take any of them:

- a module class whose ``forward`` maps N x 3 x S x S RGB in [-1, 1] to a
  :class:`~p2c.models.generator.GeneratorOutput` (``image`` in [-1, 1], ``cam_logit`` N x 2 for
  photo2cartoon's CAM loss, ``heatmap``), built by ``from_config(config)`` and holding it as
  ``.config``;
- class attributes ``arch`` (its name here) and ``probe_key`` (a state-dict key that every state
  dict of this architecture holds and no other's: how a file is told apart), and a static
  ``config_from_state_dict(state, img_size)`` that infers the config from the weights' shapes;
- a frozen config dataclass with ``img_size``, ``fixed_input_size`` (None when any size runs),
  ``to_dict()`` (what the JSON sidecar stores) and a constructor that takes that dict back.

Adding one is its own module plus one line in :data:`ARCHITECTURES` (and in the two aliases).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

from torch import nn

from p2c.models.compact import CompactConfig, CompactGenerator
from p2c.models.generator import PHOTO2CARTOON_ARCH, GeneratorConfig, ResnetGenerator

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_ARCH",
    "Generator",
    "ModelConfig",
    "arch_of",
    "arch_of_keys",
    "build_generator",
    "config_from_dict",
    "describe_config",
    "is_generator",
]

Generator: TypeAlias = ResnetGenerator | CompactGenerator
ModelConfig: TypeAlias = GeneratorConfig | CompactConfig

ARCHITECTURES: dict[str, tuple[type[Generator], type[ModelConfig]]] = {
    PHOTO2CARTOON_ARCH: (ResnetGenerator, GeneratorConfig),
    CompactGenerator.arch: (CompactGenerator, CompactConfig),
}
# What a file that names no architecture holds (every file p2c wrote before architectures had names).
DEFAULT_ARCH = PHOTO2CARTOON_ARCH


def _entry(arch: str) -> tuple[type[Generator], type[ModelConfig]]:
    if arch not in ARCHITECTURES:
        raise ValueError(
            f"unknown generator architecture {arch!r}; expected one of {', '.join(ARCHITECTURES)}"
        )
    return ARCHITECTURES[arch]


def build_generator(arch: str, config: ModelConfig | None = None) -> Generator:
    """A new generator of ``arch`` (random weights, training mode) for ``config`` (default: the
    architecture's default config). ValueError for an unknown name or a config of another kind."""
    module_class, config_class = _entry(arch)
    config = config if config is not None else config_class()
    if not isinstance(config, config_class):
        raise ValueError(
            f"the {arch} generator takes a {config_class.__name__}, got a {type(config).__name__}"
        )
    return module_class.from_config(config)  # type: ignore[arg-type]


def config_from_dict(arch: str, values: Mapping[str, Any]) -> ModelConfig:
    """The config of ``arch`` from what ``to_dict()`` wrote (ValueError or TypeError when it does not fit)."""
    return _entry(arch)[1](**values)


def arch_of(item: nn.Module | ModelConfig) -> str:
    """The architecture name of a generator module or config (ValueError for anything else)."""
    for arch, (module_class, config_class) in ARCHITECTURES.items():
        if isinstance(item, (module_class, config_class)):
            return arch
    raise ValueError(f"{type(item).__name__} is not a generator of a known architecture")


def arch_of_keys(keys: Iterable[str]) -> str | None:
    """The architecture whose probe key is among a state dict's ``keys`` (a state dict itself will do),
    or None when they are no known generator's."""
    names = set(keys)
    for arch, (module_class, _) in ARCHITECTURES.items():
        if module_class.probe_key in names:
            return arch
    return None


def is_generator(module: object) -> bool:
    """Whether ``module`` is a generator of a known architecture."""
    return isinstance(module, tuple(module_class for module_class, _ in ARCHITECTURES.values()))


def describe_config(config: ModelConfig) -> str:
    """``photo2cartoon (ngf=32, img_size=256, light=True)``: for messages."""
    values = ", ".join(f"{key}={value}" for key, value in config.to_dict().items())
    return f"{arch_of(config)} ({values})"
