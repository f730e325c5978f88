"""One way for p2c's resource holders (MediaPipe graphs, cameras, files, encoders) to be contexts."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["Closeable"]


class Closeable:
    """``with obj:`` calls ``open()`` on entry (nothing by default) and ``close()`` on every exit,
    errors and Ctrl-C included. Subclasses implement ``close()``, safe to call more than once."""

    def open(self) -> None:
        """Acquire what the object needs; objects that acquire in ``__init__`` keep this no-op."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
