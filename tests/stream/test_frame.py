from fractions import Fraction

import numpy as np
import pytest

from p2c.stream.frame import Frame


def test_frame_timestamp_and_result_default_to_the_source_image() -> None:
    image = np.zeros((4, 6, 3), np.uint8)
    frame = Frame(index=3, pts=1536, time_base=Fraction(1, 12800), image=image)
    assert frame.timestamp == pytest.approx(0.12)
    assert frame.size == (6, 4)
    assert frame.result is image
    frame.output = image + 1
    assert frame.result is frame.output


def test_frame_in_seconds_is_stored_in_microseconds() -> None:
    frame = Frame.at_seconds(0, 1.5, np.zeros((2, 2, 3), np.uint8))
    assert frame.pts == 1_500_000 and frame.timestamp == pytest.approx(1.5)


@pytest.mark.parametrize("image", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32)])
def test_frame_rejects_non_rgb_uint8(image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        Frame(index=0, pts=0, time_base=Fraction(1, 25), image=image)
