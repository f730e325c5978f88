"""p2c's compact generator: the contract, and the size the model card promises."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from p2c.models.compact import CompactConfig, CompactGenerator
from p2c.models.generator import ResnetGenerator


def flops(module: torch.nn.Module, size: int = 256) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(torch.zeros(1, 3, size, size))
    return counter.get_total_flops()


def test_the_default_compact_generator_fits_its_budget() -> None:
    generator = CompactGenerator().eval()
    assert flops(generator) <= 1.5e9  # issue 17: at most 1.5 GFLOP a face at 256 px
    assert sum(p.numel() for p in generator.parameters()) <= 3_000_000
    assert flops(ResnetGenerator().eval()) >= 25 * flops(generator)


def test_it_keeps_the_contract_any_size_in_range_out() -> None:
    generator = CompactGenerator(CompactConfig(widths=(4, 8, 8), blocks=1)).eval()
    with torch.no_grad():
        out = generator(torch.rand(2, 3, 96, 96) * 2 - 1)
    assert out.image.shape == (2, 3, 96, 96)
    assert out.image.abs().max() <= 1.0
    assert out.cam_logit.shape == (2, 2)


@pytest.mark.parametrize("bad", [{"widths": (4, 8)}, {"img_size": 100}, {"blocks": 0}])
def test_a_bad_config_is_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        CompactConfig(**bad)
