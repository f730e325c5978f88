"""Style distance: KID to the cartoon set on features of lines, flat regions and layout."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from p2c.training.style_distance import BLOCKS, StyleReference, style_features

SIZE = 128


def _face(rng: np.random.Generator, drawn: bool) -> np.ndarray:
    """A head on white: ``drawn`` flat colours inside dark outlines (a cartoon), else the same
    layout shaded smoothly, noisy and with no outlines (a photo)."""
    image = np.full((SIZE, SIZE, 3), 255, np.uint8)
    centre = (SIZE // 2 + int(rng.integers(-6, 7)), SIZE // 2 + int(rng.integers(-4, 5)))
    axes = (int(rng.integers(34, 42)), int(rng.integers(44, 52)))
    skin = tuple(int(c) for c in rng.integers((215, 165, 145), (240, 190, 170)))
    hair = tuple(int(c) for c in rng.integers((40, 25, 15), (90, 60, 40)))
    cv2.ellipse(image, (centre[0], centre[1] - 12), (axes[0] + 8, axes[1]), 0, 180, 360, hair, -1)
    cv2.ellipse(image, centre, axes, 0, 0, 360, skin, -1)
    eyes = [(centre[0] + dx, centre[1] - 6) for dx in (-15, 15)]
    for eye in eyes:
        cv2.circle(image, eye, 5, (60, 40, 30), -1)
    cv2.ellipse(image, (centre[0], centre[1] + 22), (10, 4), 0, 0, 180, (200, 90, 100), -1)
    if drawn:
        cv2.ellipse(image, centre, axes, 0, 0, 360, (40, 30, 30), 2)
        for eye in eyes:
            cv2.circle(image, eye, 7, (20, 20, 20), 2)
        return image
    head = image.min(axis=2) < 240
    shading = np.linspace(0.75, 1.1, SIZE)[None, :, None] * rng.uniform(0.9, 1.05)
    noise = rng.normal(0.0, 9.0, image.shape)
    photo = cv2.GaussianBlur(image.astype(np.float64), (5, 5), 1.5) * shading + noise
    photo[~head] = 255
    return np.clip(photo, 0, 255).astype(np.uint8)


def _set(seed: int, drawn: bool, count: int = 12) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [_face(rng, drawn) for _ in range(count)]


@pytest.fixture(scope="module")
def reference() -> StyleReference:
    return StyleReference(_set(0, drawn=True, count=16))


def test_flat_drawn_faces_are_near_the_cartoons_and_noisy_shaded_ones_far(reference) -> None:
    cartoons = reference.measure(_set(1, drawn=True))
    photos = reference.measure(_set(2, drawn=False))
    assert cartoons.distance < 0.05 * photos.distance
    assert photos.distance > 1.0  # far on the kernel's scale, not only relatively
    assert set(photos.blocks) == set(BLOCKS) and photos.images == 12
    # Lines and flat regions are what tell them apart, not only colour.
    for block in ("lines", "flatness"):
        assert cartoons.blocks[block] < photos.blocks[block], block


def test_one_distribution_measures_about_zero(reference) -> None:
    first, second = reference.measure(_set(3, drawn=True)), reference.measure(_set(4, drawn=True))
    photos = reference.measure(_set(5, drawn=False))
    assert abs(first.distance) < 0.05 * photos.distance and abs(second.distance) < 0.05 * photos.distance


def test_features_are_deterministic_and_taken_at_the_crop_size() -> None:
    images = _set(6, drawn=False, count=2)
    first, again = style_features(images), style_features(images)
    large = style_features([cv2.resize(i, (256, 256), interpolation=cv2.INTER_NEAREST) for i in images])
    for block in BLOCKS:
        assert np.array_equal(first[block], again[block]), block
        assert first[block].shape == large[block].shape and np.isfinite(first[block]).all(), block


def test_a_set_too_small_to_measure_is_refused(reference) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        reference.measure(_set(7, drawn=True, count=1))
    with pytest.raises(ValueError, match="at least 2"):
        StyleReference(_set(7, drawn=True, count=1))


def test_real_cartoons_measure_near_the_cartoon_set_and_real_photos_far(
    shared_cartoons: Path, prepared: dict
) -> None:
    from p2c.training.dataset import read_rgb
    from p2c.training.evaluation import load_crops

    cartoons = []
    for path in sorted(shared_cartoons.iterdir())[:50]:
        image = read_rgb(path)
        assert image is not None
        cartoons.append(cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA))
    reference = StyleReference(cartoons[:40])
    photos = [crop for name in ("trainA", "testA") for crop in load_crops(prepared["data"] / name)[1]]
    near, far = reference.measure(cartoons[40:]), reference.measure(photos)
    assert len(photos) >= 4 and abs(near.distance) < 0.05 * far.distance
