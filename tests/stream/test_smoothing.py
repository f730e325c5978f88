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


def test_output_smoothing_does_not_ghost_on_fast_motion(
    astronaut: np.ndarray, invert_engine, list_sink, frames_source
) -> None:
    """A face moving 8 px a frame: the smoothed output matches the unsmoothed one, no trail."""
    from fractions import Fraction

    import cv2

    from p2c.stream.frame import Frame
    from p2c.stream.pipeline import VideoConfig, cartoonize

    def moving(count: int) -> list[Frame]:
        frames = []
        for i in range(count):
            shift = np.float32([[1, 0, 8 * i - 60], [0, 1, 4 * i - 30]])
            image = cv2.warpAffine(astronaut, shift, (512, 512), borderMode=cv2.BORDER_REFLECT)
            frames.append(Frame(index=i, pts=i, time_base=Fraction(1, 25), image=image))
        return frames

    outputs = {}
    for weight in (0.5, 1.0):
        sink = list_sink(512, 512)
        source = frames_source(moving(16))
        cartoonize(source, [sink], invert_engine(), VideoConfig(cartoon_weight=weight, batch_size=2))
        outputs[weight] = [f.result.astype(int) for f in sink.frames]
    trail = [np.abs(a - b).mean() for a, b in zip(outputs[0.5], outputs[1.0], strict=True)]
    assert max(trail) < 1.0  # 0-255, whole frame: the smoothed face sits where the face is
    assert np.abs(outputs[1.0][8] - moving(16)[8].image).mean() > 5  # and the face was changed


def _moving_crops(astronaut: np.ndarray, step: float, count: int) -> list[np.ndarray]:
    import cv2

    crops = []
    for i in range(count):
        move = np.float32([[1, 0, -100 - step * i], [0, 1, -40]])
        crops.append(cv2.warpAffine(astronaut, move, (256, 256), flags=cv2.INTER_LINEAR))
    return crops


def test_cartoon_smoother_carries_its_history_along_the_input_flow(astronaut: np.ndarray) -> None:
    """Content sliding 3 px a frame inside the crop (a turn the crop does not follow): with the
    flow, the smoothed cartoon stays on the new one; a plain EMA of the same strength trails."""
    crops = _moving_crops(astronaut, 3.0, 8)
    errors = {}
    for flow in ("fine", "balanced", None):
        smoother = CartoonSmoother(min_weight=0.15, motion_scale=1000.0, flow=flow)
        for crop in crops:
            out = smoother.blend(crop, 255.0 - crop.astype(np.float32))  # the "cartoon": the negative
        errors[flow] = np.abs(out - (255.0 - crops[-1]))[32:-32, 32:-32].mean()
    assert errors["fine"] < 4.0  # 0-255, away from the borders the flow cannot see past
    assert errors["balanced"] < 4.0  # the live path's quality follows it too
    assert errors[None] > 3 * max(errors["fine"], errors["balanced"])


def test_a_smoother_changes_flow_quality_between_crops(astronaut: np.ndarray) -> None:
    """A busy live run coarsens the flow mid-track: the same smoother goes on with the new quality."""
    crops = _moving_crops(astronaut, 3.0, 4)
    smoother = CartoonSmoother(min_weight=0.15, motion_scale=1000.0, flow="balanced")
    for index, crop in enumerate(crops):
        if index == 2:
            smoother.flow = "coarse"
        out = smoother.blend(crop, 255.0 - crop.astype(np.float32))
    assert np.abs(out - (255.0 - crops[-1]))[32:-32, 32:-32].mean() < 6.0
    with pytest.raises(ValueError, match="flow must be one of"):
        smoother.flow = "sharp"


def test_cartoon_smoother_on_tensors_matches_numpy(astronaut: np.ndarray) -> None:
    import torch

    crops = _moving_crops(astronaut, 2.0, 3)
    on_host, on_tensor = CartoonSmoother(), CartoonSmoother()
    for crop in crops:
        cartoon = (255.0 - crop).astype(np.float32)
        host = on_host.blend(crop, cartoon)
        tensor = on_tensor.blend(crop, torch.from_numpy(cartoon).permute(2, 0, 1).contiguous())
    gap = np.abs(tensor.permute(1, 2, 0).numpy() - host)
    # OpenCV's remap weighs in 1/32 steps, grid_sample exactly: they part a little at sharp edges.
    assert gap.mean() < 0.1 and gap.max() < 8
