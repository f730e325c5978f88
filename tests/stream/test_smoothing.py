import numpy as np
import pytest
from p2c.stream.smoothing import CartoonSmoother, MaskSmoother, OneEuroConfig, OneEuroFilter


def test_one_euro_steadies_a_still_point_and_follows_a_moving_one(rng: np.random.Generator) -> None:
    still = OneEuroFilter(OneEuroConfig(min_cutoff=1.0, beta=4.0))
    noisy = [np.array([[0.5, 0.5]]) + rng.normal(0, 0.01, (1, 2)) for _ in range(100)]
    out = np.array([still(x, i / 30) for i, x in enumerate(noisy)])
    assert (
        np.abs(np.diff(out[10:], axis=0)).mean() < 0.3 * np.abs(np.diff(np.array(noisy)[10:], axis=0)).mean()
    )

    moving = OneEuroFilter(OneEuroConfig(min_cutoff=1.0, beta=4.0))
    path = [np.array([[i * 0.05, 0.0]]) for i in range(60)]  # 1.5 face sizes per second
    out = np.array([moving(x, i / 30) for i, x in enumerate(path)])
    assert abs(out[-1, 0, 0] - path[-1][0, 0]) < 0.05  # less than one frame of lag


def test_one_euro_first_value_and_reset() -> None:
    f = OneEuroFilter()
    assert np.array_equal(f(np.ones((3, 2)), 0.0), np.ones((3, 2)))
    f.reset()
    assert np.array_equal(f(np.zeros((3, 2)), 1.0), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="min_cutoff"):
        OneEuroConfig(min_cutoff=0)


def test_mask_smoother_blends_with_history() -> None:
    smooth = MaskSmoother(new_weight=0.5)
    smooth(np.zeros((4, 4), np.float32))
    assert np.allclose(smooth(np.ones((4, 4), np.float32)), 0.5)


def test_cartoon_smoother_holds_a_still_face_and_passes_motion() -> None:
    smooth = CartoonSmoother(min_weight=0.5, motion_scale=6.0)
    crop = np.full((8, 8, 3), 100, np.uint8)
    smooth(crop, np.zeros((8, 8, 3), np.uint8))
    assert smooth(crop, np.full((8, 8, 3), 100, np.uint8)).mean() == pytest.approx(50, abs=1)
    moved = np.full((8, 8, 3), 140, np.uint8)  # the input changed a lot: take the new cartoon
    assert smooth(moved, np.full((8, 8, 3), 200, np.uint8)).mean() == pytest.approx(200, abs=1)
