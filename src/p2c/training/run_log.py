"""Training metrics to CSV (always) and TensorBoard (when the ``tensorboard`` package is installed)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

__all__ = ["RunLog"]

logger = logging.getLogger(__name__)


class RunLog:
    """Appends one row per logged step to ``metrics.csv`` (or ``name``); the first row fixes the columns.

    A resumed run appends to the same file, so rows past the resume step may appear twice if the
    run was stopped between a log and a checkpoint; plot by the ``step`` column.
    """

    def __init__(self, folder: Path, name: str = "metrics.csv", tensorboard: bool = True) -> None:
        self.path = folder / name
        self._columns: list[str] | None = None
        if self.path.is_file():
            with self.path.open(newline="") as handle:
                header = next(csv.reader(handle), None)
            self._columns = header or None
        self._tensorboard: Any = None
        if not tensorboard:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tensorboard = SummaryWriter(log_dir=str(folder / "tensorboard"))
        except ImportError:
            logger.info(
                "TensorBoard logging is off (pip install tensorboard turns it on); metrics go to %s",
                self.path,
            )

    def write(self, step: int, values: dict[str, float]) -> None:
        row = {"step": step, **values}
        if self._columns is None:
            self._columns = list(row)
            with self.path.open("w", newline="") as handle:
                csv.writer(handle).writerow(self._columns)
        with self.path.open("a", newline="") as handle:
            csv.writer(handle).writerow([_format(row.get(column)) for column in self._columns])
        if self._tensorboard is not None:
            for name, value in values.items():
                self._tensorboard.add_scalar(name, value, step)

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None


def _format(value: float | int | None) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)
