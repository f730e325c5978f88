"""Writing files so that nobody ever sees half of one, and checking output folders up front.

Every file p2c writes (images, weights, ONNX, checkpoints, manifests, reports) goes through
:func:`atomic_path`: the writer fills a temporary file in the target's own folder, which is then
renamed over the target in one step (``os.replace`` is atomic within a file system). A crash, an
error or Ctrl-C leaves either the old file or the new one, never a torn one, and no debris.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal

from p2c.errors import OutputError

__all__ = ["atomic_path", "atomic_write", "require_folder"]


def require_folder(path: str | os.PathLike[str], what: str = "output") -> Path:
    """Return ``path`` as a Path; raise :class:`OutputError` unless its folder exists.

    Commands call it before their slow work, so a typo fails at once. No folder is created:
    a missing one is usually a mistyped path, not a wish.
    """
    target = Path(path).expanduser()
    if not target.parent.is_dir():
        raise OutputError(f"{what} folder {target.parent} does not exist; create it first")
    return target


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    For writers that take a file name (``torch.save``, ``onnx.save``, safetensors). The temporary
    name keeps the target's suffix, for writers that choose the format by extension. On any
    exception the temporary file is removed and ``path`` is left as it was.
    """
    target = require_folder(path)
    # A unique name in the same folder (same file system, so the rename is atomic); open() rather
    # than mkstemp later, so the file gets the usual permissions (umask), not 0600.
    temporary = target.with_name(f".{target.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{target.suffix}")
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: Literal["w", "wb"] = "w") -> Iterator[IO]:
    """``open(path, mode)`` that appears at ``path`` only once the ``with`` block has finished."""
    with atomic_path(path) as temporary:
        encoding = "utf-8" if mode == "w" else None
        with open(temporary, mode, encoding=encoding) as file:
            yield file
