"""The file a recording is written into, and what to do when the disk lets it down.

:class:`OutputFile` is the open file PyAV muxes into (through Python, so p2c sees every write):

- :meth:`OutputFile.lost` says whether the file or its folder was removed while recording (on
  Linux and macOS an open file keeps taking writes after ``rm -r``; the recording would vanish
  at the end without a word);
- :meth:`OutputFile.rescue` then copies what was recorded, from the still-open file, to the nearest
  folder that still exists;
- :func:`trim_to_complete_boxes` cuts a fragmented MP4 after its last complete fragment, so a file
  whose last write failed (a full disk) decodes to its end without an error;
- :class:`FlushDeadline` says when a slow recording must force its work onto the disk (a killed
  run keeps all but its last :data:`FLUSH_EVERY_S` seconds of work, whatever the model's speed).

The disk-full and removed-folder faults are tested by injecting them here (``opener``).
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import struct
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "FLUSH_EVERY_S",
    "FileOpener",
    "FlushDeadline",
    "OutputFile",
    "is_disk_full",
    "trim_to_complete_boxes",
]

logger = logging.getLogger(__name__)

# A killed recording loses at most this many seconds of work (wall-clock), unless one frame alone
# takes longer: the frame that starts the file's next fragment is on disk only with that fragment.
FLUSH_EVERY_S = 2.0

# Opens a path for writing, reading back and seeking (PyAV seeks to patch headers).
FileOpener = Callable[[Path], BinaryIO]


def _open_for_writing(path: Path) -> BinaryIO:
    return open(path, "w+b", buffering=0)


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) says the disk or the user's quota is full."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return False


class OutputFile:
    """``path`` opened for a recording; ``opener`` is injectable (tests make disks fill up)."""

    def __init__(self, path: Path, opener: FileOpener | None = None) -> None:
        self.path = path
        self.file: BinaryIO = (opener or _open_for_writing)(path)

    def lost(self) -> bool:
        """True once the file was removed (itself or with its folder) while it is still open."""
        try:
            return os.fstat(self.file.fileno()).st_nlink == 0
        except (OSError, ValueError):  # pragma: no cover - a closed or odd file object
            return False

    def rescue(self) -> Path | None:
        """Copy what was written to ``path`` if its folder is back, else to the nearest existing
        folder above it (never over an existing file); return where, or None if nothing could be."""
        folder = self.path.parent
        while not folder.is_dir() and folder != folder.parent:
            folder = folder.parent
        target = folder / self.path.name
        counter = 1
        while target.exists():
            target = folder / f"{self.path.stem}.rescued-{counter}{self.path.suffix}"
            counter += 1
        try:
            self.file.flush()
            self.file.seek(0)
            with open(target, "xb") as copy:
                shutil.copyfileobj(self.file, copy)
        except OSError as error:
            logger.warning("could not save the recording to %s: %s", target, error)
            return None
        return target

    def size(self) -> int:
        try:
            return os.fstat(self.file.fileno()).st_size
        except (OSError, ValueError):  # pragma: no cover
            return 0

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()


def trim_to_complete_boxes(file: BinaryIO) -> int:
    """Cut an MP4 after its last complete top-level box that ends a fragment (``mdat``), or after
    ``moov`` when no fragment is complete; return the new size. For a file whose tail was torn by
    a failed write: the decoder then meets no half-written fragment at the end."""
    file.flush()
    end = file.seek(0, os.SEEK_END)
    offset, keep = 0, 0
    while offset + 8 <= end:
        file.seek(offset)
        size, kind = struct.unpack(">I4s", file.read(8))
        if size == 1:  # a 64-bit size follows
            (size,) = struct.unpack(">Q", file.read(8))
        elif size == 0:  # the box runs to the end of the file: cannot tell whether it is complete
            break
        if size < 8 or offset + size > end:
            break
        offset += size
        if kind in (b"moov", b"mdat", b"mfra"):
            keep = offset
    if keep < end:
        file.truncate(keep)
        logger.info("cut the torn end of the recording: %d bytes kept of %d", keep, end)
    return keep


class FlushDeadline:
    """When a recording must push what it holds onto the disk, by the wall clock.

    A fragmented MP4 reaches the disk one fragment at a time, a fragment per second *of video*, and
    the encoder holds a dozen frames more: at 1.5 s a frame that is over 20 s of work in memory,
    lost to a SIGKILL. The sink calls :meth:`due` as each frame comes: True when, were the next
    frame to take as long as the last one did, the oldest frame not yet on disk would then be
    ``every`` seconds old (a quarter of it kept as margin); the sink then ends a fragment at this
    frame. :meth:`on_disk` tells it which frames the file holds (after that, or after a fragment of
    the muxer's own), so a fast run, whose own fragments come often enough, is never due.
    """

    def __init__(self, every: float = FLUSH_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        if every <= 0:
            raise ValueError(f"FlushDeadline.every must be positive seconds, got {every}")
        self.every = every
        self.clock = clock
        self.forced = 0  # fragments ended because they were due
        self._came: deque[float] = deque()  # when each frame not yet on disk came, oldest first
        self._first = 0  # the number of the oldest of them (frames count from 0)

    @property
    def frames(self) -> int:
        """Frames that have come so far."""
        return self._first + len(self._came)

    def due(self) -> bool:
        """A frame comes: whether to end a fragment at it."""
        now = self.clock()
        last = self._came[-1] if self._came else None
        self._came.append(now)
        if last is None or len(self._came) < 2:
            return False
        return now - self._came[0] + (now - last) >= 0.75 * self.every

    def on_disk(self, frames: int) -> None:
        """The file holds (at least) the first ``frames`` frames."""
        while self._first < frames and self._came:
            self._came.popleft()
            self._first += 1
