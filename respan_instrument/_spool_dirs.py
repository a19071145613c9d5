"""Where the spool lives, as this platform and the environment say: the configured directory,
else the per-user cache; when that cannot be used, a private one in the temp directory. The
wiring (`_setup`, `cli`) hands them to `deliver/`, which reads no settings.
"""

from __future__ import annotations

import os
import sys
import tempfile

from ._config import cache_home_env, spool_dir_env, user_name_env


def default_dir() -> str:
    """The per-user cache directory for the spool (XDG on Linux, Caches on macOS, LOCALAPPDATA)."""
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        root = cache_home_env(True) or os.path.join(home, "AppData", "Local")
    elif sys.platform == "darwin":
        root = os.path.join(home, "Library", "Caches")
    else:
        xdg = cache_home_env(False)
        root = xdg if os.path.isabs(xdg) else os.path.join(home, ".cache")
    return os.path.join(root, "respan-instrument", "spool")


def resolve_dir(spool_dir: str | None = None) -> str:
    """`spool_dir`, else `RESPAN_SPOOL_DIR`, else `default_dir()`."""
    return spool_dir or spool_dir_env() or default_dir()


def fallback_dir() -> str:
    """The spool directory used when the configured one cannot be: this user's, in the temp dir."""
    user = str(os.getuid()) if hasattr(os, "getuid") else user_name_env()
    return os.path.join(tempfile.gettempdir(), f"respan-instrument-{user}")


__all__ = ["default_dir", "fallback_dir", "resolve_dir"]
