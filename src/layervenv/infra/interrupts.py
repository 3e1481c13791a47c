"""Ctrl-C, SIGTERM and SIGHUP: one mechanism for every way a user (or a batch system,
or a closed terminal) stops the tool.

Each of them raises :class:`Interrupted` (a ``KeyboardInterrupt``) in the main thread,
so every ``except BaseException`` clean-up that already undoes half-made work on Ctrl-C
undoes it on the other two as well; ``cli.main`` turns it into one line and the status
a shell shows for that signal (130, 143, 129).  Sections that must not be cut short
(putting an old layer back, removing a replaced one) run :func:`uninterrupted`.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

#: The signals that mean "stop" rather than "die now" (SIGKILL cannot be caught).
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """The tool was asked to stop by ``signum``."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def status(self) -> int:
        """The exit status a shell shows for a command this signal stopped."""
        return 128 + self.signum

    def message(self) -> str:
        if self.signum == signal.SIGINT:
            return "interrupted"
        return f"interrupted by {signal.Signals(self.signum).name}"


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


def handle_interrupts() -> None:
    """From now on the stop signals raise :class:`Interrupted` (main thread only).

    A signal ignored when the tool started (``nohup`` ignores SIGHUP) stays ignored.
    """
    for signum in SIGNALS:
        try:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                signal.signal(signum, _raise)
        except ValueError:  # not the main thread
            return


def ignore_interrupts() -> None:
    """Ignore the stop signals from here to the exit: the command's result is decided.

    Python puts SIGINT back to the default action while it shuts down, so a Ctrl-C
    that lands then killed the tool silently (status -2, "interrupted" to a shell)
    after it had, say, made a complete layer.  An ignored signal stays ignored.
    """
    for signum in SIGNALS:
        try:
            signal.signal(signum, signal.SIG_IGN)
        except ValueError:  # not the main thread: main() called from a thread
            return


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Ignore the stop signals for a short section that must run to its end (putting
    a layer back, swapping one in, removing a replaced one): a second Ctrl-C or a
    SIGTERM there would leave half a layer."""
    try:
        previous = [(s, signal.signal(s, signal.SIG_IGN)) for s in SIGNALS]
    except ValueError:  # not the main thread: signals go to the main thread anyway
        yield
        return
    try:
        yield
    finally:
        for signum, handler in previous:
            signal.signal(signum, handler)
