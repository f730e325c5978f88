"""What every ``p2c-*`` command line shares: logging set-up and one-line errors."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence

from p2c.errors import P2CError
from p2c.signals import Stopped, sigterm_raises

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
    "launch",
    "non_negative_float",
    "positive_float",
    "positive_int",
    "run_command",
]

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_TERMINATED = 143  # 128 + SIGTERM


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s",
    )
    # MediaPipe and absl talk a lot at INFO; users only need their warnings.
    for noisy in ("absl", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextlib.contextmanager
def _native_stderr_silenced(enabled: bool) -> Iterator[None]:
    """Send what native libraries (MediaPipe, TFLite, FFmpeg) write to file descriptor 2 to
    /dev/null, while Python's ``sys.stderr`` (our messages, progress bars, tracebacks) keeps
    writing to the real stderr through a duplicate of it.

    Only done when ``sys.stderr`` is the process's own: a test harness that captures it keeps it.
    """
    python_stderr = sys.__stderr__
    if not enabled or python_stderr is None or sys.stderr is not python_stderr:
        yield
        return
    python_stderr.flush()
    real_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    sys.stderr = os.fdopen(os.dup(real_stderr), "w", buffering=1, encoding=python_stderr.encoding)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        os.dup2(real_stderr, 2)
        os.close(real_stderr)
        os.close(devnull)
        sys.stderr = python_stderr


def run_command(
    main: Callable[[Sequence[str] | None], int | None],
    argv: Sequence[str] | None = None,
    prog: str = "p2c",
) -> int:
    """Run ``main(argv)``; turn a :class:`P2CError` into one line on stderr and exit code 2.

    Anything that is not a ``P2CError`` is a bug: it keeps its traceback. Ctrl-C and SIGTERM are
    one line too (``interrupted``, ``terminated``), exit codes 130 and 143. Unless ``-v`` is
    given, native libraries' own log lines are hidden, so a user sees only ours.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in args or "--verbose" in args
    with _native_stderr_silenced(not verbose):
        _configure_logging(verbose)

        def call() -> int:
            try:
                return int(main(args) or 0)
            except P2CError as error:
                print(f"{prog}: error: {error}", file=sys.stderr)
                return EXIT_ERROR

        return _stoppable(call, prog)


def _stoppable(call: Callable[[], int], prog: str) -> int:
    """``call()`` with SIGTERM raised as an exception; a stop signal, even one that lands while a
    native module loads, ends it with one line and its exit code."""
    try:
        with sigterm_raises():
            return call()
    except KeyboardInterrupt as stop:
        return _stopped(prog, stop)
    except ImportError as error:
        signalled = _interrupted_import(error)
        if signalled is None:
            raise
        return _stopped(prog, signalled)


def _interrupted_import(error: ImportError) -> KeyboardInterrupt | None:
    """The stop signal behind an ``ImportError``: a Ctrl-C or SIGTERM that lands while a native
    module initialises (pybind11's dlib, say) comes out as ``ImportError: initialization failed``
    caused by the ``KeyboardInterrupt``; None when the import failed for another reason."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, KeyboardInterrupt):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


def _stopped(prog: str, stop: KeyboardInterrupt) -> int:
    """The one line and the exit code of a run that a stop signal ended."""
    if isinstance(stop, Stopped) and stop.signum != signal.SIGINT:
        print(f"{prog}: terminated ({signal.Signals(stop.signum).name})", file=sys.stderr)
        return stop.exit_code
    print(f"{prog}: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


def launch(module: str, prog: str) -> int:
    """Import ``module`` and run its ``main()``: what a console script does, but a Ctrl-C or a
    SIGTERM while the command's heavy libraries load (seconds) is one line too, not a traceback."""
    return _stoppable(lambda: int(importlib.import_module(module).main() or 0), prog)


# Console scripts (pyproject.toml): the command modules load only inside ``launch``.


def p2c_image() -> int:
    return launch("p2c.stream.commands.image", "p2c-image")


def p2c_video() -> int:
    return launch("p2c.stream.commands.video", "p2c-video")


def p2c_stream() -> int:
    return launch("p2c.stream.commands.live", "p2c-stream")


def p2c_doctor() -> int:
    return launch("p2c.doctor.command", "p2c-doctor")


# argparse types shared by the commands: a bad value is argparse's own one-line usage error.


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def positive_float(text: str) -> float:
    """A number > 0 (seconds, frames per second)."""
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A number >= 0 (a start time in seconds)."""
    value = _number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value
