"""`multiprocessing` worker processes keep their logs, with nothing for the application to call.

Workers of `multiprocessing.Pool`, `concurrent.futures.ProcessPoolExecutor` and a plain `Process`
end through `os._exit` (atexit never runs), and `with Pool(...)` ends by sending its workers
SIGTERM the moment the results are in. In a process that is a multiprocessing child:

- before anything it sends to its parent is pickled (`ForkingPickler.dumps`: task results of
  Pool and ProcessPoolExecutor, queue and pipe messages), the logs of the calls made so far are
  written to the spool, so they are safe by the time the parent sees the result;
- at a normal end (`multiprocessing.util.Finalize`, run before `os._exit`) the pipeline shuts
  down as at interpreter exit: delivered, or spooled and released for the parent to deliver;
- on SIGTERM, when no one else handles it, its logs go to the spool and are let go for the
  parent to deliver (no new post starts), within `sigterm.TERM_GRACE` seconds; then the process
  ends by SIGTERM as it would have (see `sigterm`).

Either way a post of the worker's on the wire is waited for until it is answered (at most the
destination's `wire_timeout`): its parent takes the worker's rows over the moment the worker is
gone, and would send again what the destination accepted after the worker died.

The hooks are set in the child by `multiprocessing.util.register_after_fork`, which runs in the
bootstrap of fork and forkserver children. A spawned child runs no such hooks: it is instrumented
while it imports the parent's `__main__`, and sets them then (`_spawning`); a child instrumented
later (by a pool initializer) sets them at once.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import wrapt

from .._errors import report
from . import sigterm
from .pipeline import Pipeline

PERSIST_TIMEOUT = 5.0  # most a worker's result waits for its logs to reach the spool

_pipeline: Pipeline | None = None
_exit_timeout = 5.0
_watching = False  # the multiprocessing hooks are registered in this process
_child_pid = 0  # this process's pid once it is known to be a multiprocessing child
_armed_pid = 0  # this process's pid once its exit hooks are set
_dumps: Any = None  # handle of our ForkingPickler.dumps wrapper, while applied
_finalizer: Any = None  # our multiprocessing.util.Finalize at the worker's end


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
        if module.parent_process() is not None or _spawning(module):
            _in_child(_ANCHOR)
    except Exception as exc:  # noqa: BLE001 - the application goes on without the hooks
        report("hooking multiprocessing", exc)


def _spawning(module: Any) -> bool:
    """Is this a spawned child importing the parent's `__main__` (`instrument()` at module level)?

    Its bootstrap runs no after-fork hooks (`SpawnProcess._after_fork` does nothing), and
    `parent_process()` is still None while the main module is imported. The stdlib sets
    `_inheriting` around that import (3.8 to 3.13), in `spawn._main`; it sets it too when a
    forkserver imports `__main__` to preload it, but a forkserver is no worker (its children
    are, and fork's hooks arm them), so `spawn._main` must be what is running."""
    if not getattr(module.current_process(), "_inheriting", False):
        return False
    spawn = sys.modules.get("multiprocessing.spawn")
    code = getattr(getattr(spawn, "_main", None), "__code__", None)
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _in_child(_anchor: object) -> None:
    """In a new multiprocessing child, before it runs its target."""
    global _child_pid
    _child_pid = os.getpid()
    if _pipeline is not None:
        _arm()


def _arm() -> None:
    """Save the logs before each message to the parent and on the way out (once a process)."""
    global _armed_pid, _finalizer
    try:
        from multiprocessing import util

        _patch()
        if _armed_pid != os.getpid():
            _armed_pid = os.getpid()
            sigterm.save_first(_hand_over, _on_the_wire)
        # A forkserver child's bootstrap clears the finalizers after it imported `__main__`
        # (where a module-level instrument() armed it): register again, once.
        if _finalizer is None or not _finalizer.still_active():
            _finalizer = util.Finalize(None, _at_exit, exitpriority=100)
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


def _hand_over() -> None:
    """On SIGTERM: what this worker holds goes to the spool for its parent to deliver."""
    pipeline = _pipeline
    if pipeline is not None and _child_pid == os.getpid():
        pipeline.hand_over(sigterm.TERM_GRACE * 0.75)


def _on_the_wire() -> float:
    """Seconds a post of this worker's on the wire may still take (0: none is)."""
    pipeline = _pipeline
    return pipeline.on_the_wire() if pipeline is not None else 0.0


def _at_exit() -> None:
    pipeline = _pipeline
    if pipeline is not None and _child_pid == os.getpid():
        try:
            pipeline.shutdown(_exit_timeout, settle=True)
        except Exception as exc:  # noqa: BLE001 - the worker must end
            report("shutting down a worker's exporter", exc)
