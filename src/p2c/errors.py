"""The errors p2c raises at its boundaries.

Each one is a single sentence that tells the user what to do. Every class also inherits the
built-in exception a caller would expect, so ``except FileNotFoundError`` keeps working.
The command lines print these as one line and exit non-zero; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "InputNotFoundError",
    "InvalidInputError",
    "MissingDependencyError",
    "NoFaceError",
    "OutputError",
    "P2CError",
    "WeightsError",
]


class P2CError(Exception):
    """Base class of every error p2c reports to a user."""


class InputNotFoundError(P2CError, FileNotFoundError):
    """An input file, folder or camera does not exist."""


class InvalidInputError(P2CError, ValueError):
    """An input exists but cannot be read as what it should be (image, video, option value)."""


class NoFaceError(P2CError, ValueError):
    """No face was found where one is needed."""


class WeightsError(P2CError, ValueError):
    """A weights file is not a generator checkpoint p2c can load."""


class OutputError(P2CError, OSError):
    """An output cannot be written (missing folder, no permission, no virtual camera device)."""


class BackendUnavailableError(P2CError, RuntimeError):
    """No inference backend (or not the one asked for) can run on this machine."""


class MissingDependencyError(P2CError, ImportError):
    """An optional library is not installed; the message names the extra to install."""
