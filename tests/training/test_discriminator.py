"""The discriminator matches photo2cartoon's parameter layout; rho/w clipping; GAN state dicts."""

from __future__ import annotations

import itertools

import pytest
import torch

from p2c.errors import WeightsError
from p2c.training.discriminator import Discriminator, clip_generator_
from p2c.training.gan import NETWORK_KEYS, CartoonGan


def _released_layout(ndf: int, n_layers: int) -> dict[str, tuple[int, ...]]:
    """photo2cartoon's Discriminator, written out: (ReflectionPad, SN conv, LeakyReLU) triples."""
    widths = [3, ndf] + [ndf * 2**i for i in range(1, n_layers - 1)]
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (c_in, c_out) in enumerate(itertools.pairwise(widths)):
        index = 3 * i + 1
        shapes[f"model.{index}.weight_orig"] = (c_out, c_in, 4, 4)
        shapes[f"model.{index}.bias"] = (c_out,)
        shapes[f"model.{index}.weight_u"] = (c_out,)
        shapes[f"model.{index}.weight_v"] = (c_in * 16,)
    top = widths[-1]
    for fc in ("gap_fc", "gmp_fc"):
        shapes[f"{fc}.weight_orig"] = (1, top)
        shapes[f"{fc}.weight_u"] = (1,)
        shapes[f"{fc}.weight_v"] = (top,)
    shapes["conv1x1.weight"] = (top, 2 * top, 1, 1)
    shapes["conv1x1.bias"] = (top,)
    shapes["conv.weight_orig"] = (1, top, 4, 4)
    shapes["conv.weight_u"] = (1,)
    shapes["conv.weight_v"] = (top * 16,)
    return shapes


@pytest.mark.parametrize("n_layers", [7, 5])
def test_state_dict_matches_the_released_discriminators(n_layers: int) -> None:
    state = Discriminator(3, 32, n_layers).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == _released_layout(32, n_layers)


def test_outputs_patch_logits_and_cam_logits() -> None:
    torch.manual_seed(0)
    out = Discriminator(3, 8, 7)(torch.randn(2, 3, 256, 256))
    assert out.logit.shape == (2, 1, 6, 6)
    assert out.cam_logit.shape == (2, 2)
    assert torch.isfinite(out.logit).all()


def test_clip_keeps_rho_and_w_in_unit_interval(tiny_generator) -> None:
    with torch.no_grad():
        for name, parameter in tiny_generator.named_parameters():
            if name.endswith(("rho", "w_gamma", "w_beta")):
                parameter.fill_(1.7 if "rho" in name else -0.4)
    clip_generator_(tiny_generator)
    clipped = [p for n, p in tiny_generator.named_parameters() if n.endswith(("rho", "w_gamma", "w_beta"))]
    assert clipped and all(((p >= 0) & (p <= 1)).all() for p in clipped)


def test_gan_round_trips_the_six_network_layout() -> None:
    torch.manual_seed(0)
    source = CartoonGan(ch=8, img_size=96)
    states = source.network_state_dicts()
    assert tuple(states) == NETWORK_KEYS
    target = CartoonGan(ch=8, img_size=96)
    target.load_network_state_dicts(states, "test")
    assert all(
        torch.equal(a, b)
        for a, b in zip(source.state_dict().values(), target.state_dict().values(), strict=True)
    )
    with pytest.raises(WeightsError, match="--ch"):
        CartoonGan(ch=12, img_size=96).load_network_state_dicts(states, "test")
