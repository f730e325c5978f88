"""A trained state continued in a wider compact generator computes what it computed, then trains on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from p2c.errors import InvalidInputError
from p2c.models.compact import CompactConfig, CompactGenerator
from p2c.training.compact_run import CompactRunConfig, train_compact
from p2c.training.compact_state import load_portable_networks
from p2c.training.onesided import OneSidedConfig, OneSidedNetworks
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


def test_a_run_continues_a_narrower_portable_state_in_wider_channels(
    smooth_crops: Callable[[int, int], Path], tmp_path: Path
) -> None:
    crops = smooth_crops(64, 8)

    def run(widths: tuple[int, int, int], **changes: object) -> CompactRunConfig:
        objective = OneSidedConfig(
            generator=CompactConfig(img_size=64, widths=widths, blocks=2, expand=2),
            disc_width=4,
            nce_patches=16,
        )
        config = CompactRunConfig(
            data_dir=str(crops),
            out_dir=str(tmp_path / f"run{widths[2]}"),
            objective=objective,
            batch_size=2,
            img_size=64,
            identity_steps=2,
            threads=1,
            processes=1,
            size_schedule="",
            sample_minutes=1e6,
            max_steps=4,
        )
        return replace(config, **changes)  # type: ignore[arg-type]

    state = tmp_path / "state"
    narrow_config = run((4, 8, 8), state_dir=str(state))
    train_compact(narrow_config)
    narrow = OneSidedNetworks(narrow_config.objective)
    load_portable_networks(state, narrow)
    wide_config = run((4, 8, 12), init_from=str(state), max_steps=6)
    wide = OneSidedNetworks(wide_config.objective)
    assert load_portable_networks(state, wide).step == 4
    photo = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        for name in ("generator", "generator_ema"):
            torch.testing.assert_close(getattr(wide, name)(photo)[0], getattr(narrow, name)(photo)[0])

    result = train_compact(wide_config)
    assert result.step == 6
    # A state of other depth is not a wider one: one clear error, as before.
    with pytest.raises(InvalidInputError, match="does not fit"):
        deeper = OneSidedConfig(generator=CompactConfig(img_size=64, widths=(4, 8, 8), blocks=3, expand=2))
        load_portable_networks(state, OneSidedNetworks(replace(deeper, disc_width=4, nce_patches=16)))
