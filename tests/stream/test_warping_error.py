from __future__ import annotations

import cv2
import numpy as np
import pytest

from p2c.stream.warping_error import WarpingErrorMeter, consistent_pixels, dis_flow, warp_back


def _textured(rng: np.random.Generator, size: int = 160) -> np.ndarray:
    noise = rng.random((size // 8, size // 8, 3)).astype(np.float32)
    return (cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 255).astype(np.uint8)


def _shift(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, matrix, image.shape[1::-1], borderMode=cv2.BORDER_REFLECT)


def _clip(rng: np.random.Generator, frames: int = 6) -> list[np.ndarray]:
    first = _textured(rng)
    return [_shift(first, 2.0 * i, 1.0 * i) for i in range(frames)]


def test_flow_finds_a_shift_and_warping_back_undoes_it(rng: np.random.Generator) -> None:
    frame = _textured(rng)
    moved = _shift(frame, 3.0, -2.0)
    flow = dis_flow(frame, moved)
    centre = flow[40:120, 40:120].reshape(-1, 2)
    assert np.allclose(np.median(centre, axis=0), [3.0, -2.0], atol=0.3)
    back = warp_back(moved, flow)
    assert np.abs(back[40:120, 40:120].astype(int) - frame[40:120, 40:120]).mean() < 3.0


def test_occluded_pixels_fail_the_consistency_test() -> None:
    forward = np.zeros((32, 32, 2), np.float32)
    backward = np.zeros((32, 32, 2), np.float32)
    forward[:, :16, 0] = 4.0  # the left half moves right...
    backward[:, :, 0] = 0.0  # ...but nothing comes back: occluded/disoccluded
    ok = consistent_pixels(forward, backward)
    assert ok[:, 20:].all() and not ok[:, :10].any()


def test_a_cartoon_that_moves_with_the_person_scores_about_one(rng: np.random.Generator) -> None:
    frames = _clip(rng)
    region = np.zeros(frames[0].shape[:2], bool)
    region[30:130, 30:130] = True
    follows, shimmers = WarpingErrorMeter(), WarpingErrorMeter()
    for image in frames:
        # A "cartoon" that is a fixed function of the input moves exactly with it.
        cartoon = 255 - image
        noisy = np.clip(cartoon.astype(np.int16) + rng.integers(-40, 41, cartoon.shape), 0, 255).astype(
            np.uint8
        )
        follows.add(image, cartoon, region)
        shimmers.add(image, noisy, region)
    assert follows.pairs == shimmers.pairs == len(frames) - 1
    assert follows.ratio == pytest.approx(1.0, abs=0.25)
    assert shimmers.ratio > 5 * follows.ratio
    assert set(follows.summary()) == {"pairs", "input_error", "output_error", "ratio"}


def test_a_frame_without_a_face_breaks_the_chain(rng: np.random.Generator) -> None:
    frames = _clip(rng, 4)
    region = np.ones(frames[0].shape[:2], bool)
    meter = WarpingErrorMeter()
    for index, image in enumerate(frames):
        meter.add(image, image, None if index == 2 else region)
    assert meter.pairs == 1  # (0,1) only: 2 has no face, so neither (1,2) nor (2,3) counts
    assert np.isnan(WarpingErrorMeter().ratio)
