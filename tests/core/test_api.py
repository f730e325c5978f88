"""p2c.Cartoonizer: the same pixels as the commands, from a path, a PIL image or an array."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

import p2c
from p2c.errors import InputNotFoundError, InvalidInputError, NoFaceError, OutputError, WeightsError
from p2c.stream.commands import image as image_command
from p2c.stream.image_io import read_image

# The torch backend on the CPU, as the command runs it below: same engine, same pixels.
ENGINE = ["--backend", "torch", "--device", "cpu"]


@pytest.fixture(scope="module")
def cartoonizer(tiny_weights: Path) -> Iterator[p2c.Cartoonizer]:
    """One Cartoonizer for the module, on one torch thread (two are 20x slower on a shared 2-core box)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with p2c.Cartoonizer(weights=tiny_weights, backend="torch", device="cpu") as cartoonizer:
        yield cartoonizer
    torch.set_num_threads(threads)


def test_portrait_is_exactly_what_p2c_image_writes(
    cartoonizer: p2c.Cartoonizer, tiny_weights: Path, astronaut: np.ndarray, tmp_path: Path
) -> None:
    out = tmp_path / "cartoon.png"
    assert image_command.main(["builtin:astronaut", str(out), "--weights", str(tiny_weights), *ENGINE]) == 0
    portrait = cartoonizer.portrait(astronaut)
    assert portrait.shape == (256, 256, 3) and portrait.dtype == np.uint8
    np.testing.assert_array_equal(portrait, read_image(out))
    # The same picture as a path and as a PIL image gives the same cartoon.
    np.testing.assert_array_equal(cartoonizer.portrait("builtin:astronaut"), portrait)
    np.testing.assert_array_equal(cartoonizer.portrait(Image.fromarray(astronaut)), portrait)


def test_composite_is_what_p2c_image_composite_writes(
    cartoonizer: p2c.Cartoonizer, tiny_weights: Path, astronaut: np.ndarray, tmp_path: Path
) -> None:
    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    out = tmp_path / "composite.png"
    argv = [str(path), str(out), "--composite", "--weights", str(tiny_weights), *ENGINE]
    assert image_command.main(argv) == 0
    result = cartoonizer.composite(path)
    assert result.shape == astronaut.shape and result.dtype == np.uint8
    np.testing.assert_array_equal(result, read_image(out))
    assert np.abs(result[120:200, 180:260].astype(int) - astronaut[120:200, 180:260]).mean() > 10
    np.testing.assert_array_equal(result[:100, 400:], astronaut[:100, 400:])  # far from the face


def test_a_transparent_pil_image_is_laid_on_white(cartoonizer: p2c.Cartoonizer) -> None:
    from p2c.api import load_image

    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top half opaque red, bottom half transparent
    pixels, _ = load_image(Image.fromarray(rgba, mode="RGBA"))
    np.testing.assert_array_equal(pixels[0, 0], [200, 0, 0])
    np.testing.assert_array_equal(pixels[3, 3], [255, 255, 255])


def test_video_is_p2c_video(cartoonizer: p2c.Cartoonizer, talking_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    stats = cartoonizer.video(talking_clip, out, duration=0.2, side_by_side=True)
    assert stats.frames_out == 5 and stats.faces == 5
    with av.open(str(out)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 5 and frames[0].shape == (512, 1024, 3)


def test_errors_are_the_commands_one_line_errors(
    cartoonizer: p2c.Cartoonizer, tiny_weights: Path, talking_clip: Path, tmp_path: Path
) -> None:
    with pytest.raises(NoFaceError, match="no face found in the image"):
        cartoonizer.portrait(np.full((200, 300, 3), 180, np.uint8))
    with pytest.raises(InputNotFoundError, match=r"nothere\.jpg does not exist"):
        cartoonizer.composite(tmp_path / "nothere.jpg")
    with pytest.raises(InvalidInputError, match=r"RGB uint8 .* got float32 \(4, 4\)"):
        cartoonizer.portrait(np.zeros((4, 4), np.float32))
    with pytest.raises(OutputError, match="output folder"):
        cartoonizer.video(talking_clip, tmp_path / "no" / "out.mp4")
    with pytest.raises(OutputError, match="is the input"):
        cartoonizer.video(talking_clip, talking_clip)
    with pytest.raises(InvalidInputError, match="invalid engine option: backend must be one of"):
        p2c.Cartoonizer(weights=tiny_weights, backend="nope")


def test_no_weights_and_no_default_model_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("p2c.engine.registry.default_weights_path", lambda: None)
    with pytest.raises(WeightsError, match="no default model ships with this version"):
        p2c.Cartoonizer()


def test_import_p2c_stays_light() -> None:
    """``import p2c`` (as every p2c module does) loads neither the API nor torch until asked."""
    code = (
        "import sys, p2c; assert 'p2c.api' not in sys.modules and 'torch' not in sys.modules; "
        "p2c.Cartoonizer; assert 'p2c.api' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
