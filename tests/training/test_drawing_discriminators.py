"""What makes a drawing: part windows, white-box surface and texture, webcam light on the photos."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from p2c.models.compact import CompactConfig
from p2c.training.camera_light import CameraLight, camera_light, head_mask
from p2c.training.onesided import (
    OneSidedConfig,
    OneSidedNetworks,
    OneSidedWeights,
    generator_step,
    step_generator,
)
from p2c.training.parts import PART_WINDOWS, part_windows
from p2c.training.whitebox import draw_texture_mix, surface, texture


def drawing_networks(**weights: float) -> OneSidedNetworks:
    torch.manual_seed(0)
    generator = CompactConfig(img_size=128, widths=(4, 8, 8), blocks=1, expand=2)
    return OneSidedNetworks(
        OneSidedConfig(generator=generator, disc_width=4, nce_patches=16, weights=OneSidedWeights(**weights))
    )


def smooth_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    coarse = torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=size, mode="bilinear")


def test_the_surface_flattens_noise_and_keeps_an_edge() -> None:
    flat = torch.zeros(1, 3, 64, 64)
    flat[..., 32:, :] = 0.8  # a hard edge between two flat regions (rows)
    noisy = flat + 0.1 * torch.randn(flat.shape, generator=torch.Generator().manual_seed(0))
    out = surface(noisy)
    inside = out[..., 8:24, 8:56]
    assert inside.std() < 0.5 * noisy[..., 8:24, 8:56].std(), "noise between edges is not flattened"
    assert (out[..., 40:, :].mean() - out[..., :24, :].mean()) > 0.7, "the edge is washed out"


def test_the_texture_is_one_grey_channel_whose_mix_sums_to_one() -> None:
    mix = draw_texture_mix(torch.Generator().manual_seed(1))
    assert torch.isclose(mix.sum(), torch.tensor(1.0)) and (mix > 0).all()
    grey = texture(torch.full((2, 3, 16, 16), 0.5), mix)
    assert grey.shape == (2, 1, 16, 16) and torch.allclose(grey, torch.full_like(grey, 0.5))
    assert not torch.equal(mix, draw_texture_mix(torch.Generator().manual_seed(2)))


def test_part_windows_sit_at_the_same_place_at_every_size() -> None:
    for size in (128, 256):
        image = torch.zeros(1, 3, size, size)
        for name, (_top, _left, height, width) in PART_WINDOWS.items():
            window = part_windows(image, name)
            assert window.shape[-2:] == (round(height * size / 256), round(width * size / 256))
    marked = torch.zeros(1, 1, 256, 256)
    marked[..., 120, 100] = 1.0  # a point of the right eye (MediaPipe: y 116-124, x 86-111)
    assert part_windows(marked, "eyes").sum() == 1 and part_windows(marked, "mouth").sum() == 0


def test_each_extra_discriminator_is_trained_and_judges_the_generator() -> None:
    nets = drawing_networks(parts=1.0, surface=1.0, texture=1.0)
    assert set(nets.disc_extra) == {"eyes", "mouth", "surface", "texture"}
    g = torch.optim.Adam(nets.generator_parameters(), lr=1e-3)
    d = torch.optim.Adam(nets.discriminator_parameters(), lr=1e-3)
    before = {k: v.clone() for k, v in nets.disc_extra.state_dict().items()}
    losses = generator_step(nets, smooth_images(2, 128), smooth_images(2, 128, 1), g, d, step_generator(0, 1))
    after = nets.disc_extra.state_dict()
    moved = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert moved == {"eyes", "mouth", "surface", "texture"}
    assert losses.style > 0


def test_without_extra_weights_there_are_no_extra_discriminators() -> None:
    nets = drawing_networks()
    assert len(nets.disc_extra) == 0 and not list(nets.disc_extra.parameters())


def test_the_contrastive_loss_can_keep_only_the_deeper_layers() -> None:
    torch.manual_seed(0)
    generator = CompactConfig(img_size=64, widths=(4, 8, 8), blocks=2, expand=2)
    config = OneSidedConfig(generator=generator, disc_width=4, nce_patches=16, nce_layers=(2, 3, 4))
    nets = OneSidedNetworks(config)
    g = torch.optim.Adam(nets.generator_parameters(), lr=1e-3)
    d = torch.optim.Adam(nets.discriminator_parameters(), lr=1e-3)
    before = {k: v.clone() for k, v in nets.patch_sampler.state_dict().items()}
    generator_step(nets, smooth_images(2, 64), smooth_images(2, 64, 1), g, d, step_generator(0, 1))
    after = nets.patch_sampler.state_dict()
    moved = {int(k.split(".")[1]) for k in before if not torch.equal(before[k], after[k])}
    assert moved == {2, 3, 4}, "only the kept layers' heads take part"
    assert OneSidedConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="nce_layers"):
        OneSidedConfig(nce_layers=(5,))


def portrait(size: int = 128) -> np.ndarray:
    """A skin-coloured disc on the crop's white background, with a white highlight on it."""
    image = np.full((size, size, 3), 255, np.uint8)
    ys, xs = np.mgrid[0:size, 0:size]
    head = (ys - size / 2) ** 2 + (xs - size / 2) ** 2 < (size * 0.35) ** 2
    image[head] = (224, 180, 150)
    image[size // 2 - 3 : size // 2 + 3, size // 2 - 3 : size // 2 + 3] = 255
    return image


def test_webcam_light_changes_the_head_and_keeps_the_white_background() -> None:
    image = portrait()
    everything = CameraLight(1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    out = camera_light(image, np.random.default_rng(3), everything)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert (out[:8] == 255).all() and (out[:, :8] == 255).all(), "the background must stay white"
    centre = slice(40, 56)
    assert np.abs(out[centre, centre].astype(int) - image[centre, centre]).mean() > 3
    again = camera_light(image, np.random.default_rng(3), everything)
    assert np.array_equal(out, again), "the same draw must give the same picture"
    assert not np.array_equal(out, camera_light(image, np.random.default_rng(4), everything))


def test_a_white_highlight_on_the_face_is_the_heads_not_the_backgrounds() -> None:
    mask = head_mask(portrait())
    assert mask[64, 64] > 0.99 and mask[2, 2] < 0.01


@pytest.fixture(scope="module")
def crops128(smooth_crops: Callable[[int, int], Path]) -> Path:
    return smooth_crops(128, 4)


@pytest.mark.slow
def test_a_drawing_run_resumes_exactly_and_continues_from_a_state_without_its_discriminators(
    crops128: Path, tmp_path: Path
) -> None:
    from p2c.training.compact_run import CompactRunConfig, train_compact

    plain = OneSidedConfig(
        generator=CompactConfig(img_size=128, widths=(4, 8, 8), blocks=2, expand=2),
        disc_width=4,
        nce_patches=16,
    )
    base = CompactRunConfig(
        data_dir=str(crops128),
        out_dir="",
        objective=plain,
        batch_size=2,
        img_size=128,
        identity_steps=1,
        threads=1,
        processes=1,
        size_schedule="",
        sample_minutes=1e6,
        max_steps=3,
        precision="fp32",
    )
    state = tmp_path / "state"
    train_compact(replace(base, out_dir=str(tmp_path / "plain"), state_dir=str(state)))
    drawing = replace(
        plain, weights=OneSidedWeights(parts=1.0, surface=0.5, texture=0.5), nce_layers=(2, 3, 4)
    )
    run = replace(base, objective=drawing, camera_light=1.0, init_from=str(state), max_steps=6)
    straight = train_compact(replace(run, out_dir=str(tmp_path / "straight")))
    train_compact(replace(run, out_dir=str(tmp_path / "resumed"), max_steps=5))
    resumed = train_compact(replace(run, out_dir=str(tmp_path / "resumed")))
    assert straight.step == resumed.step == 6
    a = torch.load(tmp_path / "straight" / "state.pt", weights_only=True)["networks"]
    b = torch.load(tmp_path / "resumed" / "state.pt", weights_only=True)["networks"]
    assert set(a["disc_extra"]) and a["disc_extra"].keys() == b["disc_extra"].keys()
    for name in a:
        for key, value in a[name].items():
            assert torch.equal(value, b[name][key]), f"{name}.{key} differs after resuming"


def test_part_discriminators_refuse_crops_too_small_for_their_windows() -> None:
    from p2c.training.compact_run import CompactRunConfig

    drawing = OneSidedConfig(weights=OneSidedWeights(parts=1.0))
    with pytest.raises(ValueError, match="at least 128 px"):
        CompactRunConfig(data_dir="", out_dir="", objective=drawing, img_size=64, size_schedule="")
    CompactRunConfig(data_dir="", out_dir="", objective=drawing, img_size=256)
