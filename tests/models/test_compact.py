"""p2c's compact generator: the contract, and the size the model card promises."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from p2c.models.compact import CompactConfig, CompactGenerator, with_sharpen_amount
from p2c.models.generator import ResnetGenerator
from p2c.models.weights import config_from_state_dict

TINY = {"widths": (4, 8, 8), "blocks": 1}


def randomised(generator: CompactGenerator) -> CompactGenerator:
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in generator.parameters():
            parameter.normal_(0.0, 0.2)
    return generator.eval()


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


@pytest.mark.parametrize(
    "output", [{"head": "shuffle"}, {"sharpen": True}, {"head": "shuffle", "sharpen": True}]
)
def test_the_output_stages_keep_the_contract_and_the_budget(output: dict) -> None:
    generator = CompactGenerator(CompactConfig(**output)).eval()
    assert flops(generator) <= 1.02 * flops(CompactGenerator().eval())
    with torch.no_grad():
        out = randomised(generator)(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert out.image.shape == (2, 3, 64, 64)
    assert out.image.abs().max() <= 1.0
    # a file of either stage is recognised as what it is
    assert config_from_state_dict(generator.state_dict()) == CompactConfig(**output)


def test_a_bilinear_state_continues_in_the_shuffle_head_as_the_same_cartoon() -> None:
    bilinear = randomised(CompactGenerator(CompactConfig(**TINY)))
    shuffle = CompactGenerator(CompactConfig(**TINY, head="shuffle")).eval()
    shuffle.load_state_dict(bilinear.state_dict())
    photo = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        before, after = bilinear(photo).image, shuffle(photo).image
    inner = (slice(None), slice(None), slice(2, -2), slice(2, -2))  # the border pixels pad differently
    assert torch.allclose(before[inner], after[inner], atol=1e-5)
    assert not torch.allclose(before[inner], torch.zeros_like(before[inner]), atol=0.05)


def test_the_sharpening_stage_makes_the_lines_crisper() -> None:
    plain = randomised(CompactGenerator(CompactConfig(**TINY)))
    sharp = CompactGenerator(CompactConfig(**TINY, sharpen=True)).eval()
    sharp.load_state_dict(plain.state_dict())  # a state without the stage starts it at 0.5
    assert torch.allclose(sharp.sharpen_amount, torch.full((1, 3, 1, 1), 0.5))
    photo = torch.rand(1, 3, 64, 64) * 2 - 1

    def laplacian(image: torch.Tensor) -> float:
        kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).expand(3, 1, 3, 3)
        return float(torch.nn.functional.conv2d(image, kernel, groups=3).abs().mean())

    with torch.no_grad():
        assert laplacian(sharp(photo).image) > 1.2 * laplacian(plain(photo).image)


def test_a_larger_amount_set_after_training_draws_crisper_lines_and_leaves_the_rest() -> None:
    trained = randomised(CompactGenerator(CompactConfig(**TINY, sharpen=True)))
    state = trained.state_dict()
    crisp = CompactGenerator(CompactConfig(**TINY, sharpen=True)).eval()
    crisp.load_state_dict(with_sharpen_amount(state, 1.5))
    assert torch.equal(crisp.sharpen_amount, torch.full((1, 3, 1, 1), 1.5))
    assert torch.equal(crisp.dec0.weight, trained.dec0.weight)
    photo = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        before, after = trained(photo).image, crisp(photo).image
    high_pass = before - torch.nn.functional.avg_pool2d(before, 3, 1, 1)
    assert (after - torch.nn.functional.avg_pool2d(after, 3, 1, 1)).abs().mean() > high_pass.abs().mean()
    assert "sharpen_amount" in state and not torch.equal(state["sharpen_amount"], crisp.sharpen_amount)


def test_an_amount_is_refused_for_weights_without_the_stage_or_out_of_range() -> None:
    plain = CompactGenerator(CompactConfig(**TINY)).state_dict()
    with pytest.raises(ValueError, match="--sharpen"):
        with_sharpen_amount(plain, 1.0)
    sharp = CompactGenerator(CompactConfig(**TINY, sharpen=True)).state_dict()
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        with_sharpen_amount(sharp, 5.0)


@pytest.mark.parametrize("bad", [{"widths": (4, 8)}, {"img_size": 100}, {"blocks": 0}, {"head": "nearest"}])
def test_a_bad_config_is_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        CompactConfig(**bad)
