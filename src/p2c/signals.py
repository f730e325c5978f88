"""Stop signals: Ctrl-C (SIGINT) and SIGTERM (what ``kill``, systemd and container runtimes send).

Both stop a command the same way and leave its outputs finalised: a pipeline turns either into
a flag that stops its stages and closes its sinks (:func:`stop_signals_set`); elsewhere SIGTERM
raises :class:`Stopped` like Ctrl-C raises ``KeyboardInterrupt`` (:func:`sigterm_raises`), so
``with`` blocks close what they opened. The command lines print one line and exit with
128 + the signal's number (130 for SIGINT, 143 for SIGTERM), as shells do.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["Stopped", "sigterm_raises", "stop_signals_set"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """A stop signal arrived; ``signum`` says which. A ``KeyboardInterrupt``, so code that handles
    Ctrl-C handles SIGTERM too."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Stopped` in the main thread (as SIGINT raises
    ``KeyboardInterrupt``); outside the main thread this does nothing."""
    if not _in_main_thread():
        yield
        return

    def on_sigterm(signum: int, frame: object) -> None:
        raise Stopped(signum)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def stop_signals_set(on_stop: Callable[[int], None]) -> Iterator[None]:
    """While inside, the first SIGINT or SIGTERM calls ``on_stop(signum)`` and nothing else (no
    exception at an arbitrary point); a second one raises :class:`Stopped` at once."""
    if not _in_main_thread():
        yield
        return
    seen: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        if seen:
            raise Stopped(signum)
        seen.append(signum)
        on_stop(signum)

    previous = {signum: signal.signal(signum, on_signal) for signum in _SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
