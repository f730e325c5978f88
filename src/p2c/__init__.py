"""p2c: real-time portrait cartoonization with photo2cartoon's generator."""

from importlib.metadata import PackageNotFoundError, version

from p2c.errors import P2CError

try:
    __version__ = version("p2c")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["P2CError", "__version__"]
