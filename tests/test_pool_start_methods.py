"""`multiprocessing` pools of an application instrumented at module level (SPEC §5): every call
of every worker reaches Respan exactly once while the application keeps running, under each
start method that re-imports `__main__` in its workers.

`with Pool(...)` terminates the workers (SIGTERM) the moment the results are in, when some may
still have logs in memory or a post on the wire. A spawned worker runs no after-fork hooks, so
it must be set up while it imports the application. A slow Respan (each post answered after
0.8 s) keeps a post on the wire at that moment: sent again by the parent, it arrives twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import RESPAN_KEY

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="forkserver and SIGTERM"),
]

APP = Path(__file__).with_name("_pool_app.py")
CALLS = 100
POST_SECONDS = 0.8  # a slow Respan: a post is on the wire when the workers are terminated
ARRIVE_WITHIN = 45  # seconds after the pool is done (the parent takes its workers' rows on its next look)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_pool_of_an_app_instrumented_at_module_level(
    method: str, collector: Any, stub: Any, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPAN_")}
    env.update(
        RESPAN_API_KEY=RESPAN_KEY,
        RESPAN_BASE_URL=collector.url + "/api",
        RESPAN_SPOOL_DIR=str(tmp_path / "spool"),
        RESPAN_INSTRUMENT_STRICT="1",
        STUB_URL=stub.url + "/v1",
    )
    collector.set_delay(POST_SECONDS)
    app = subprocess.Popen(
        [sys.executable, str(APP), method, str(CALLS)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    try:
        assert app.stdout is not None and app.stdin is not None
        assert app.stdout.readline().strip() == "mapped", app.stderr.read() if app.stderr else ""
        deadline = time.monotonic() + ARRIVE_WITHIN
        while _arrived(collector) < CALLS and time.monotonic() < deadline and app.poll() is None:
            time.sleep(0.2)
        assert app.poll() is None, "the application ended early"
        assert _arrived(collector) == CALLS, "logs missing while the application runs"
        app.stdin.close()  # the application ends: its own exit flush has nothing left to send
        app.wait(60)
        err = app.stderr.read() if app.stderr else ""
    finally:
        app.kill()
        collector.set_delay(0)
    assert app.returncode == 0, err
    assert "Traceback" not in err, err
    spans = Counter(log["span_unique_id"] for log in collector.logs)
    assert [span for span, n in spans.items() if n > 1] == [], "a log arrived twice"
    tags = Counter(str(log.get("custom_identifier")) for log in collector.logs)
    assert tags == Counter(f"pool-{i}" for i in range(CALLS))


def _arrived(collector: Any) -> int:
    return len({str(log.get("custom_identifier")) for log in collector.logs})
