"""Fixtures for the model tests: a full-size generator and checkpoints in the released layout."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from p2c.models.generator import ResnetGenerator


@pytest.fixture(scope="session")
def full_generator() -> ResnetGenerator:
    """photo2cartoon's released architecture (ngf=32, light, 256) with deterministic random weights."""
    torch.manual_seed(0)
    return ResnetGenerator(ngf=32, img_size=256, light=True).eval()


@pytest.fixture
def released_style_checkpoint(tmp_path: Path, tiny_generator: ResnetGenerator) -> Path:
    """A tiny generator saved the way photo2cartoon saves its weights: a dict of state dicts."""
    torch.manual_seed(1)
    other = ResnetGenerator(ngf=8, img_size=64, light=True)
    path = tmp_path / "photo2cartoon_weights.pt"
    torch.save(
        {
            "genA2B": tiny_generator.state_dict(),
            "genB2A": other.state_dict(),
            "disGA": {"model.0.weight": torch.zeros(4, 3, 4, 4)},
        },
        path,
    )
    return path
