"""Every Python that `requires-python` admits behaves and prices the same (SPEC §17).

Prices come from `genai-prices`. When its current releases need a newer Python than ours admits,
pip gives the older interpreter an older release and so an older price table (on 3.10,
genai-prices 0.1.13: 537 fewer models and 187 different prices than 0.2.5), and the same
call is priced on one Python and not on another.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import metadata
from pathlib import Path
from typing import Any

import pytest
import tomllib
from conftest import RESPAN_KEY
from packaging.specifiers import SpecifierSet
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_every_admitted_python_gets_the_price_table_this_one_has() -> None:
    ours = SpecifierSet(tomllib.loads(PYPROJECT.read_text())["project"]["requires-python"])
    theirs = SpecifierSet(metadata("genai-prices").get("Requires-Python") or "")
    left_behind = [
        f"3.{minor}"
        for minor in range(6, 20)
        if Version(f"3.{minor}") in ours and Version(f"3.{minor}") not in theirs
    ]
    assert left_behind == [], (
        f"admitted, yet pip gives them an older genai-prices than {metadata('genai-prices')['Version']}"
    )


FORKS = """
import os, sys, threading, time
import respan_instrument
respan_instrument.instrument()
respan_instrument.log(model="gpt-4o-mini", custom_identifier="before-fork")
if sys.argv[1] == "with-an-app-thread":
    threading.Thread(target=time.sleep, args=(3,), name="the-apps", daemon=True).start()
if sys.argv[1] in ("ours-ending", "with-a-native-thread"):
    # a native thread Python does not list: one of ours that ended and is not yet reaped
    # (the price-warming thread, often), or one the app started outside `threading`
    import _thread
    from respan_instrument._errors import background_thread_begins
    begun = threading.Event()
    def native():
        if sys.argv[1] == "ours-ending":
            background_thread_begins()
        begun.set()
        time.sleep(3)
    _thread.start_new_thread(native, ())
    begun.wait()
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
print(respan_instrument.flush(10))
"""


@pytest.mark.skipif(sys.version_info < (3, 12), reason="Python 3.12 began warning at fork() with threads")
@pytest.mark.parametrize(
    "threads", ["ours-only", "ours-ending", "with-an-app-thread", "with-a-native-thread"]
)
def test_forking_from_main_warns_only_for_the_apps_own_threads(
    threads: str, collector: Any, tmp_path
) -> None:
    """Our threads are safe to fork (the at-fork hooks hold their locks and restart them), so
    Python's warning about forking a multi-threaded process is not said because of them; a
    thread of the app's still gets it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPAN_")}
    env.update(
        RESPAN_API_KEY=RESPAN_KEY,
        RESPAN_BASE_URL=collector.url + "/api",
        RESPAN_SPOOL_DIR=str(tmp_path / "spool"),
    )
    result = subprocess.run(
        [sys.executable, "-c", FORKS, threads],
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
    )
    assert result.returncode == 0 and result.stdout.strip() == "True", result.stderr
    warned = "is multi-threaded, use of fork()" in result.stderr
    assert warned == threads.startswith("with-"), result.stderr
