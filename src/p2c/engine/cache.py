"""The on-disk cache of derived models (ONNX exports, compiled engines), keyed by what invalidates them."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from p2c.errors import OutputError

__all__ = ["cache_dir", "cache_key", "cached_onnx", "file_digest"]

log = logging.getLogger(__name__)

# Bump when the way p2c derives a cached file changes, so old entries are never reused.
CACHE_VERSION = 1


def cache_dir(override: Path | None = None) -> Path:
    """``override``, else ``$P2C_CACHE_DIR``, else ``~/.cache/p2c``; created on first use."""
    path = override or Path(os.environ.get("P2C_CACHE_DIR") or Path.home() / ".cache" / "p2c")
    path = path.expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(
            f"cannot create the cache folder {path} ({error}); set P2C_CACHE_DIR to a writable folder"
        ) from error
    return path


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(fields: Mapping[str, object]) -> str:
    """A short stable hash of ``fields`` (sorted JSON), so any changed field gives a new key."""
    text = json.dumps({"cache_version": CACHE_VERSION, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cached_onnx(weights: Path, precision: str, override: Path | None = None) -> Path:
    """An ONNX export of the generator in ``weights`` (``fp32`` or ``fp16``), exported once and reused."""
    import torch

    from p2c.models.onnx import export_onnx
    from p2c.models.weights import load_generator, sidecar_path

    # The sidecar holds the image size, which a light generator's weights do not determine.
    sidecar = sidecar_path(weights)
    config_digest = (
        file_digest(sidecar) if Path(weights).suffix == ".safetensors" and sidecar.is_file() else None
    )
    fields = {"weights": file_digest(weights), "config": config_digest, "precision": precision}
    key = cache_key({**fields, "torch": torch.__version__})
    folder = cache_dir(override) / "onnx"
    folder.mkdir(exist_ok=True)
    path = folder / f"{Path(weights).stem}-{precision}-{key}.onnx"
    if path.is_file():
        log.debug("using cached ONNX export %s", path)
        return path
    log.info("exporting %s to ONNX (%s) into the cache %s; this happens once", weights, precision, folder)
    fp32_path = folder / f"{Path(weights).stem}-fp32-{key}.fp32.onnx" if precision == "fp16" else path
    export_onnx(load_generator(weights), fp32_path)
    if precision == "fp16":
        from p2c.models.onnx import convert_to_fp16

        convert_to_fp16(fp32_path, path)
        fp32_path.unlink(missing_ok=True)
    return path
