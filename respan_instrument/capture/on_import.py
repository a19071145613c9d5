"""Wrappers on another package's classes (the Agents SDK's models), applied now if its module is
imported, else when it is: importing it ourselves would cost every app that never uses it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import wrapt

from .._errors import contained


class WhenImported:
    """The wrappers `targets(module)` names, as `(attribute path, wrapper)` pairs, on `module`."""

    __slots__ = ("module", "targets", "what", "handles", "wanted", "hooked")

    def __init__(self, module: str, targets: Callable[[Any], list[tuple[str, Any]]], what: str) -> None:
        self.module = module
        self.targets = targets  # the pairs the imported module has (it logs what it lacks)
        self.what = what  # for our own log lines
        self.handles: list[tuple[str, Any]] = []
        self.wanted = False  # asked for by instrument(); a late import wraps only while it is
        self.hooked = False

    def apply(self) -> None:
        self.wanted = True
        module = sys.modules.get(self.module)
        if module is not None:
            self._wrap(module)
        elif not self.hooked:
            self.hooked = True
            wrapt.register_post_import_hook(self._wrap, self.module)

    def _wrap(self, module: Any) -> None:
        if self.handles or not self.wanted:
            return
        for name, wrapper in self.targets(module):
            with contained(f"wrapping {self.what}"):
                self.handles.append((name, wrapt.wrap_function_wrapper(self.module, name, wrapper)))

    def remove(self) -> None:
        self.wanted = False
        module = sys.modules.get(self.module)
        while self.handles:
            name, handle = self.handles.pop()
            if module is not None:
                with contained(f"unwrapping {self.what}"):
                    wrapt.unwrap_object(module, name, handle, missing_ok=True)
