"""At-fork hooks: every live pipeline keeps its spool consistent across `os.fork()` and
starts afresh in the child (the parent's threads, queue, connections and leases are not its)."""

from __future__ import annotations

import os
import weakref
from typing import TYPE_CHECKING

from .._errors import report

if TYPE_CHECKING:
    from .pipeline import Pipeline

# live pipelines, for the hooks below
_LIVE: weakref.WeakSet[Pipeline] = weakref.WeakSet()
# what a forked child inherited: never closed or used there (the parent still owns it)
_INHERITED: list[object] = []


def watch(pipeline: Pipeline) -> None:
    """Have the at-fork hooks serve `pipeline` for as long as it lives."""
    _LIVE.add(pipeline)


def inherited(*things: object) -> None:
    """Keep what a forked child got from its parent alive, unused: closing a copied SQLite
    connection or HTTP client in the child would break the parent's."""
    _INHERITED.extend(things)


def _before_fork() -> None:
    for pipeline in list(_LIVE):
        pipeline.before_fork()


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


__all__ = ["inherited", "watch"]
