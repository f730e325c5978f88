"""A trained state continued in a wider compact generator computes what it computed, then trains on.

The run that continues a narrower portable state: tests/training/test_compact_run.py."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from p2c.models.compact import CompactConfig, CompactGenerator
from p2c.training.widen import can_widen, widen_state, widen_tensor

NARROW = CompactConfig(img_size=32, widths=(4, 8, 8), blocks=2, expand=2, sharpen=True)


def trained(config: CompactConfig, seed: int = 0) -> CompactGenerator:
    """A generator whose every weight is non-zero and not its initial value (as after training)."""
    torch.manual_seed(seed)
    generator = CompactGenerator(config)
    with torch.no_grad():
        for parameter in generator.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return generator.eval()


@pytest.mark.parametrize("widths", [(4, 8, 12), (6, 10, 12)])
def test_the_wider_generator_makes_the_same_cartoon_and_features(widths: tuple[int, int, int]) -> None:
    narrow = trained(NARROW)
    torch.manual_seed(1)
    wide = CompactGenerator(replace(NARROW, widths=widths)).eval()
    assert can_widen(narrow.state_dict(), wide.state_dict())
    wide.load_state_dict(widen_state(narrow.state_dict(), wide.state_dict()))
    photo = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(wide(photo)[0], narrow(photo)[0], atol=1e-5, rtol=1e-5)
        for old, new in zip(narrow.encode(photo), wide.encode(photo), strict=True):
            torch.testing.assert_close(new[:, : old.shape[1]], old, atol=1e-5, rtol=1e-5)
            if new.shape[1] > old.shape[1]:
                assert new[:, old.shape[1] :].abs().sum() > 0  # the new channels are computed


def test_the_new_channels_get_gradients_from_the_first_step() -> None:
    narrow = trained(NARROW)
    wide = CompactGenerator(replace(NARROW, widths=(4, 8, 12)))
    wide.load_state_dict(widen_state(narrow.state_dict(), wide.state_dict()))
    wide(torch.rand(2, 3, 32, 32) * 2 - 1)[0].square().mean().backward()
    # dec2 reads the body's output: its columns for the 4 new channels start at zero but learn.
    grad = wide.dec2.weight.grad
    assert grad is not None and grad[:, 8:].abs().sum() > 0
    assert wide.dec2.weight[:, 8:].abs().sum() == 0


def test_a_narrower_or_different_network_is_refused() -> None:
    narrow = CompactGenerator(NARROW).state_dict()
    assert not can_widen(narrow, narrow)  # nothing to widen
    assert not can_widen(CompactGenerator(replace(NARROW, widths=(4, 8, 12))).state_dict(), narrow)
    assert not can_widen(narrow, CompactGenerator(replace(NARROW, blocks=3)).state_dict())
    with pytest.raises(ValueError, match="cannot widen"):
        widen_tensor(torch.zeros(4, 8), torch.zeros(2, 8))
