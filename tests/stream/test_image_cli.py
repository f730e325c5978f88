"""p2c-image and the image files it reads and writes, as a user would run them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from p2c.errors import InputNotFoundError, InvalidInputError, OutputError
from p2c.stream.commands import image as image_command
from p2c.stream.image_io import read_image, write_image

# ---------------------------------------------------------------------------------------------
# image_io


def test_builtin_astronaut() -> None:
    image = read_image("builtin:astronaut")
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8


def test_unknown_builtin_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInputError, match="builtin:astronaut"):
        read_image("builtin:nobody")


def test_webp_under_a_jpg_name_is_read_by_content(tmp_path: Path, astronaut: np.ndarray) -> None:
    ok, data = cv2.imencode(
        ".webp", cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_WEBP_QUALITY, 101]
    )
    assert ok
    path = tmp_path / "photo.jpg"
    path.write_bytes(data.tobytes())
    np.testing.assert_array_equal(read_image(path), astronaut)  # quality 101 = lossless


def test_grayscale_and_transparent_images_become_rgb(tmp_path: Path) -> None:
    gray = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (5, 1))
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    rgb = read_image(tmp_path / "gray.png")
    assert rgb.shape == (5, 25, 3)
    np.testing.assert_array_equal(rgb[..., 1], gray)

    bgra = np.zeros((4, 4, 4), dtype=np.uint8)
    bgra[..., 2] = 200  # red
    bgra[:2, ..., 3] = 255  # top half opaque, bottom half transparent
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    rgb = read_image(tmp_path / "rgba.png")
    np.testing.assert_array_equal(rgb[0, 0], [200, 0, 0])
    np.testing.assert_array_equal(rgb[3, 3], [255, 255, 255])


def test_exif_orientation_is_applied(tmp_path: Path, astronaut: np.ndarray) -> None:
    from PIL import Image

    wide = np.ascontiguousarray(astronaut[:200])  # 200 x 512 as stored in the file
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display", as phones write portrait shots
    Image.fromarray(wide).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    shown = read_image(tmp_path / "phone.jpg")
    assert shown.shape == (512, 200, 3)
    assert np.abs(shown.astype(int) - np.rot90(wide, k=-1)).mean() < 4


def test_missing_and_unreadable_inputs(tmp_path: Path, rng: np.random.Generator) -> None:
    with pytest.raises(InputNotFoundError, match=r"nothere\.png"):
        read_image(tmp_path / "nothere.png")
    junk = tmp_path / "junk.png"
    junk.write_bytes(rng.integers(0, 256, 1000, dtype=np.uint8).tobytes())
    with pytest.raises(InvalidInputError, match=r"junk\.png"):
        read_image(junk)


def test_write_round_trip_and_missing_folder(tmp_path: Path, astronaut: np.ndarray) -> None:
    write_image(tmp_path / "a.png", astronaut)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), astronaut)
    write_image(tmp_path / "a.JPG", astronaut)
    assert np.abs(read_image(tmp_path / "a.JPG").astype(int) - astronaut).mean() < 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.JPG", "a.png"]  # no temp files left
    with pytest.raises(OutputError, match="nofolder"):
        write_image(tmp_path / "nofolder" / "a.png", astronaut)
    with pytest.raises(OutputError, match=r"\.png"):
        write_image(tmp_path / "a.gif", astronaut)


# ---------------------------------------------------------------------------------------------
# p2c-image


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = image_command.main(argv)
    return code, capsys.readouterr().err


def _assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("p2c-image: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def weights(tmp_path: Path) -> Iterator[Path]:
    """A random generator saved the way p2c saves models (ngf=8 keeps it fast; 256 px like the crops).

    Torch runs on one thread meanwhile: on a shared 2-core machine, two threads are 20x slower."""
    from p2c.models.generator import ResnetGenerator
    from p2c.models.weights import save_generator

    torch.manual_seed(0)
    save_generator(ResnetGenerator(ngf=8, img_size=256, light=True).eval(), tmp_path / "tiny.safetensors")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path / "tiny.safetensors"
    torch.set_num_threads(threads)


def test_crop_only_writes_the_aligned_crop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "crop.png"
    code, _ = _run(["builtin:astronaut", str(out), "--crop-only"], capsys)
    assert code == 0
    crop = read_image(out)
    assert crop.shape == (256, 256, 3)
    assert crop[:8, :8].min() >= 250  # whitened background


def test_missing_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run([str(tmp_path / "nothere.jpg"), str(tmp_path / "out.png"), "--crop-only"], capsys)
    _assert_one_line_error(code, err, "nothere.jpg")


def test_unreadable_input(
    tmp_path: Path, rng: np.random.Generator, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(rng.integers(0, 256, 2000, dtype=np.uint8).tobytes())
    code, err = _run([str(junk), str(tmp_path / "out.png"), "--crop-only"], capsys)
    _assert_one_line_error(code, err, "junk.png")


def test_image_without_a_face(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blank = tmp_path / "blank.png"
    write_image(blank, np.full((300, 400, 3), 180, dtype=np.uint8))
    code, err = _run([str(blank), str(tmp_path / "out.png"), "--crop-only"], capsys)
    _assert_one_line_error(code, err, "no face")
    assert not (tmp_path / "out.png").exists()


def test_missing_output_folder_fails_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(["builtin:astronaut", str(tmp_path / "nope" / "out.png"), "--crop-only"], capsys)
    _assert_one_line_error(code, err, "nope")


def test_weights_that_are_not_a_generator(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "weights.pt"
    bad.write_text("not a model\n")
    code, err = _run(["builtin:astronaut", str(tmp_path / "out.png"), "--weights", str(bad)], capsys)
    _assert_one_line_error(code, err)
    assert not (tmp_path / "out.png").exists()


def test_no_weights_and_no_default_model_says_so_before_detection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_detection(*args: object, **kwargs: object) -> None:
        raise AssertionError("detection ran although no model can be loaded")

    from p2c.models.weights import default_weights_path

    if default_weights_path() is not None:
        pytest.skip("a default model ships with this version")
    monkeypatch.setattr(image_command, "FaceAligner", no_detection)
    code, err = _run(["builtin:astronaut", str(tmp_path / "out.png")], capsys)
    _assert_one_line_error(code, err, "--weights")


def test_default_mode_writes_the_256_cartoon(
    tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cartoon.png"
    code, err = _run(["builtin:astronaut", str(out), "--weights", str(weights)], capsys)
    assert code == 0, err
    cartoon = read_image(out)
    assert cartoon.shape == (256, 256, 3)
    assert cartoon[:8, :8].min() >= 250  # photo2cartoon's post-process: white outside the head


def test_composite_keeps_the_photo_size(
    tmp_path: Path, weights: Path, astronaut: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "composite.jpg"
    code, err = _run(["builtin:astronaut", str(out), "--composite", "--weights", str(weights)], capsys)
    assert code == 0, err
    result = read_image(out)
    assert result.shape == astronaut.shape
    # The face changed; the rocket in the top right corner did not (beyond JPEG noise).
    assert np.abs(result[120:200, 180:260].astype(int) - astronaut[120:200, 180:260]).mean() > 10
    assert np.abs(result[:100, 400:].astype(int) - astronaut[:100, 400:]).mean() < 3


class _CountingEngine:
    name = "counting"

    def __init__(self) -> None:
        self.batches: list[tuple[int, ...]] = []

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(batch.shape)
        return -batch

    def close(self) -> None:
        pass


def test_composite_sends_all_faces_as_one_batch(
    tmp_path: Path, shared_photos: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    left = read_image("builtin:astronaut")
    right = cv2.resize(read_image(shared_photos / "photo_0003.jpg"), (450, 300), interpolation=cv2.INTER_AREA)
    both = np.full((512, 1000, 3), 128, dtype=np.uint8)
    both[:, :512] = left
    both[100:400, 540:990] = right
    write_image(tmp_path / "two.png", both)
    engine = _CountingEngine()
    monkeypatch.setattr(image_command, "create_engine", lambda weights, config: engine)
    code, err = _run([str(tmp_path / "two.png"), str(tmp_path / "out.png"), "--composite"], capsys)
    assert code == 0, err
    assert engine.batches == [(2, 3, 256, 256)]
    code, err = _run(
        [str(tmp_path / "two.png"), str(tmp_path / "out.png"), "--composite", "--max-faces", "1"], capsys
    )
    assert engine.batches[-1] == (1, 3, 256, 256)


def test_bad_max_faces_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        image_command.main(["builtin:astronaut", str(tmp_path / "o.png"), "--max-faces", "0"])
    assert exit_info.value.code != 0
    assert "--max-faces" in capsys.readouterr().err


def test_command_line_error_has_no_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "p2c.stream.commands.image",
            str(tmp_path / "nothere.png"),
            str(tmp_path / "o.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"p2c-image: error: input image {tmp_path / 'nothere.png'} does not exist; check the path"
    ]
