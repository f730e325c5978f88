"""The generator matches photo2cartoon's architecture and loads the released checkpoint layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from p2c.models.generator import GeneratorConfig, ResnetGenerator
from p2c.models.weights import load_generator

DATA = Path(__file__).resolve().parents[1] / "data"


def test_full_generator_has_the_released_keys_and_shapes(full_generator: ResnetGenerator) -> None:
    expected = json.loads((DATA / "photo2cartoon_genA2B_shapes.json").read_text())
    ours = {name: list(tensor.shape) for name, tensor in full_generator.state_dict().items()}
    assert sorted(set(expected) - set(ours)) == []
    assert sorted(set(ours) - set(expected)) == []
    mismatched = {name: (ours[name], shape) for name, shape in expected.items() if ours[name] != shape}
    assert mismatched == {}


def test_released_checkpoint_layout_loads_strictly_with_identical_outputs(
    tmp_path: Path, full_generator: ResnetGenerator
) -> None:
    path = tmp_path / "photo2cartoon_weights.pt"
    torch.save(
        {"genA2B": full_generator.state_dict(), "genB2A": full_generator.state_dict(), "disGA": {}}, path
    )
    loaded = load_generator(path)
    assert loaded.config == GeneratorConfig(ngf=32, img_size=256, light=True)
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.inference_mode():
        assert torch.equal(loaded(x).image, full_generator(x).image)


def test_tiny_checkpoint_config_is_inferred_from_its_shapes(released_style_checkpoint: Path) -> None:
    loaded = load_generator(released_style_checkpoint)
    assert (loaded.config.ngf, loaded.config.light) == (8, True)


def test_other_key_selects_the_other_generator(released_style_checkpoint: Path) -> None:
    a2b = load_generator(released_style_checkpoint)
    b2a = load_generator(released_style_checkpoint, key="genB2A")
    assert not torch.equal(a2b.ConvBlock1[1].weight, b2a.ConvBlock1[1].weight)


def test_non_light_generator_img_size_is_inferred(tmp_path: Path) -> None:
    generator = ResnetGenerator(ngf=4, img_size=32, light=False)
    torch.save(generator.state_dict(), tmp_path / "bare.pt")
    assert load_generator(tmp_path / "bare.pt").config == GeneratorConfig(ngf=4, img_size=32, light=False)


@pytest.mark.parametrize(("field", "value"), [("ngf", 0), ("ngf", 30), ("img_size", 8), ("img_size", 100)])
def test_generator_config_rejects_bad_values(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=field):
        GeneratorConfig(**{field: value})
