"""The on-disk cache of derived models (ONNX exports, compiled engines), keyed by what invalidates them.

Compiled engines (TensorRT, AOTInductor) live in an :class:`ArtifactCache`: ``NAME-KEY.SUFFIX`` plus
``NAME-KEY.json``, a record of the fields hashed into KEY and of the artifact's own SHA-256. An
artifact is only loaded when its record matches what is asked for *and* its bytes match the record;
otherwise it is rebuilt, and a WARNING line says why. Nothing stale or corrupt is ever loaded silently.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from p2c.errors import OutputError
from p2c.files import atomic_path, atomic_write

__all__ = ["ArtifactCache", "cache_dir", "cache_key", "cached_onnx", "device_fields", "file_digest"]

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


def device_fields(device: torch.device) -> dict[str, str]:
    """What compiled code depends on about a device: the GPU's name and compute capability (and the
    CUDA version PyTorch was built with), or the CPU's architecture and the widest vector ISA PyTorch
    uses on it (code built for AVX-512 must never load on an AVX2 machine)."""
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        return {
            "type": "cuda",
            "name": properties.name,
            "capability": f"{properties.major}.{properties.minor}",
            "cuda": str(torch.version.cuda),
        }
    return {"type": device.type, "arch": platform.machine(), "isa": torch.backends.cpu.get_cpu_capability()}


# Record entries that describe the artifact itself rather than what it was built for.
_ARTIFACT_KEYS = ("artifact_sha256", "build_seconds")


class ArtifactCache:
    """Compiled artifacts in ``folder``, one per name and set of fields (see the module docstring).

    ``what`` names the artifact in log lines (``"TensorRT engine"``); ``suffix`` is its file ending.
    """

    def __init__(self, folder: Path, what: str, suffix: str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.what = what
        self.suffix = suffix

    def paths(self, name: str, fields: Mapping[str, object]) -> tuple[Path, Path]:
        """The artifact's path and its record's, for ``name`` built with ``fields``."""
        stem = f"{name}-{cache_key(fields)}"
        return self.folder / f"{stem}{self.suffix}", self.folder / f"{stem}.json"

    def cached(self, name: str, fields: Mapping[str, object], load: Callable[[Path], Any]) -> Any | None:
        """The valid cached artifact, loaded; None when there is none. One that exists but is stale,
        corrupt or does not load is left alone (a build replaces it) and a WARNING says why."""
        path, record_path = self.paths(name, fields)
        if not path.is_file():
            return None
        reason = self._invalid(path, record_path, fields)
        if reason is None:
            try:
                artifact = load(path)
            except Exception as error:  # any failure of a foreign loader means: do not use it
                lines = str(error).strip().splitlines()
                reason = f"it does not load ({lines[0] if lines else type(error).__name__})"
            else:
                log.info("using the cached %s %s", self.what, path)
                return artifact
        log.warning("not using the cached %s %s: %s", self.what, path, reason)
        return None

    def build(
        self,
        name: str,
        fields: Mapping[str, object],
        build_to: Callable[[Path], None],
        load: Callable[[Path], Any],
    ) -> Any:
        """Build the artifact into the cache (``build_to`` writes it to the path given), then load it.

        Logs one line saying what was built and how long it took. Artifacts of the same name built for
        other fields (older weights, versions, devices) are removed.
        """
        path, record_path = self.paths(name, fields)
        self._remove_stale(name, keep=path)
        log.debug("building the %s %s", self.what, path)
        started = time.perf_counter()
        with atomic_path(path) as temporary:
            build_to(temporary)
        seconds = time.perf_counter() - started
        record = {**fields, "artifact_sha256": file_digest(path), "build_seconds": round(seconds, 1)}
        with atomic_write(record_path) as stream:
            stream.write(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
        log.info(
            "built the %s %s in %.1f s; this happens once for these weights, settings, torch version and "
            "device, later starts load it from the cache",
            self.what,
            path,
            seconds,
        )
        return load(path)

    def get_or_build(
        self,
        name: str,
        fields: Mapping[str, object],
        build_to: Callable[[Path], None],
        load: Callable[[Path], Any],
    ) -> Any:
        """The cached artifact for ``fields`` if valid, else a newly built one."""
        artifact = self.cached(name, fields, load)
        return artifact if artifact is not None else self.build(name, fields, build_to, load)

    def _invalid(self, path: Path, record_path: Path, fields: Mapping[str, object]) -> str | None:
        """Why the artifact at ``path`` must not be used, or None when its record and bytes check out."""
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            return f"its record {record_path} is unreadable ({error})"
        if not isinstance(record, dict):
            return f"its record {record_path} is unreadable (not a JSON object)"
        built_for = {k: v for k, v in record.items() if k not in _ARTIFACT_KEYS}
        wanted = json.loads(json.dumps(fields, sort_keys=True, default=str))
        if built_for != wanted:
            changed = sorted(k for k in set(built_for) | set(wanted) if built_for.get(k) != wanted.get(k))
            return f"it was built for different {', '.join(changed)}"
        if record.get("artifact_sha256") != file_digest(path):
            return "the file is corrupt (its SHA-256 differs from the one recorded when it was built)"
        return None

    def _remove_stale(self, name: str, keep: Path) -> None:
        """Artifacts of the same name with another key were built for other weights, versions or devices."""
        pattern = re.compile(rf"{re.escape(name)}-[0-9a-f]{{24}}{re.escape(self.suffix)}")
        for path in self.folder.iterdir():
            if path != keep and pattern.fullmatch(path.name):
                log.info("removing the stale %s %s", self.what, path)
                path.unlink(missing_ok=True)
                path.with_suffix(".json").unlink(missing_ok=True)
