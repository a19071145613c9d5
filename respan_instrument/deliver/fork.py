"""At-fork hooks: every live pipeline keeps its spool consistent across `os.fork()` and
starts afresh in the child (the parent's threads, queue, connections and leases are not its).

Python 3.12+ warns at `os.fork()` in a process with threads (a DeprecationWarning, which an app
that forks from its main module sees on stderr). Where the only threads besides the main one are
ours, the warning would be there because of us alone, and these hooks are what makes forking
them safe; so it is silenced. With any other thread, the app's or a native one, Python's
warning stands.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
import warnings
import weakref
from typing import Protocol, cast

from .._errors import OUR_NATIVE_IDS, report


class Forking(Protocol):
    """What the hooks ask of a pipeline (`deliver.pipeline.Pipeline`)."""

    def before_fork(self, deadline: float) -> None: ...

    def after_fork_in_parent(self) -> None: ...

    def after_fork_in_child(self) -> None: ...


FORK_WAIT = 1.0  # seconds a fork waits, in all, for our threads to leave their spools

# live pipelines, for the hooks below
_LIVE: weakref.WeakSet[Forking] = weakref.WeakSet()
# what a forked child inherited: never closed or used there (the parent still owns it)
_INHERITED: list[object] = []


def watch(pipeline: Forking) -> None:
    """Have the at-fork hooks serve `pipeline` for as long as it lives."""
    _LIVE.add(pipeline)


def inherited(*things: object) -> None:
    """Keep what a forked child got from its parent alive, unused: closing a copied SQLite
    connection or HTTP client in the child would break the parent's."""
    _INHERITED.extend(things)


def _before_fork() -> None:
    # one wait for all: a process may hold several pipelines (a worker inherits its parent's),
    # and a second per busy spool lock stalled such a worker's fork for twenty seconds and more
    deadline = time.monotonic() + FORK_WAIT
    for pipeline in list(_LIVE):
        pipeline.before_fork(deadline)
    if sys.version_info >= (3, 12) and _LIVE:
        try:
            _fork_warning(silenced=_only_our_threads())
        except Exception as exc:  # noqa: BLE001 - the fork must go on
            report("silencing the fork warning", exc)


def _fork_warning(silenced: bool) -> None:
    """Python warns after the at-fork hooks (3.13: after the parent's too), so the filter that
    silences it for this process stays until a fork finds a thread that is not ours; it names
    this process's pid, so a forked child's own forks are judged afresh."""
    message = rf"This process \(pid={os.getpid()}\) is multi-threaded"
    entry = ("ignore", re.compile(message, re.I), DeprecationWarning, None, 0)
    if silenced:
        if entry not in warnings.filters:
            warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)
    elif entry in warnings.filters:
        cast("list[object]", warnings.filters).remove(entry)
        mutated = getattr(warnings, "_filters_mutated", None)
        if mutated is not None:
            mutated()


def _only_our_threads() -> bool:
    """Are all threads but the main one ours (named `respan-…`), natively too (Linux)?

    Natively, a thread Python has let go of (ended, joined) can still be there for a moment
    before the kernel reaps it: one of ours is known by the native id it recorded, anything
    else is the app's. A thread still starting has no native id yet and is matched by count."""
    threads = threading.enumerate()
    main = threading.main_thread()
    if any(t is not main and not t.name.startswith("respan-") for t in threads):
        return False
    try:
        native = {int(tid) for tid in os.listdir("/proc/self/task")}
    except (OSError, ValueError):
        return True  # no /proc: the threads Python knows of are all there is to go by
    OUR_NATIVE_IDS.intersection_update(native)  # reaped ids may be reused by anyone
    unknown = native - OUR_NATIVE_IDS - {t.native_id for t in threads}
    return len(unknown) <= sum(1 for t in threads if t.native_id is None)


def _after_fork_in_parent() -> None:
    for pipeline in list(_LIVE):
        pipeline.after_fork_in_parent()


def _after_fork_in_child() -> None:
    for pipeline in list(_LIVE):
        try:
            pipeline.after_fork_in_child()
        except Exception as exc:  # noqa: BLE001 - the child must go on
            report("restarting the exporter after fork", exc)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
    )


__all__ = ["Forking", "inherited", "watch"]
