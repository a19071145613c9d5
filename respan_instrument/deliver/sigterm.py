"""A worker process ended by SIGTERM first hands its logs over, then ends by SIGTERM as before.

`Pool.terminate()` (and leaving `with Pool(...)`) SIGTERMs its workers. Where that signal would
kill the process outright (SIG_DFL), `save_first()` puts a handler in its place; an
application's own handler is never replaced.

A Python signal handler runs only when the main thread next executes Python code, and a pool
worker's main thread is often asleep in C: in `sem_wait` on the task queue's lock, which the
terminating parent holds for good. A signal that lands just before that wait begins trips the
handler without interrupting the wait (as does one that another thread takes), so the handler
never runs and the parent waits forever in `join()` (about one run in three of the
multiprocessing tests here). So the signal's C-level handler also wakes our thread through
Python's wakeup fd, the one notice that does not need the main thread. That thread saves the logs, then interrupts the main thread (`pthread_kill`) until
our handler has run there and ended the process by SIGTERM; if the main thread never gets to
Python (a C call that does not return), the process ends with status 128 + SIGTERM after
`TERM_GRACE` seconds. Where an event loop owns the wakeup fd already, the handler wakes the
thread itself, as before, and the thread cannot help a main thread that never runs it.

Saving does not deliver: it writes what is queued to the spool and lets go of it, for the
parent to deliver. A post of ours on the wire when the signal came is waited for until it is
answered (past the grace if need be, up to the post's own timeout: `most()`), so rows the
destination accepted are deleted rather than sent again by the parent.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

from .._errors import background_thread_begins, report

TERM_GRACE = 2.0  # most a terminated worker takes to save its logs before it ends
NUDGE_EVERY = 0.05  # seconds between interruptions of a main thread that has not ended yet
_OURS = b"T"  # what our handler writes (the wakeup fd gets signal numbers, all below 65)

_pipe: tuple[int, int] | None = None
_pid = 0  # the process `_pipe` and the wakeup fd were set up in
_saved = threading.Event()


def _nothing_on_the_wire() -> float:
    return 0.0


_on_the_wire: Callable[[], float] = _nothing_on_the_wire  # see save_first


def save_first(save: Callable[[], None], on_the_wire: Callable[[], float] = _nothing_on_the_wire) -> None:
    """In a worker's main thread: on SIGTERM, run `save`, then end. `save` is given TERM_GRACE
    seconds, and longer only while `on_the_wire()` says a post may still take that many seconds."""
    global _pipe, _pid, _saved, _on_the_wire
    if sys.platform == "win32" or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return
    inherited = _pipe  # a worker's own worker: its parent's pipe is not ours
    read_fd, write_fd = _pipe = os.pipe()
    os.set_blocking(write_fd, False)
    _saved = threading.Event()
    _on_the_wire = on_the_wire
    if not _pid:
        os.register_at_fork(after_in_child=_forked)
    _pid = os.getpid()
    woken = _take_wakeup_fd(write_fd)
    if inherited is not None:
        for fd in inherited:
            os.close(fd)
    threading.Thread(
        target=_save_on_sigterm, args=(read_fd, save, _saved, woken), name="respan-sigterm", daemon=True
    ).start()
    signal.signal(signal.SIGTERM, _handler)


def _take_wakeup_fd(fd: int) -> bool:
    """Have the C-level signal handler write to `fd`, unless the application set a wakeup fd
    (a forked child starts without ours: `_forked`)."""
    try:
        old = signal.set_wakeup_fd(fd, warn_on_full_buffer=False)
    except (ValueError, OSError):
        return False
    if old != -1:
        signal.set_wakeup_fd(old)  # an event loop's: it stays theirs
        return False
    return True


def _forked() -> None:
    """A child of this process (fork) must not wake our thread in its parent, nor save through
    a pipeline it does not have: the wakeup fd and the SIGTERM disposition start afresh, and a
    multiprocessing child arms its own."""
    try:
        if _pipe is not None and threading.current_thread() is threading.main_thread():
            old = signal.set_wakeup_fd(-1)
            if old not in (-1, _pipe[1]):
                signal.set_wakeup_fd(old)
            if signal.getsignal(signal.SIGTERM) is _handler:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except Exception as exc:  # noqa: BLE001 - the child must run
        report("resetting SIGTERM handling after fork", exc)


def _save_on_sigterm(read_fd: int, save: Callable[[], None], saved: threading.Event, woken: bool) -> None:
    background_thread_begins()
    term = bytes([signal.SIGTERM])
    try:
        while True:
            got = os.read(read_fd, 64)
            if not got:
                return
            if _OURS in got or (
                term in got and signal.getsignal(signal.SIGTERM) in (_handler, signal.SIG_DFL)
            ):
                break
        try:
            save()
        except Exception as exc:  # noqa: BLE001 - the process is ending either way
            report("saving logs on SIGTERM", exc)
        saved.set()
        if woken:
            _end_main_thread(time.monotonic() + TERM_GRACE)
    except Exception as exc:  # noqa: BLE001 - the process is ending either way
        report("handling SIGTERM in a worker", exc)


def _end_main_thread(deadline: float) -> None:
    """Interrupt the main thread's blocking wait until our handler runs there and ends the
    process; a main thread that never returns to Python is ended at `deadline`."""
    main = threading.main_thread().ident
    while main is not None and time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            signal.pthread_kill(main, signal.SIGTERM)
        time.sleep(NUDGE_EVERY)
    os._exit(128 + signal.SIGTERM)


def _wait_saved() -> None:
    """In the handler: the grace for saving, and past it as long as a post is on the wire."""
    end = time.monotonic() + TERM_GRACE
    while not _saved.wait(max(0.0, end - time.monotonic())):
        try:
            extra = _on_the_wire()
        except Exception as exc:  # noqa: BLE001 - the process is ending either way
            report("waiting for a post on SIGTERM", exc)
            return
        if extra <= 0:
            return
        end = time.monotonic() + min(extra, NUDGE_EVERY)


def _handler(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # from now on a SIGTERM ends the process at once
    pipe = _pipe
    if pipe is not None and _pid == os.getpid():
        with contextlib.suppress(OSError):
            os.write(pipe[1], _OURS)
        _wait_saved()
    os.kill(os.getpid(), signal.SIGTERM)


__all__ = ["TERM_GRACE", "save_first"]
