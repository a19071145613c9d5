"""Run at interpreter start under `respan-instrument run`: instrument openai, then chain to the previous sitecustomize."""

from __future__ import annotations

import os
import sys
from types import ModuleType

_HERE = os.path.dirname(os.path.abspath(__file__))


def _warn(message: str) -> None:
    print(f"respan-instrument: {message}; the program runs uninstrumented", file=sys.stderr)


def _instrument() -> None:
    try:
        import respan_instrument
    except ImportError as exc:
        _warn(f"cannot import respan_instrument in {sys.executable} ({exc})")
        return
    try:
        respan_instrument.instrument()
    except ValueError as exc:
        _warn(str(exc))
    except Exception as exc:  # noqa: BLE001 - never stop the user's program from starting
        _warn(f"instrument() failed: {exc!r}")


def _is_here(entry: str) -> bool:
    try:
        return os.path.samefile(entry or os.curdir, _HERE)
    except OSError:
        return False


def _chain() -> None:
    """Import the `sitecustomize` that our directory shadows, if there is one."""
    this: ModuleType | None = sys.modules.pop("sitecustomize", None)
    sys.path[:] = [entry for entry in sys.path if not _is_here(entry)]
    try:
        import sitecustomize  # noqa: F401 - the shadowed one, now that our directory is off sys.path
    except ImportError as exc:
        if exc.name != "sitecustomize":
            _warn_chain(exc)
    except Exception as exc:  # noqa: BLE001 - mirror site.py: report, then carry on
        _warn_chain(exc)
    finally:
        # the import system expects sys.modules["sitecustomize"] to exist once this module finishes
        if "sitecustomize" not in sys.modules and this is not None:
            sys.modules["sitecustomize"] = this


def _warn_chain(exc: BaseException) -> None:
    print(f"respan-instrument: error in the chained sitecustomize: {exc!r}", file=sys.stderr)


_instrument()
_chain()
