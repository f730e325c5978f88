"""The default generator inside the package: found when it ships, a one-line error while it does not.

The identity threshold (``ASTRONAUT_IDENTITY``) comes from measurements with the default Face ID
network (the dlib port) recorded in docs/default-model.md: the astronaut's aligned crop scores at
most 0.906 against any of 203 unrelated cartoons (photo2cartoon's set) and at most 0.892 against 40
photos of other people, and 0.942 against a crude hand-made stylisation of itself (flat colours
and edges; slight shifts, scaling, blur and brightness keep it above 0.993). A cartoon above 0.92
is therefore closer to the astronaut than any unrelated face, with a margin.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from p2c.models import weights as weights_module
from p2c.models.weights import default_weights_path, load_generator

ASTRONAUT_IDENTITY = 0.92
NOT_SHIPPED = "no default model in this checkout (src/p2c/models/default/)"


def test_default_path_is_none_while_the_file_is_absent_and_found_once_it_ships(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_generator
) -> None:
    monkeypatch.setattr(weights_module, "_DEFAULT_DIR", tmp_path)
    assert default_weights_path() is None
    weights_module.save_generator(tiny_generator, tmp_path / "p2c_default.safetensors")
    assert default_weights_path() == tmp_path / "p2c_default.safetensors"


def test_the_default_lives_inside_the_installed_package() -> None:
    import p2c.models

    expected = Path(p2c.models.__file__).resolve().parent / "default" / "p2c_default.safetensors"
    assert expected == weights_module._DEFAULT_DIR / "p2c_default.safetensors"


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("p2c.stream.commands.image", ["builtin:astronaut", "{tmp}/out.png"]),
        ("p2c.stream.commands.video", ["{tmp}/in.mp4", "{tmp}/out.mp4"]),
        ("p2c.stream.commands.live", ["--camera", "0", "--preview"]),
    ],
)
def test_without_a_default_every_command_says_so_in_one_line(
    command: str,
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import importlib

    import cv2

    def no_camera(*_: object) -> None:
        raise AssertionError("the camera must not be opened without weights")

    monkeypatch.setattr(weights_module, "_DEFAULT_DIR", tmp_path / "nothing")
    monkeypatch.setattr(cv2, "VideoCapture", no_camera)
    (tmp_path / "in.mp4").write_bytes(b"\x00" * 64)
    main = importlib.import_module(command).main
    code = main([arg.format(tmp=tmp_path) for arg in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err
    assert len(err.splitlines()) == 1 and "no default model ships" in err and "--weights" in err


@pytest.fixture(scope="module")
def shipped() -> Path:
    path = default_weights_path()
    if path is None:
        pytest.skip(NOT_SHIPPED)
    return path


def test_shipped_weights_are_the_small_fp16_compact_generator(shipped: Path) -> None:
    import json

    from safetensors import safe_open

    assert shipped.stat().st_size <= 10_000_000
    assert json.loads(shipped.with_suffix(".json").read_text())["arch"] == "compact"
    with safe_open(str(shipped), framework="pt") as tensors:
        assert {tensors.get_tensor(name).dtype for name in tensors.keys()} == {torch.float16}  # noqa: SIM118
    generator = load_generator(shipped)
    assert generator.config.img_size == 256
    assert sum(p.numel() for p in generator.parameters()) <= 3_000_000  # issue 17's limit


@pytest.mark.slow
def test_shipped_model_cartoonises_the_astronaut_keeping_her_identity(
    shipped: Path, tmp_path: Path, astronaut: np.ndarray
) -> None:
    from p2c.stream.commands.image import main as image_main
    from p2c.stream.faces import FaceAligner
    from p2c.stream.image_io import read_image
    from p2c.training.dataset import to_tensor
    from p2c.training.faceid import load_faceid
    from p2c.training.metrics import identity_similarity

    out = tmp_path / "cartoon.png"
    assert image_main(["builtin:astronaut", str(out)]) == 0  # no --weights: the shipped default
    cartoon = read_image(out)
    with FaceAligner() as aligner:
        photo = aligner.align(astronaut, max_faces=1)[0].crop
    assert cartoon.shape == photo.shape == (256, 256, 3)
    assert np.abs(cartoon.astype(int) - photo.astype(int)).mean() > 10  # it changed the photo
    faceid = load_faceid(None, "cpu")
    with torch.no_grad():
        similarity = identity_similarity(faceid, to_tensor(photo)[None], to_tensor(cartoon)[None]).item()
    assert similarity > ASTRONAUT_IDENTITY
    from p2c.training.gauge.fitting import scores
    from p2c.training.gauge.network import load_gauge

    assert scores(load_gauge(), [cartoon])[0] >= 0.5  # the project's gauge calls it a cartoon
    assert scores(load_gauge(), [photo])[0] < 0.5  # and the photo not
