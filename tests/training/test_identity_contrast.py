"""The contrastive identity loss: it asks each photo to pick out its own cartoon, as the gate does."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from p2c.models.compact import CompactConfig
from p2c.training.identity_contrast import IdentityContrast
from p2c.training.metrics import identity_rank1
from p2c.training.onesided import (
    OneSidedConfig,
    OneSidedNetworks,
    OneSidedWeights,
    generator_step,
    step_generator,
)


def faces(n: int, seed: int = 0) -> torch.Tensor:
    """Unit embeddings that share a large common part, as face embeddings of different people do."""
    g = torch.Generator().manual_seed(seed)
    common = torch.randn(1, 16, generator=g)
    return F.normalize(3 * common + torch.randn(n, 16, generator=g), dim=1)


def test_a_template_face_for_everyone_costs_more_than_each_its_own() -> None:
    photos = faces(8)
    template = F.normalize(photos.mean(0, keepdim=True), dim=1).expand(8, -1)
    assert IdentityContrast()(template, photos) > IdentityContrast()(photos, photos) + 0.5


def test_descending_it_lets_every_photo_pick_out_its_own_cartoon() -> None:
    photos = faces(16)
    template = F.normalize(photos.mean(0, keepdim=True), dim=1).expand(16, -1)
    raw = (template + 0.01 * torch.randn(16, 16, generator=torch.Generator().manual_seed(1))).clone()
    raw.requires_grad_(True)
    loss_fn = IdentityContrast(bank_size=32)
    optimizer = torch.optim.SGD([raw], lr=0.05)
    before = identity_rank1(photos, F.normalize(raw.detach(), dim=1)).float().mean()
    for step in range(60):
        batch = torch.arange(4) + 4 * (step % 4)  # batches of 4, the rest of the faces in the banks
        loss = loss_fn(F.normalize(raw[batch], dim=1), photos[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = identity_rank1(photos, F.normalize(raw.detach(), dim=1)).float().mean()
    assert before < 0.5 and after == 1.0


def test_the_same_photo_in_the_bank_is_no_negative() -> None:
    photo = faces(1)
    loss_fn = IdentityContrast(bank_size=8)
    assert float(loss_fn(photo, photo)) == pytest.approx(0.0, abs=1e-6)  # nothing to mistake it for
    # drawn again: its banked copy is the positive itself, not another person
    assert float(loss_fn(photo, photo)) == pytest.approx(0.0, abs=1e-6)
    assert float(loss_fn(faces(1, 5), faces(1, 5))) > 0.0  # another face in the bank is one


def test_the_bank_keeps_the_newest_and_at_most_its_size() -> None:
    loss_fn = IdentityContrast(bank_size=6)
    for seed in range(3):
        newest = faces(4, seed)
        loss_fn(newest, newest)
    assert loss_fn.photo_bank is not None and loss_fn.photo_bank.shape == (6, 16)
    assert torch.equal(loss_fn.photo_bank[:4], newest)


def test_bad_shapes_and_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="N x D"):
        IdentityContrast()(faces(4), faces(3))
    with pytest.raises(ValueError, match="temperature"):
        IdentityContrast(temperature=0.0)


class MeanColourId(torch.nn.Module):
    """A stand-in Face ID network: the image's mean colour and its spread, as a unit embedding."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(torch.cat([images.mean((2, 3)), images.std((2, 3))], dim=1), dim=1)


def test_a_generator_step_reports_and_trains_the_identity_loss() -> None:
    config = OneSidedConfig(
        generator=CompactConfig(img_size=64, widths=(8, 16, 32), blocks=2),
        disc_width=8,
        weights=OneSidedWeights(identity=1.0),
    )
    nets = OneSidedNetworks(config)
    g = torch.optim.Adam(nets.generator_parameters(), lr=1e-3)
    d = torch.optim.Adam(nets.discriminator_parameters(), lr=1e-3)
    photos = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    kwargs = {"faceid": MeanColourId(), "identity": IdentityContrast()}
    losses = generator_step(nets, photos, photos, g, d, step_generator(0, 1), **kwargs)
    assert losses.identity > 0 and losses.faceid > 0
    off = generator_step(nets, photos, photos, g, d, step_generator(0, 2), faceid=MeanColourId())
    assert off.identity == 0.0
