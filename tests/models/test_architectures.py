"""Every architecture keeps the generator contract, and the registry names them."""

from __future__ import annotations

import pytest
import torch

from p2c.models import (
    ARCHITECTURES,
    DEFAULT_ARCH,
    CartoonOnly,
    CompactConfig,
    CompactGenerator,
    GeneratorConfig,
    ResnetGenerator,
    arch_of,
    build_generator,
    config_from_state_dict,
)
from p2c.models.architectures import arch_of_keys, config_from_dict, is_generator

TINY_CONFIGS = {
    "photo2cartoon": GeneratorConfig(ngf=8, img_size=64),
    "compact": CompactConfig(img_size=64, widths=(8, 16, 24), blocks=2, expand=2),
}


def test_the_registry_names_both_architectures_and_photo2cartoon_is_the_default() -> None:
    assert list(ARCHITECTURES) == ["photo2cartoon", "compact"]
    assert ARCHITECTURES["photo2cartoon"] == (ResnetGenerator, GeneratorConfig)
    assert ARCHITECTURES["compact"] == (CompactGenerator, CompactConfig)
    assert DEFAULT_ARCH == "photo2cartoon"
    assert (ResnetGenerator.arch, CompactGenerator.arch) == ("photo2cartoon", "compact")


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_architecture_keeps_the_contract(arch: str) -> None:
    generator = build_generator(arch, TINY_CONFIGS[arch]).eval()
    assert arch_of(generator) == arch_of(generator.config) == arch and is_generator(generator)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        image, cam_logit, heatmap = generator(x)
        alone = CartoonOnly(generator)(x)
    assert image.shape == x.shape and float(image.abs().max()) <= 1.0
    assert cam_logit.shape == (2, 2)  # what photo2cartoon's CAM loss reads
    assert heatmap.shape[:2] == (2, 1)
    assert torch.equal(alone, image)
    # The config inferred from the weights' shapes builds the same network.
    inferred = config_from_state_dict(generator.state_dict(), img_size=64)
    assert inferred == generator.config
    assert arch_of_keys(generator.state_dict()) == arch
    assert config_from_dict(arch, generator.config.to_dict()) == generator.config


def test_the_compact_generator_runs_at_sizes_other_than_its_own() -> None:
    generator = build_generator("compact", TINY_CONFIGS["compact"]).eval()
    assert generator.config.fixed_input_size is None
    with torch.inference_mode():
        assert generator(torch.zeros(1, 3, 96, 96)).image.shape == (1, 3, 96, 96)


def test_an_unknown_architecture_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="'stylegan'; expected one of photo2cartoon, compact"):
        build_generator("stylegan")


def test_a_config_of_another_architecture_is_refused() -> None:
    with pytest.raises(ValueError, match="compact generator takes a CompactConfig, got a GeneratorConfig"):
        build_generator("compact", GeneratorConfig())


def test_the_default_config_is_the_architectures_own() -> None:
    assert build_generator("compact").config == CompactConfig()
    assert build_generator("photo2cartoon").config == GeneratorConfig()
