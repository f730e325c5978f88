"""Generator weights on disk: photo2cartoon's released ``.pt``, our ``.safetensors`` + JSON, ONNX exports.

Formats, told apart by their bytes rather than by their names:

- ``pt``: a ``torch.save`` file, either photo2cartoon's checkpoint ``{"genA2B": state_dict, "genB2A": ...,
  "disGA": ...}``, one of our training checkpoints holding ``"genA2B"``, or a bare generator state dict.
  Always read with ``weights_only=True``: a checkpoint is data, never code. The architecture is told
  by the state dict's keys and its config inferred from the tensors' shapes.
- ``safetensors``: what p2c writes (FP16 by default) with ``X.json`` beside ``X.safetensors`` holding a
  format tag, the architecture (``"arch"``: ``photo2cartoon`` or ``compact``; a file without it is
  photo2cartoon's, as p2c wrote them before) and its config. Loading casts back to FP32.
- ``onnx``: an export with one image input and one image output (ours or the released one); it runs on
  the onnxruntime backend and cannot be loaded as a PyTorch module.
- ``aoti``: a compiled AOTInductor package (``p2c-export --format aoti``, a ``.pt2`` zip archive) with its
  JSON record beside it; it runs on the inductor backend only, on the kind of device it was built for.
"""

from __future__ import annotations

import json
import logging
import pickle
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch

from p2c.errors import InputNotFoundError, WeightsError
from p2c.files import atomic_path, atomic_write
from p2c.models.architectures import (
    ARCHITECTURES,
    DEFAULT_ARCH,
    Generator,
    ModelConfig,
    arch_of,
    arch_of_keys,
    build_generator,
    config_from_dict,
    describe_config,
)
from p2c.models.generator import CartoonOnly

__all__ = [
    "FORMAT_TAG",
    "WeightsFormat",
    "config_from_state_dict",
    "default_model_card",
    "default_weights_path",
    "detect_format",
    "load_generator",
    "read_config",
    "read_state_dict",
    "save_generator",
    "sidecar_path",
]

log = logging.getLogger(__name__)

WeightsFormat = Literal["pt", "safetensors", "onnx", "aoti"]
FORMAT_TAG = "p2c-generator/1"
DEFAULT_KEY = "genA2B"
_EXPECTED = "a photo2cartoon .pt checkpoint, a p2c .safetensors file (with its .json) or an .onnx export"
_DEFAULT_DIR = Path(__file__).resolve().parent / "default"


def default_weights_path() -> Path | None:
    """The model that ships inside the package, or None while none ships."""
    path = _DEFAULT_DIR / "p2c_default.safetensors"
    return path if path.is_file() else None


def default_model_card() -> dict[str, Any]:
    """What the shipped model's card says of it (name, training step, the date it passed the gate),
    kept under ``card`` in its JSON beside the weights; {} when none ships or it says nothing."""
    path = default_weights_path()
    if path is None:
        return {}
    try:
        card = json.loads(sidecar_path(path).read_text(encoding="utf-8")).get("card", {})
    except (OSError, ValueError):
        return {}
    return card if isinstance(card, dict) else {}


def sidecar_path(path: str | Path) -> Path:
    """``X.json`` beside ``X.safetensors``: where the model config lives."""
    return Path(path).with_suffix(".json")


def _existing_file(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise InputNotFoundError(f"weights file {path} does not exist; give the path of {_EXPECTED}")
    if not path.is_file():
        raise WeightsError(f"weights path {path} is a folder, expected a file: {_EXPECTED}")
    return path


def _not_a_generator(path: Path, what: str) -> WeightsError:
    return WeightsError(f"{path} is {what}, expected {_EXPECTED}")


def detect_format(path: str | Path) -> WeightsFormat:
    """Which kind of generator file ``path`` is; WeightsError when it is none of them.

    ``.pt`` and ``.safetensors`` files are checked for a generator state dict (cheaply: the
    ``.pt`` is memory-mapped), ONNX files for one image input and one image output.
    """
    path = _existing_file(path)
    with path.open("rb") as stream:
        head = stream.read(16)
    if _is_aoti_package(path):
        return "aoti"
    if zipfile.is_zipfile(path) or head[:1] == b"\x80":  # torch.save: zip archive, or legacy pickle
        _generator_state_dict(_torch_load(path), path, DEFAULT_KEY)
        return "pt"
    if _looks_like_safetensors(head):
        _safetensors_keys_checked(path)
        return "safetensors"
    if path.suffix.lower() == ".onnx" or _is_onnx(path):
        from p2c.models.onnx import onnx_signature

        onnx_signature(path)  # raises WeightsError for an ONNX model that is not an image generator
        return "onnx"
    raise _not_a_generator(path, _describe_bytes(head))


def _is_aoti_package(path: Path) -> bool:
    """A PT2 archive (what AOTInductor writes): a zip whose ``*/archive_format`` says ``pt2``."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = [name for name in archive.namelist() if name.endswith("/archive_format")]
            return bool(names) and archive.read(names[0]).strip() == b"pt2"
    except (OSError, zipfile.BadZipFile):
        return False


def _describe_bytes(head: bytes) -> str:
    if head.startswith(b"\x89PNG") or head.startswith(b"\xff\xd8") or head[8:12] == b"WEBP":
        return "an image"
    if head and all(32 <= byte < 127 or byte in (9, 10, 13) for byte in head):
        return "a text file"
    return "not a generator weights file"


def _looks_like_safetensors(head: bytes) -> bool:
    if len(head) < 9:
        return False
    (header_size,) = struct.unpack("<Q", head[:8])
    return 0 < header_size < 100_000_000 and head[8:9] == b"{"


def _is_onnx(path: Path) -> bool:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return False
    return len(model.graph.node) > 0


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as error:
        raise WeightsError(
            f"{path} holds pickled Python objects, not only tensors, and p2c never runs pickled code "
            f"(torch.load weights_only=True); pass {_EXPECTED}"
        ) from error
    except (RuntimeError, EOFError, ValueError, OSError) as error:
        raise WeightsError(
            f"{path} cannot be read as a PyTorch checkpoint ({error}); pass {_EXPECTED}"
        ) from error


def _generator_state_dict(checkpoint: Any, path: Path, key: str) -> dict[str, torch.Tensor]:
    """The generator state dict inside a loaded checkpoint: under ``key``, or the checkpoint itself."""
    if not isinstance(checkpoint, Mapping):
        raise _not_a_generator(path, f"a checkpoint holding a {type(checkpoint).__name__}, not a state dict")
    if key in checkpoint:
        state = checkpoint[key]
    elif arch_of_keys(_strip_prefix(checkpoint)) is not None:
        state = checkpoint
    else:
        keys = ", ".join(sorted(str(k) for k in checkpoint)[:6])
        raise _not_a_generator(path, f"a checkpoint without a generator under {key!r} (its keys: {keys}...)")
    if not isinstance(state, Mapping) or arch_of_keys(_strip_prefix(state)) is None:
        raise _not_a_generator(path, f"a checkpoint whose {key!r} entry is not a generator state dict")
    state = _strip_prefix(state)
    if not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise _not_a_generator(path, "a state dict holding values that are not tensors")
    return dict(state)


def _strip_prefix(state: Mapping[str, Any]) -> Mapping[str, Any]:
    """Drop the ``module.`` prefix that DistributedDataParallel adds to every key."""
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return state


def config_from_state_dict(state: Mapping[str, torch.Tensor], img_size: int = 256) -> ModelConfig:
    """Infer the generator's architecture (from its keys) and config (from its weights' shapes).

    A fully convolutional generator's ``img_size`` cannot be read off its weights: ``img_size``
    (photo2cartoon's 256 by default) is used. ValueError when ``state`` is no known generator's or
    its shapes make no valid config.
    """
    arch = arch_of_keys(state)
    if arch is None:
        raise ValueError("the state dict holds no known generator's weights")
    try:
        return ARCHITECTURES[arch][0].config_from_state_dict(state, img_size)
    except (KeyError, IndexError) as error:
        raise ValueError(f"the {arch} generator's weights lack {error}") from error


def _config_of(state: Mapping[str, torch.Tensor], path: Path) -> ModelConfig:
    try:
        return config_from_state_dict(state)
    except ValueError as error:
        raise _not_a_generator(
            path, f"a state dict from which no generator config follows ({error})"
        ) from error


def read_state_dict(path: str | Path, key: str = DEFAULT_KEY) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """The FP32 generator state dict and config stored in a ``.pt`` or ``.safetensors`` file."""
    path = _existing_file(path)
    kind = detect_format(path)
    if kind == "onnx":
        raise WeightsError(
            f"{path} is an ONNX export: it runs on the onnxruntime backend (--backend onnxruntime) but "
            "cannot be loaded as a PyTorch generator; pass a .pt or .safetensors file for that"
        )
    if kind == "aoti":
        raise WeightsError(
            f"{path} is a compiled AOTInductor package: it runs on the inductor backend (--backend inductor) "
            "but cannot be loaded as a PyTorch generator; pass a .pt or .safetensors file for that"
        )
    if kind == "safetensors":
        return _read_safetensors(path)
    state = _generator_state_dict(_torch_load(path), path, key)
    state = {name: tensor.float() if tensor.is_floating_point() else tensor for name, tensor in state.items()}
    return state, _config_of(state, path)


def read_config(path: str | Path, key: str = DEFAULT_KEY) -> ModelConfig:
    """The generator config of a ``.pt`` or ``.safetensors`` file without loading its weights: the
    sidecar of a safetensors file, the tensor shapes of a memory-mapped ``.pt``."""
    path = _existing_file(path)
    kind = detect_format(path)
    if kind == "safetensors":
        return _read_sidecar(path)
    if kind != "pt":
        raise WeightsError(f"{path} is an {kind} file, which holds no generator config; pass {_EXPECTED}")
    return _config_of(_generator_state_dict(_torch_load(path), path, key), path)


def load_generator(path: str | Path, key: str = DEFAULT_KEY) -> Generator:
    """The generator in ``path`` (of the architecture it holds) in eval mode, FP32 on the CPU, its
    weights loaded strictly."""
    state, config = read_state_dict(path, key)
    generator = build_generator(arch_of(config), config)
    try:
        generator.load_state_dict(state, strict=True)
    except RuntimeError as error:
        lines = str(error).splitlines()
        first = (lines[1] if len(lines) > 1 else lines[0]).strip().rstrip(".")
        raise WeightsError(
            f"{Path(path)} does not match the {describe_config(config)} generator: {first}; pass {_EXPECTED}"
        ) from error
    return generator.eval()


# --- our format: safetensors + JSON sidecar -------------------------------------------------------


def _safetensors_keys_checked(path: Path) -> list[str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            keys = list(handle.keys())
    except Exception as error:
        raise WeightsError(
            f"{path} is not a readable safetensors file ({error}); pass {_EXPECTED}"
        ) from error
    if arch_of_keys(keys) is None:
        raise _not_a_generator(path, "a safetensors file without generator weights")
    return keys


def _read_sidecar(path: Path) -> ModelConfig:
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        raise WeightsError(
            f"{path} has no {sidecar.name} beside it holding the model config; keep the two files together "
            "(p2c writes both)"
        )
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT_TAG:
            raise ValueError(f"format tag {meta.get('format')!r}, expected {FORMAT_TAG!r}")
        return config_from_dict(meta.get("arch", DEFAULT_ARCH), meta["config"])
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise WeightsError(
            f"{sidecar} is not a p2c model config ({error}); re-save the model with p2c"
        ) from error


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    from safetensors.torch import load_file

    config = _read_sidecar(path)
    state = {name: tensor.float() for name, tensor in load_file(str(path), device="cpu").items()}
    return state, config


def save_generator(
    generator: Generator | CartoonOnly, path: str | Path, dtype: torch.dtype = torch.float16
) -> Path:
    """Write ``X.safetensors`` (weights in ``dtype``) and ``X.json`` (its architecture and config);
    returns the first."""
    from safetensors.torch import save_file

    if isinstance(generator, CartoonOnly):
        generator = generator.generator
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch dtype, got {dtype}")
    path = Path(path).expanduser()
    if path.suffix != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    if not path.parent.is_dir():
        raise WeightsError(
            f"cannot save weights to {path}: folder {path.parent} does not exist; create it first"
        )
    tensors = {
        name: (t.to(dtype) if t.is_floating_point() else t).detach().cpu().contiguous()
        for name, t in generator.state_dict().items()
    }
    meta = {
        "format": FORMAT_TAG,
        "arch": arch_of(generator),
        "config": generator.config.to_dict(),
        "dtype": str(dtype).removeprefix("torch."),
    }
    with atomic_write(sidecar_path(path)) as stream:
        stream.write(json.dumps(meta, indent=2) + "\n")
    with atomic_path(path) as temporary:
        save_file(tensors, str(temporary), metadata={"format": FORMAT_TAG})
    log.debug("saved generator %s to %s (%s)", generator.config, path, dtype)
    return path
