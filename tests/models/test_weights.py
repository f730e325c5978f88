"""Weights on disk: our safetensors round trip, and one clear error for every file that is not a generator."""

from __future__ import annotations

import json
import pickle
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from p2c.errors import InputNotFoundError, WeightsError
from p2c.models.compact import CompactConfig, CompactGenerator
from p2c.models.generator import ResnetGenerator
from p2c.models.onnx import export_onnx
from p2c.models.weights import (
    FORMAT_TAG,
    default_weights_path,
    detect_format,
    load_generator,
    read_config,
    save_generator,
    sidecar_path,
)


def _outputs(generator: ResnetGenerator | CompactGenerator, seed: int = 0) -> torch.Tensor:
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    with torch.inference_mode():
        return generator(x).image


def test_safetensors_round_trip_is_fp16_on_disk_and_fp32_loaded(tmp_path: Path, tiny_generator) -> None:
    path = save_generator(tiny_generator, tmp_path / "model")
    assert path == tmp_path / "model.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        assert handle.get_tensor("ConvBlock1.1.weight").dtype == torch.float16
    loaded = load_generator(path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    assert loaded.config == tiny_generator.config
    # FP16 storage rounds each weight by <= 2**-11 relative; the images stay close (PSNR on a [-1, 1] range).
    mse = torch.mean((_outputs(loaded) - _outputs(tiny_generator)) ** 2).item()
    assert 10 * np.log10(4.0 / mse) > 40
    assert detect_format(path) == "safetensors"


def test_fp32_save_is_exact(tmp_path: Path, tiny_generator) -> None:
    loaded = load_generator(
        save_generator(tiny_generator, tmp_path / "exact.safetensors", dtype=torch.float32)
    )
    assert torch.equal(_outputs(loaded), _outputs(tiny_generator))


def test_sidecar_holds_the_config_and_format_tag(tmp_path: Path) -> None:
    generator = ResnetGenerator(ngf=8, img_size=128, light=True)
    save_generator(generator, tmp_path / "m.safetensors")
    meta = json.loads((tmp_path / "m.json").read_text())
    assert meta["format"] == FORMAT_TAG
    assert meta["arch"] == "photo2cartoon"
    assert meta["config"] == {"ngf": 8, "img_size": 128, "light": True}
    assert load_generator(tmp_path / "m.safetensors").config.img_size == 128


def test_atomic_write_leaves_only_the_two_files(tmp_path: Path, tiny_generator) -> None:
    save_generator(tiny_generator, tmp_path / "m.safetensors")
    save_generator(tiny_generator, tmp_path / "m.safetensors")  # overwriting is atomic too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]


def test_saving_into_a_missing_folder_names_it(tmp_path: Path, tiny_generator) -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        save_generator(tiny_generator, tmp_path / "missing" / "m.safetensors")


def test_bare_state_dict_loads(tmp_path: Path, tiny_generator) -> None:
    torch.save(tiny_generator.state_dict(), tmp_path / "bare.pt")
    assert torch.equal(_outputs(load_generator(tmp_path / "bare.pt")), _outputs(tiny_generator))


def test_the_config_is_read_without_loading_the_weights(tmp_path: Path, tiny_generator) -> None:
    saved = save_generator(tiny_generator, tmp_path / "m")
    assert read_config(saved) == tiny_generator.config  # from the sidecar: 64 px
    torch.save(
        {"genA2B": ResnetGenerator(ngf=8, img_size=64, light=False).state_dict()}, tmp_path / "full.pt"
    )
    assert read_config(tmp_path / "full.pt").img_size == 64  # from the FC layer's shape
    export_onnx(tiny_generator, tmp_path / "m.onnx")
    with pytest.raises(WeightsError, match="no generator config"):
        read_config(tmp_path / "m.onnx")


def test_default_weights_path_is_none_until_a_model_ships() -> None:
    path = default_weights_path()
    assert path is None or path.is_file()


class _NotWeights:
    pass


def _write_case(case: str, folder: Path, generator: ResnetGenerator) -> Path:
    """Write one kind of wrong weights file; returns its path."""
    if case == "wrong keys":
        path = folder / "discriminator.pt"
        torch.save({"disGA": OrderedDict(weight=torch.zeros(2))}, path)
    elif case == "pickled object":
        path = folder / "object.pt"
        with path.open("wb") as stream:
            pickle.dump({"genA2B": _NotWeights()}, stream)
    elif case == "pickled object (zip)":
        path = folder / "object_zip.pt"
        torch.save({"genA2B": _NotWeights()}, path)
    elif case == "text named .pt":
        path = folder / "notes.pt"
        path.write_text("these are not weights\n")
    elif case == "image":
        import cv2

        path = folder / "photo.png"
        cv2.imwrite(str(path), np.zeros((8, 8, 3), np.uint8))
    elif case == "wrong shapes":
        path = folder / "shapes.pt"
        state = generator.state_dict()
        state["gap_fc.weight"] = torch.zeros(1, 5)
        torch.save({"genA2B": state}, path)
    elif case == "missing tensor":
        path = folder / "partial.pt"
        state = generator.state_dict()
        del state["gap_fc.weight"]
        torch.save(state, path)
    elif case == "safetensors without sidecar":
        path = save_generator(generator, folder / "lonely.safetensors")
        (folder / "lonely.json").unlink()
    elif case == "non-generator onnx":
        path = folder / "classifier.onnx"
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
        with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.zeros(1, 3, 2, 2),), str(path), dynamo=False)
    else:
        raise AssertionError(case)
    return path


BAD_CASES = [
    "wrong keys",
    "pickled object",
    "pickled object (zip)",
    "text named .pt",
    "image",
    "wrong shapes",
    "missing tensor",
    "safetensors without sidecar",
    "non-generator onnx",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_wrong_weights_give_one_sentence_naming_the_file(case: str, tmp_path: Path, tiny_generator) -> None:
    path = _write_case(case, tmp_path, tiny_generator)
    with pytest.raises(WeightsError) as caught:
        load_generator(path)
    message = str(caught.value)
    assert str(path) in message
    assert "\n" not in message


def test_missing_file_is_input_not_found_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.pt"
    for call in (load_generator, detect_format):
        with pytest.raises(InputNotFoundError, match=r"nowhere\.pt"):
            call(path)
    with pytest.raises(FileNotFoundError):  # the built-in a caller would catch
        load_generator(path)


def test_onnx_file_is_detected_and_refused_as_torch_module(tmp_path: Path, tiny_generator) -> None:
    path = export_onnx(tiny_generator, tmp_path / "g.onnx")
    assert detect_format(path) == "onnx"
    with pytest.raises(WeightsError, match="onnxruntime"):
        load_generator(path)


# --- the compact generator ------------------------------------------------------------------------


def test_compact_safetensors_round_trip_names_the_arch_and_is_exact(tmp_path: Path, tiny_compact) -> None:
    path = save_generator(tiny_compact, tmp_path / "compact", dtype=torch.float32)
    meta = json.loads((tmp_path / "compact.json").read_text())
    assert meta["arch"] == "compact"
    assert meta["config"] == {
        "img_size": 64,
        "widths": [8, 16, 24],
        "blocks": 2,
        "expand": 2,
        "head": "bilinear",
        "sharpen": False,
    }
    assert detect_format(path) == "safetensors"
    assert read_config(path) == tiny_compact.config
    loaded = load_generator(path)
    assert isinstance(loaded, CompactGenerator) and not loaded.training
    assert loaded.config == tiny_compact.config
    assert torch.equal(_outputs(loaded), _outputs(tiny_compact))


def test_compact_fp16_safetensors_stays_close(tmp_path: Path, tiny_compact) -> None:
    loaded = load_generator(save_generator(tiny_compact, tmp_path / "compact"))
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    mse = torch.mean((_outputs(loaded) - _outputs(tiny_compact)) ** 2).item()
    assert 10 * np.log10(4.0 / mse) > 40


@pytest.mark.parametrize("layout", ["bare state dict", "under genA2B"])
def test_compact_pt_loads_with_its_config_read_off_the_shapes(
    layout: str, tmp_path: Path, tiny_compact
) -> None:
    path = tmp_path / "compact.pt"
    state = tiny_compact.state_dict()
    torch.save(state if layout == "bare state dict" else {"genA2B": state, "genB2A": state}, path)
    assert detect_format(path) == "pt"
    # A .pt holds no image size: the compact generator is fully convolutional, 256 (the crop) is used.
    expected = CompactConfig(img_size=256, widths=(8, 16, 24), blocks=2, expand=2)
    assert read_config(path) == expected
    loaded = load_generator(path)
    assert isinstance(loaded, CompactGenerator) and loaded.config == expected
    assert torch.equal(_outputs(loaded), _outputs(tiny_compact))


def test_a_sidecar_without_arch_is_photo2cartoon_as_before(tmp_path: Path, tiny_generator) -> None:
    path = save_generator(tiny_generator, tmp_path / "old", dtype=torch.float32)
    meta = json.loads(sidecar_path(path).read_text())
    del meta["arch"]  # what p2c wrote before generators had architectures
    sidecar_path(path).write_text(json.dumps(meta))
    loaded = load_generator(path)
    assert isinstance(loaded, ResnetGenerator) and loaded.config == tiny_generator.config
    assert torch.equal(_outputs(loaded), _outputs(tiny_generator))


def _one_line_error(path: Path, names: Path | None = None) -> str:
    """The message of loading ``path``: one line naming ``names`` (default: ``path``)."""
    with pytest.raises(WeightsError) as caught:
        load_generator(path)
    message = str(caught.value)
    assert str(names or path) in message and "\n" not in message
    return message


def test_a_compact_safetensors_with_a_wrong_shape_is_refused_in_one_line(
    tmp_path: Path, tiny_compact
) -> None:
    from safetensors.torch import load_file, save_file

    path = save_generator(tiny_compact, tmp_path / "compact")
    tensors = load_file(str(path))
    tensors["enc1.weight"] = torch.zeros(16, 4, 3, 3, dtype=torch.float16)  # the sidecar says 8 inputs
    save_file(tensors, str(path))
    message = _one_line_error(path)
    assert "compact" in message and "enc1.weight" in message


def test_a_sidecar_naming_another_architecture_than_the_weights_is_refused(
    tmp_path: Path, tiny_compact
) -> None:
    path = save_generator(tiny_compact, tmp_path / "compact")
    meta = json.loads(sidecar_path(path).read_text())
    meta["arch"], meta["config"] = "photo2cartoon", {"ngf": 8, "img_size": 64, "light": True}
    sidecar_path(path).write_text(json.dumps(meta))
    assert "photo2cartoon" in _one_line_error(path)


def test_an_unknown_architecture_in_the_sidecar_is_one_line(tmp_path: Path, tiny_compact) -> None:
    path = save_generator(tiny_compact, tmp_path / "compact")
    meta = json.loads(sidecar_path(path).read_text())
    meta["arch"] = "stylegan"
    sidecar_path(path).write_text(json.dumps(meta))
    message = _one_line_error(path, names=sidecar_path(path))  # the sidecar is at fault
    assert "'stylegan'" in message and "photo2cartoon, compact" in message
