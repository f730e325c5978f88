"""What every ``p2c-*`` command line shares: logging set-up and one-line errors."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from p2c.errors import P2CError

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "run_command"]

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s",
    )
    # MediaPipe and absl talk a lot at INFO; users only need their warnings.
    for noisy in ("absl", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_command(
    main: Callable[[Sequence[str] | None], int | None],
    argv: Sequence[str] | None = None,
    prog: str = "p2c",
) -> int:
    """Run ``main(argv)``; turn a :class:`P2CError` into one line on stderr and exit code 2.

    Anything that is not a ``P2CError`` is a bug: it keeps its traceback.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    _configure_logging(verbose="-v" in args or "--verbose" in args)
    try:
        return int(main(args) or 0)
    except P2CError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
