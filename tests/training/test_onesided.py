"""The one-sided objective's parts: DiffAugment, the patchwise contrastive loss, one step."""

from __future__ import annotations

import pytest
import torch

from p2c.models.compact import CompactConfig
from p2c.training.diffaugment import diff_augment
from p2c.training.onesided import (
    OneSidedConfig,
    OneSidedNetworks,
    generator_step,
    identity_step,
    step_generator,
)
from p2c.training.patchnce import PatchSampler, patch_nce_loss


def images(n: int = 2, size: int = 32) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_diffaugment_repeats_with_the_same_seed_and_differs_with_another() -> None:
    x = images()
    policy = "color,translation,cutout"
    a = diff_augment(x, policy, torch.Generator().manual_seed(1))
    b = diff_augment(x, policy, torch.Generator().manual_seed(1))
    c = diff_augment(x, policy, torch.Generator().manual_seed(2))
    assert a.shape == x.shape
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(diff_augment(x, "", torch.Generator()), x)


def test_diffaugment_is_differentiable_and_cutout_zeroes_a_quarter() -> None:
    x = images().requires_grad_(True)
    out = diff_augment(x, "cutout", torch.Generator().manual_seed(3))
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    zeroed = (out.detach() == 0).all(dim=1).float().mean(dim=(1, 2))
    assert torch.all((zeroed > 0.05) & (zeroed <= 0.25 + 1e-6))


def test_an_unknown_policy_names_the_choices() -> None:
    with pytest.raises(ValueError, match="color, translation, cutout"):
        diff_augment(images(), "colour", torch.Generator())


def test_patch_nce_is_low_for_matching_patches_and_high_for_shuffled_ones() -> None:
    sampler = PatchSampler([8], patches=16)
    features = [torch.randn(2, 8, 6, 6, generator=torch.Generator().manual_seed(0))]
    positions = sampler.positions(features, torch.Generator().manual_seed(0))
    keys = sampler(features, positions)[0]
    same = patch_nce_loss(keys, keys)
    shuffled = patch_nce_loss(keys[:, torch.randperm(16, generator=torch.Generator().manual_seed(1))], keys)
    assert same < 0.5 < shuffled


def tiny_networks() -> OneSidedNetworks:
    torch.manual_seed(0)
    generator = CompactConfig(img_size=64, widths=(4, 8, 8), blocks=1, expand=2)
    return OneSidedNetworks(OneSidedConfig(generator=generator, disc_width=4, nce_patches=16))


def test_one_step_moves_generator_and_discriminators_and_the_average_follows() -> None:
    nets = tiny_networks()
    g = torch.optim.Adam(nets.generator_parameters(), lr=1e-3)
    d = torch.optim.Adam(nets.discriminator_parameters(), lr=1e-3)
    before = {k: v.clone() for k, v in nets.state_dict().items()}
    losses = generator_step(nets, images(2, 64), images(2, 64), g, d, step_generator(0, 1))
    after = nets.state_dict()
    moved = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert {"generator", "generator_ema", "disc_local", "disc_global", "patch_sampler"} <= moved
    assert all(v > 0 for v in (losses.d, losses.g_adv, losses.nce))


def test_the_identity_warm_up_brings_the_output_towards_the_input() -> None:
    nets = tiny_networks()
    g = torch.optim.Adam(nets.generator_parameters(), lr=3e-3)
    x = torch.nn.functional.interpolate(images(2, 4), size=64, mode="bilinear")  # smooth, like faces
    first = identity_step(nets, x, g).nce
    for _ in range(120):
        last = identity_step(nets, x, g).nce
    assert last < 0.6 * first


def test_the_config_round_trips_through_its_dict() -> None:
    config = OneSidedConfig(generator=CompactConfig(widths=(8, 16, 32), blocks=3), disc_width=16)
    assert OneSidedConfig.from_dict(config.to_dict()) == config


def test_the_stability_loss_is_zero_for_a_generator_that_moves_with_its_input() -> None:
    from p2c.training.onesided import stability_loss

    class Identity(torch.nn.Module):
        def forward(self, x: torch.Tensor):
            return type("Out", (), {"image": x})()

    x = torch.nn.functional.interpolate(images(2, 8), size=64, mode="bilinear")
    moved = stability_loss(Identity(), x, x, torch.Generator().manual_seed(0))
    assert moved < 0.03  # only the sensor noise is left (mean |N(0, 0.02)| = 0.016)

    shuffled = stability_loss(Identity(), x, x.roll(9, dims=-1), torch.Generator().manual_seed(0))
    assert shuffled > 2 * moved


def test_the_blurred_stability_loss_does_not_ask_a_sharp_line_to_be_soft() -> None:
    from p2c.training.onesided import gaussian_blur, stability_loss

    class Inks(torch.nn.Module):
        """Draws every line sharp wherever the face is: the cartoon of a moved face is sharp, the
        moved cartoon is resampled, hence soft."""

        def forward(self, x: torch.Tensor):
            return type("Out", (), {"image": torch.tanh(20 * x)})()

    lines = torch.full((2, 3, 256, 256), 1.0)
    for offset in range(3):
        lines[..., offset::16, :] = -1.0  # three-pixel dark lines
    flat = torch.full((1, 3, 16, 16), 0.3)
    assert torch.allclose(gaussian_blur(flat, 1.0), flat)

    def loss(blur: float, photos: torch.Tensor, cartoons: torch.Tensor) -> float:
        rng = torch.Generator().manual_seed(0)
        return float(stability_loss(Inks(), photos, cartoons, rng, blur))

    sharp = Inks()(lines).image
    assert loss(2.0, lines, sharp) < 0.7 * loss(0.0, lines, sharp)
    # A drawing that does not follow the face still costs after the blur.
    assert loss(2.0, lines, sharp.roll(8, dims=-2)) > 5 * loss(2.0, lines, sharp)


def test_a_negative_stability_blur_is_refused() -> None:
    with pytest.raises(ValueError, match="stability_blur"):
        OneSidedConfig(stability_blur=-1.0)
