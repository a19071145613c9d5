"""The package's logger, and saying a thing on it once per process.

A leaf: the settings (`_config`) warn through it, and `_errors`, which reads its own setting
from `_config`, reports through it.
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("respan_instrument")

_seen: set[str] = set()  # keys said (or places reported) in this process
_seen_lock = threading.Lock()


def first_time(key: str) -> bool:
    """True the first time `key` is asked about in this process."""
    with _seen_lock:
        if key in _seen:
            return False
        _seen.add(key)
        return True


def log_once(key: str, message: str, *args: object, level: int = logging.WARNING) -> None:
    """Log `message` the first time `key` is seen in this process."""
    if first_time(key):
        logger.log(level, message, *args)


__all__ = ["first_time", "log_once", "logger"]
