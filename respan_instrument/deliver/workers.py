"""`multiprocessing` worker processes keep their logs, with nothing for the application to call.

Workers of `multiprocessing.Pool`, `concurrent.futures.ProcessPoolExecutor` and a plain `Process`
end through `os._exit` (atexit never runs), and `with Pool(...)` ends by sending its workers
SIGTERM the moment the results are in. In a process that is a multiprocessing child:

- before anything it sends to its parent is pickled (`ForkingPickler.dumps`: task results of
  Pool and ProcessPoolExecutor, queue and pipe messages), the logs of the calls made so far are
  written to the spool, so they are safe by the time the parent sees the result;
- at a normal end (`multiprocessing.util.Finalize`, run before `os._exit`) the pipeline shuts
  down as at interpreter exit: delivered, or spooled and released for the parent to deliver;
- on SIGTERM, when no one else handles it, the same happens within `TERM_GRACE` seconds, and
  then the process ends by SIGTERM as it would have.

The hooks are set in the child by `multiprocessing.util.register_after_fork`, which runs in every
child's bootstrap (fork, spawn and forkserver), after the module of `__main__` was imported; a
child instrumented later (by a pool initializer) sets them at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Any

import wrapt

from .._errors import hold_signals, report
from .pipeline import Pipeline

PERSIST_TIMEOUT = 5.0  # most a worker's result waits for its logs to reach the spool
TERM_GRACE = 2.0  # most a terminated worker takes to save its logs before it ends

_pipeline: Pipeline | None = None
_exit_timeout = 5.0
_watching = False  # the multiprocessing hooks are registered in this process
_child_pid = 0  # this process's pid once it is known to be a multiprocessing child
_armed_pid = 0  # this process's pid once its exit hooks are set
_dumps: Any = None  # handle of our ForkingPickler.dumps wrapper, while applied
_term_pipe: tuple[int, int] | None = None
_term_done = threading.Lock()


class _Anchor:
    """What `register_after_fork` holds weakly: lives as long as this module."""


_ANCHOR = _Anchor()


def watch(pipeline: Pipeline | None, exit_timeout: float) -> None:
    """Serve `pipeline` in this process's workers from now on (None: stop)."""
    global _pipeline, _exit_timeout, _watching
    _pipeline, _exit_timeout = pipeline, exit_timeout
    if pipeline is None:
        _unpatch()
        return
    if _child_pid == os.getpid():
        _arm()
    if _watching:
        return
    _watching = True
    if "multiprocessing" in sys.modules:
        _on_multiprocessing(sys.modules["multiprocessing"])
    else:
        wrapt.register_post_import_hook(_on_multiprocessing, "multiprocessing")


def _on_multiprocessing(module: Any) -> None:
    try:
        from multiprocessing import util

        util.register_after_fork(_ANCHOR, _in_child)
        if module.parent_process() is not None:  # instrumented inside a worker (an initializer)
            _in_child(_ANCHOR)
    except Exception as exc:  # noqa: BLE001 - the application goes on without the hooks
        report("hooking multiprocessing", exc)


def _in_child(_anchor: object) -> None:
    """In a new multiprocessing child, before it runs its target."""
    global _child_pid
    _child_pid = os.getpid()
    if _pipeline is not None:
        _arm()


def _arm() -> None:
    """Save the logs before each message to the parent and on the way out (once a process)."""
    global _armed_pid
    try:
        from multiprocessing import util

        _patch()
        if _armed_pid != os.getpid():
            _armed_pid = os.getpid()
            util.Finalize(None, _at_exit, exitpriority=100)
            _on_sigterm_save()
    except Exception as exc:  # noqa: BLE001 - the worker must run
        report("setting up a worker process", exc)


def _patch() -> None:
    global _dumps
    if _dumps is None:
        _dumps = wrapt.wrap_function_wrapper(
            "multiprocessing.reduction", "ForkingPickler.dumps", _persist_first
        )


def _unpatch() -> None:
    global _dumps
    handle, _dumps = _dumps, None
    module = sys.modules.get("multiprocessing.reduction")
    if handle is not None and module is not None:
        try:
            wrapt.unwrap_object(module, "ForkingPickler.dumps", handle, missing_ok=True)
        except Exception as exc:  # noqa: BLE001 - uninstrument() must not raise
            report("removing the worker hooks", exc)


def _persist_first(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """Our logs reach the spool before anything this worker sends its parent is pickled."""
    pipeline = _pipeline
    if pipeline is not None and _child_pid == os.getpid():
        aio = sys.modules.get("asyncio")
        if aio is None or aio._get_running_loop() is None:  # never block an event loop
            try:
                pipeline.persist(PERSIST_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - the result must still go
                report("saving a worker's logs", exc)
    return wrapped(*args, **kwargs)


def _at_exit() -> None:
    pipeline = _pipeline
    if pipeline is not None and _child_pid == os.getpid():
        try:
            pipeline.shutdown(_exit_timeout)
        except Exception as exc:  # noqa: BLE001 - the worker must end
            report("shutting down a worker's exporter", exc)


# ---- SIGTERM -----------------------------------------------------------------------------
# Pool.terminate() (and `with Pool(...)`) SIGTERMs its workers. Where the signal would kill the
# process outright (SIG_DFL), our handler saves the logs first and then ends the process by
# SIGTERM as before, so its parent sees the same exit code. The handler itself takes no lock
# the interrupted code may hold (it writes a byte to a pipe and waits on a lock of its own); the
# saving runs on a thread started beforehand. A worker whose main thread sits in a long C call
# that never returns to Python only gets the handler, and dies, when that call returns: the
# cost of a handler, which is why `TERM_GRACE` bounds what it does and why an application's own
# handler is never replaced.


def _on_sigterm_save() -> None:
    global _term_pipe
    if sys.platform == "win32" or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return
    if _term_pipe is not None:  # inherited from the parent worker: not ours here
        for fd in _term_pipe:
            os.close(fd)
    _term_pipe = os.pipe()
    _term_done.acquire(blocking=False)
    threading.Thread(
        target=_save_on_sigterm, args=(_term_pipe[0],), name="respan-sigterm", daemon=True
    ).start()
    signal.signal(signal.SIGTERM, _sigterm)


def _save_on_sigterm(read_fd: int) -> None:
    hold_signals()
    try:
        if os.read(read_fd, 1):
            _at_exit()
    except Exception as exc:  # noqa: BLE001 - the process is ending either way
        report("saving logs on SIGTERM", exc)
    finally:
        _term_done.release()


def _sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    pipe = _term_pipe
    if pipe is not None and _child_pid == os.getpid():
        with contextlib.suppress(OSError):
            os.write(pipe[1], b"T")
            _term_done.acquire(timeout=TERM_GRACE)
    os.kill(os.getpid(), signal.SIGTERM)
