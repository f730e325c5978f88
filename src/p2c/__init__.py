"""p2c: real-time portrait cartoonization with photo2cartoon's generator.

``p2c.Cartoonizer`` is the Python API (:mod:`p2c.api`); it is imported on first use, so
``import p2c`` stays light for code that only needs, say, :mod:`p2c.errors`.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from p2c.errors import P2CError

if TYPE_CHECKING:
    from p2c.api import Cartoonizer

try:
    __version__ = version("p2c")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["Cartoonizer", "P2CError", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Cartoonizer":
        from p2c.api import Cartoonizer

        return Cartoonizer
    raise AttributeError(f"module 'p2c' has no attribute {name!r}")
