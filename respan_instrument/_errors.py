"""The one way our own errors are contained: logged once, never raised into a user's call."""

from __future__ import annotations

import os
import signal
import threading
import traceback
from types import TracebackType

from ._config import strict_env
from ._logger import first_time
from ._logger import log_once as log_once  # (here too: where our errors are contained)
from ._logger import logger as logger

# Every error of ours contained while in strict mode. Most are contained where nothing could
# raise to a test (a background thread, a finalizer, the hot path that must hand the user their
# result): the test suite fails any test during which one was added.
failures: list[str] = []


def strict() -> bool:
    """True in our own test suite: internal errors re-raise so bugs fail tests."""
    return strict_env()


class contained:
    """Context manager that logs an internal exception once per `where` and swallows it.

    It wraps our code only; a user's exception never passes through it.
    """

    __slots__ = ("where",)

    def __init__(self, where: str) -> None:
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        report(self.where, exc)
        return not strict()

    def swallow(self, exc: Exception) -> None:
        """The same for an `except Exception` clause (no `with` block on the hottest paths)."""
        report(self.where, exc)
        if strict():
            raise exc


def report(where: str, exc: BaseException) -> None:
    """Log an internal error once per place: its type and the frames it came through; in
    strict mode, also count it in `failures`.

    Never the exception's message, nor a traceback (which ends with it): the messages of
    encode, decode and validation errors quote the data they choked on, and that data is
    the user's prompts and completions.
    """
    first = first_time(where)
    if strict() and not getattr(exc, "_respan_counted", False):
        failures.append(f"{where}: {_type_name(exc)}")
        try:  # strict mode raises it on: whoever contains it next must not count it again
            exc._respan_counted = True  # type: ignore[attr-defined]
        except AttributeError:
            pass
    if first:
        logger.error(
            "respan_instrument: internal error in %s (the call went on uninstrumented): %s at %s",
            where,
            describe(exc),
            frames(exc),
        )


def describe(exc: BaseException) -> str:
    """The exception's type, and the types of those it was raised from or while handling."""
    names = [_type_name(exc)]
    seen = {id(exc)}
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen and len(names) < 5:
        seen.add(id(cause))
        names.append(_type_name(cause))
        cause = cause.__cause__ or cause.__context__
    return " from ".join(names)


def frames(exc: BaseException, limit: int = 8) -> str:
    """Where `exc` was raised, innermost first, as `file:line in function`: file names and
    function names only, no source lines and no values."""
    where = [
        f"{os.path.basename(frame.f_code.co_filename)}:{line} in {frame.f_code.co_name}"
        for frame, line in traceback.walk_tb(exc.__traceback__)
    ]
    return " < ".join(reversed(where[-limit:])) or "an unknown place"


def _type_name(exc: BaseException) -> str:
    kind = type(exc)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


# native thread ids of our background threads: deliver/fork.py tells them from the app's
# threads until the kernel has reaped them (an ended thread outlives Python's list of threads)
OUR_NATIVE_IDS: set[int] = set()


def background_thread_begins() -> None:
    """Called first by each of our background threads: it never takes SIGTERM or SIGINT, and
    its native id is known as ours.

    The kernel hands a process signal to any thread that does not block it. Taken by one of ours,
    it leaves the main thread asleep in a blocking wait (a pool worker waiting for its next task)
    that only a signal delivered to it would interrupt, so a Python handler (ours in a pool
    worker, or KeyboardInterrupt) would never run and `Pool.terminate()` would wait forever.
    """
    OUR_NATIVE_IDS.add(threading.get_native_id())
    mask = getattr(signal, "pthread_sigmask", None)
    if mask is None:
        return
    try:
        mask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    except (OSError, ValueError):
        return
