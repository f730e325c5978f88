"""The batch's progress on screen: one bar over files and frames, and one line per failure.

The bar counts frames (a still counts one), so its rate is frames per second and its ETA covers
the whole batch; its label counts files. The total starts from the videos' frame counts read from
their headers and is corrected as files finish, fail or are tried again.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["BatchProgress"]


class BatchProgress:
    """Lines on stderr and, from :meth:`start`, a tqdm bar below them. ``enabled=False``: lines only."""

    def __init__(self, prog: str = "p2c-batch", enabled: bool = True) -> None:
        from tqdm import tqdm

        self.prog = prog
        self.enabled = enabled
        self.files = 0
        self.finished = 0
        self.failed = 0
        self._tqdm = tqdm
        self._bar: Any = tqdm(total=0, disable=True)  # a stand-in until the work starts

    def start(self, files: int, frames: int) -> None:
        """Show the bar: ``files`` files of ``frames`` frames in all are to be converted (the
        clock, rate and ETA start now, once the workers are ready)."""
        self.files = files
        self._bar.close()
        self._bar = self._tqdm(
            total=frames,
            unit="frame",
            desc=self._label(),
            file=sys.stderr,
            disable=not self.enabled,
            dynamic_ncols=True,
            smoothing=0.1,
        )

    def _label(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{self.prog}: files {self.finished}/{self.files}{failed}"

    def advance(self, frames: int) -> None:
        """``frames`` more frames are written."""
        if frames:
            self._bar.update(frames)

    def correct_total(self, frames: int) -> None:
        """Add ``frames`` (may be negative) to the expected total."""
        if frames:
            self._bar.total = max(self._bar.total + frames, self._bar.n)
            self._bar.refresh()

    def file_finished(self, failed: bool = False) -> None:
        self.finished += 1
        self.failed += int(failed)
        self._bar.set_description_str(self._label())

    def line(self, text: str) -> None:
        """One line above the bar (a failure, a retry)."""
        self._tqdm.write(f"{self.prog}: {text}", file=sys.stderr)

    def close(self) -> None:
        self._bar.close()
