"""The cartoon-ness gauge: its network's contract, its files, its augmentation, and the fitted copy
that ships telling held-out photos (also blurred ones) from held-out cartoons."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from p2c.errors import InputNotFoundError, InvalidInputError, WeightsError
from p2c.training.evaluation import load_crops
from p2c.training.gauge import CartoonGauge, GaugeConfig, default_gauge_path, load_gauge, save_gauge
from p2c.training.gauge.augmentation import AugmentConfig, augment_style, blurred, downscaled, washed
from p2c.training.gauge.fitting import FitConfig, auc, fit_gauge, scores, separation


@pytest.fixture
def random_gauge() -> CartoonGauge:
    torch.manual_seed(0)
    return CartoonGauge().eval()


def test_the_gauge_gives_one_probability_per_image_at_any_size(random_gauge: CartoonGauge) -> None:
    generator = torch.Generator().manual_seed(1)
    for shape in ((3, 3, 256, 256), (1, 3, 64, 64), (2, 3, 150, 200)):
        images = torch.rand(shape, generator=generator) * 2 - 1
        with torch.no_grad():
            p = random_gauge(images)
        assert p.shape == (shape[0],) and bool(((p >= 0) & (p <= 1)).all())


def test_the_gauge_is_deterministic_and_judges_each_image_alone(random_gauge: CartoonGauge) -> None:
    images = torch.rand(4, 3, 128, 128, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.no_grad():
        together, again = random_gauge(images), random_gauge(images)
        alone = torch.cat([random_gauge(image[None]) for image in images])
    assert torch.equal(together, again)
    torch.testing.assert_close(alone, together, atol=1e-6, rtol=0)


def test_the_gauge_rejects_images_of_the_wrong_shape(random_gauge: CartoonGauge) -> None:
    with pytest.raises(InvalidInputError, match=r"\(N, 3, H, W\)"):
        random_gauge(torch.zeros(3, 64, 64))
    with pytest.raises(ValueError, match="channels"):
        GaugeConfig(channels=())


def test_saved_and_loaded_gauges_agree(random_gauge: CartoonGauge, tmp_path: Path) -> None:
    path = save_gauge(random_gauge, tmp_path / "g.safetensors", {"seed": 7})
    loaded = load_gauge(path)
    images = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(3)) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), random_gauge(images), atol=0, rtol=0)
    assert json.loads(path.with_suffix(".json").read_text())["record"] == {"seed": 7}
    assert not any(p.requires_grad for p in loaded.parameters()) and not loaded.training


def test_missing_or_wrong_gauge_files_are_one_line_errors(random_gauge: CartoonGauge, tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match=r"fit_gauge\.py"):
        load_gauge(tmp_path / "none.safetensors")
    path = save_gauge(random_gauge, tmp_path / "g.safetensors")
    other = save_gauge(CartoonGauge(GaugeConfig(channels=(8, 16))), tmp_path / "other.safetensors")
    path.write_bytes(other.read_bytes())
    with pytest.raises(WeightsError, match="does not hold"):
        load_gauge(path)
    path.with_suffix(".json").write_text("{}")
    with pytest.raises(WeightsError, match="not a cartoon-gauge config"):
        load_gauge(path)


def test_the_fitted_gauge_ships_small_with_the_record_of_its_fit() -> None:
    path = default_gauge_path()
    assert path.stat().st_size < 1_000_000
    gauge = load_gauge()
    assert 20_000 <= gauge.parameter_count <= 500_000
    record = json.loads(path.with_suffix(".json").read_text())["record"]
    assert record["data"]["trainA"] == 545 and record["data"]["trainB"] == 193
    assert {"accuracy", "auc", "p_photo", "p_cartoon"} <= set(record["heldout"])


def test_auc_counts_ordered_pairs() -> None:
    assert auc(np.array([0.1, 0.2]), np.array([0.3, 0.9])) == 1.0
    assert auc(np.array([0.5, 0.9]), np.array([0.1, 0.2])) == 0.0
    assert auc(np.array([0.1, 0.5]), np.array([0.5, 0.9])) == pytest.approx(0.875)


def test_augmentation_is_a_function_of_the_seed_and_keeps_the_crop_shape() -> None:
    image = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    config = AugmentConfig()
    first = augment_style(image, np.random.default_rng([0, 1, 2]), config)
    again = augment_style(image, np.random.default_rng([0, 1, 2]), config)
    other = augment_style(image, np.random.default_rng([0, 1, 3]), config)
    assert first.shape == image.shape and first.dtype == np.uint8
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_a_fit_is_a_function_of_its_seed() -> None:
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(6)]
    cartoons = [np.full((64, 64, 3), (240, 200, 190), np.uint8) for _ in range(3)]
    config = FitConfig(epochs=2, batch_size=4, negative_generators=0, gauge=GaugeConfig(32, (4, 8)))
    first, again = fit_gauge(photos, cartoons, config), fit_gauge(photos, cartoons, config)
    assert [h["epoch"] for h in first.history] == [1, 2] and first.negatives == 0
    for name, tensor in first.gauge.state_dict().items():
        assert torch.equal(tensor, again.gauge.state_dict()[name]), name


# -- the fitted gauge on the held-out crops (p2c-prepare-data on ../shared) -----------------------


def _separates(p_photo: np.ndarray, p_cartoon: np.ndarray) -> bool:
    """What the shipped gauge must do on held-out crops (measured: see docs/default-model.md)."""
    return bool((p_photo < 0.5).mean() >= PHOTOS_BELOW_HALF and (p_cartoon >= 0.5).mean() >= CARTOONS_AT_HALF)


PHOTOS_BELOW_HALF = 0.9  # of the 40 testA photos
CARTOONS_AT_HALF = 1.0  # of the 10 testB cartoons


@pytest.fixture(scope="module")
def heldout(heldout_data: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    return load_crops(heldout_data / "testA", align="no")[1], load_crops(heldout_data / "testB", align="no")[
        1
    ]


@pytest.mark.slow
def test_the_fitted_gauge_tells_heldout_photos_from_heldout_cartoons(heldout, random_gauge) -> None:
    photos, cartoons = heldout
    gauge = load_gauge()
    figures = separation(gauge, photos, cartoons)
    assert _separates(scores(gauge, photos), scores(gauge, cartoons)), figures
    assert figures["auc"] >= 0.95
    # The criterion can fail: an unfitted gauge of the same shape does not meet it.
    assert not _separates(scores(random_gauge, photos), scores(random_gauge, cartoons))


@pytest.mark.slow
def test_a_blurred_downscaled_or_washed_out_photo_is_still_a_photo(heldout) -> None:
    photos, cartoons = heldout
    gauge = load_gauge()
    for name, change in {
        "blur sigma 2": lambda image: blurred(image, 2.0),
        "blur sigma 3": lambda image: blurred(image, 3.0),
        "downscaled x0.25": lambda image: downscaled(image, 0.25),
        # as pale as a cartoon's skin: lifted 50 % toward white, 70 % less saturated
        "washed out": lambda image: washed(image, 0.5, 0.3),
    }.items():
        p = scores(gauge, [change(photo) for photo in photos])
        assert (p < 0.5).mean() >= PHOTOS_BELOW_HALF and p.mean() < 0.25, (name, p.round(3))
    # Softening does not make the cartoons photos either (a GAN's cartoons are soft too).
    p = scores(gauge, [blurred(cartoon, 1.0) for cartoon in cartoons])
    assert (p >= 0.5).mean() >= 0.9, p.round(3)
