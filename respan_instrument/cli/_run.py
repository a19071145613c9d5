"""`respan-instrument run`: start a program with `openai` instrumented, without changing its code."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

__all__ = ["BOOTSTRAP_DIR", "child_environment", "resolve_command", "run_program"]

BOOTSTRAP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bootstrap")


def resolve_command(args: Sequence[str]) -> list[str]:
    """The argv to start: a leading ``--`` dropped, ``app.py ...`` run with this interpreter."""
    command = list(args)
    if command[:1] == ["--"]:
        command = command[1:]
    if command and command[0].endswith(".py"):
        command.insert(0, sys.executable)
    return command


def child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with our bootstrap directory (its ``sitecustomize``) first on PYTHONPATH."""
    env = dict(environ)
    entries = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != BOOTSTRAP_DIR]
    env["PYTHONPATH"] = os.pathsep.join([BOOTSTRAP_DIR, *entries])
    return env


def run_program(args: Sequence[str]) -> int:
    """Replace this process with the program (exit code and signals pass straight through).

    Returns only when the program cannot be started: 127 not found, 126 not executable.
    """
    command = resolve_command(args)
    if not command:
        print(
            "respan-instrument run: no program given (e.g. `respan-instrument run app.py`)", file=sys.stderr
        )
        return 2
    env = child_environment(os.environ)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        if os.name == "nt":  # no real exec on Windows: wait for the child and hand back its code
            return subprocess.call(command, env=env)
        os.execvpe(command[0], command, env)
    except FileNotFoundError:
        print(f"respan-instrument run: {command[0]}: command not found", file=sys.stderr)
        return 127
    except PermissionError:
        print(f"respan-instrument run: {command[0]}: permission denied", file=sys.stderr)
        return 126
    except OSError as exc:
        print(f"respan-instrument run: cannot start {command[0]}: {exc}", file=sys.stderr)
        return 126
    return 0  # not reached: execvpe does not return
