"""The halo and seam measures see a bright ring and a tone step, and only those."""

from __future__ import annotations

import numpy as np
import pytest

from p2c.stream.paste_quality import measure_paste, skin_pixels

DARK = (40, 40, 40)
HAIR = (45, 40, 38)
SKIN = (200, 150, 120)  # inside Chai and Ngan's skin box
# The crop is the frame's 256 x 256 square at (72, 40), at scale 1.
TRANSFORM = np.array([[1.0, 0.0, -72.0], [0.0, 1.0, -40.0]])


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """A 400 x 400 photo of a person on a dark background, and the head mask of its crop: a round
    head of hair, and a skin-coloured body that goes on past the crop's bottom edge."""
    rows, cols = np.mgrid[0:400, 0:400]
    head = np.hypot(rows - 150, cols - 200) < 70
    body = (rows >= 200) & (np.abs(cols - 200) < 68)
    photo = np.empty((400, 400, 3), np.uint8)
    photo[...] = DARK
    photo[head] = HAIR
    photo[body] = SKIN
    mask = (head | body)[40:296, 72:328].astype(np.float32)
    return photo, mask


def _ring(outside_from: float, outside_to: float) -> np.ndarray:
    rows, cols = np.mgrid[0:400, 0:400]
    distance = np.hypot(rows - 150, cols - 200) - 70
    return (distance >= outside_from) & (distance < outside_to) & (rows < 190)


def test_the_synthetic_body_is_skin_and_the_rest_is_not() -> None:
    photo, _ = _scene()
    assert (
        skin_pixels(photo)[350, 200] and not skin_pixels(photo)[150, 200] and not skin_pixels(photo)[10, 10]
    )


def test_a_photo_left_as_it_was_has_no_halo_and_no_seam() -> None:
    photo, mask = _scene()
    edges = measure_paste(photo, photo.copy(), TRANSFORM, mask)
    assert edges.halo_pixels > 500 and edges.seam_profiles > 50
    assert edges.outside_excess_l == 0 and edges.glow_share == 0 and edges.white_share == 0
    assert edges.handover_step == 0 and edges.body_handover_step == 0 and edges.edge_step == 0
    assert edges.seam_step == pytest.approx(edges.photo_seam_step)


def test_a_white_ring_outside_the_head_is_a_halo() -> None:
    photo, mask = _scene()
    composite = photo.copy()
    composite[_ring(0, 4)] = (250, 250, 250)
    edges = measure_paste(photo, composite, TRANSFORM, mask)
    assert edges.outside_excess_l > 20 and edges.glow_share > 0.3
    assert edges.handover_step == 0  # the body's seam is untouched


def test_a_white_fringe_inside_the_head_is_counted_where_the_photo_is_not_white() -> None:
    photo, mask = _scene()
    composite = photo.copy()
    composite[_ring(-3, 0)] = (252, 252, 252)
    edges = measure_paste(photo, composite, TRANSFORM, mask)
    assert edges.white_share > 0.3 and edges.outside_excess_l < 1


def test_paler_skin_inside_the_crop_is_a_seam() -> None:
    """A pasted crop whose skin is 40 levels paler than the photo's, ending at the crop's edge."""
    photo, mask = _scene()
    composite = photo.copy()
    crop = composite[40:296, 72:328]
    crop[mask[..., None].repeat(3, axis=2) > 0] = np.clip(crop[mask > 0].astype(int) + 40, 0, 255).ravel()
    edges = measure_paste(photo, composite, TRANSFORM, mask)
    assert edges.handover_step > 10 and edges.body_handover_step > 10
    assert edges.edge_step == pytest.approx(edges.handover_step)  # the step is at the crop's edge
    assert edges.photo_seam_step < 1  # the photo's skin is flat there
    assert edges.outside_excess_l < 1


def test_a_crop_outside_the_photo_has_nothing_to_measure() -> None:
    photo, mask = _scene()
    away = TRANSFORM.copy()
    away[:, 2] = [5000.0, 5000.0]
    edges = measure_paste(photo, photo.copy(), away, mask)
    assert edges.halo_pixels == 0 and edges.seam_profiles == 0 and np.isnan(edges.handover_step)


def test_photo_and_composite_must_match() -> None:
    photo, mask = _scene()
    with pytest.raises(ValueError, match="differ in shape"):
        measure_paste(photo, photo[:100], TRANSFORM, mask)


# ---------------------------------------------------------------------------------------------
# The astronaut, with the shipped model: the paste keeps under thresholds the paste before failed.

# Measured on the astronaut (docs/face-path.md), before -> after the fix: with the model shipped at
# step 17,299, 2.63 -> 0.36 L*, 4.0 % -> 0.0 % and 10.2 -> 4.8; at step 22,549, 2.62 -> 0.35 L*,
# 4.0 % -> 0.3 % and 6.3 -> 3.2; at step 32,278 (unsharp amount 1.6), 2.53 -> 0.26 L*,
# 3.8 % -> 0.2 % and 5.1 -> 2.9 (the edge-step limit moved from 5.5 to 4.5 for it). A new model
# may move them: measure again before moving these.
MAX_OUTSIDE_EXCESS_L = 1.0
MAX_GLOW_SHARE = 0.01
MAX_BODY_EDGE_STEP = 4.5


def _legacy_paste():
    """The paste before the fix, kept by benchmarks/paste_quality.py to compare."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "paste_quality.py"
    spec = importlib.util.spec_from_file_location("paste_quality_benchmark", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.legacy_paste_cartoons


@pytest.mark.slow
def test_the_astronauts_cartoon_neither_glows_nor_shows_the_crops_edge(astronaut: np.ndarray) -> None:
    from p2c.engine import EngineConfig, create_engine
    from p2c.models.weights import default_weights_path
    from p2c.stream.compositing import paste_cartoons
    from p2c.stream.faces import FaceAligner
    from p2c.stream.stills import cartoon_faces

    if default_weights_path() is None:
        pytest.skip("no default model ships yet")
    engine = create_engine(None, EngineConfig())
    try:
        with FaceAligner() as aligner:
            faces = aligner.align(astronaut, max_faces=1)
        cartoons = cartoon_faces(engine, faces)
    finally:
        engine.close()
    (face,) = faces

    def edges(paste) -> tuple[float, float, float]:
        measured = measure_paste(astronaut, paste(astronaut, faces, cartoons), face.transform, face.mask)
        assert measured.halo_pixels > 1000 and measured.body_profiles > 50
        return measured.outside_excess_l, measured.glow_share, measured.body_edge_step

    limits = (MAX_OUTSIDE_EXCESS_L, MAX_GLOW_SHARE, MAX_BODY_EDGE_STEP)
    now, before = edges(paste_cartoons), edges(_legacy_paste())
    assert all(value < limit for value, limit in zip(now, limits, strict=True)), now
    # The thresholds mean something: the paste before the fix fails each of them.
    assert all(value > limit for value, limit in zip(before, limits, strict=True)), before
