"""`flush()` after an outage keeps its word (SPEC §5): it tries to deliver now, cutting the
backoff short, and is True when Respan accepted everything or, only while Respan still does not
accept, when everything is in the spool. The exit flush does the same within its bound.

The backoff here is long (one failed post puts the next try 10-20 s away), as after a real
outage of some minutes; the tests' usual fast retries would hide a flush that does not try.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import RESPAN_KEY, spool_rows, start

import respan_instrument
from respan_instrument import _spool_dirs

N = 40
LONG_BACKOFF = {"RESPAN_RETRY_BASE": "20", "RESPAN_RETRY_CAP": "60", "RESPAN_SCHEDULE_DELAY": "0.2"}


@pytest.fixture(params=["configured", "fallback"])
def spool_place(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The environment of a process with a long backoff, spooling either where RESPAN_SPOOL_DIR
    says or, when that directory is unusable, in the per-user fallback in the temp directory."""
    env = dict(LONG_BACKOFF)
    if request.param == "configured":
        env["RESPAN_SPOOL_DIR"] = str(tmp_path / "spool")
    else:
        blocker = tmp_path / "a-file"
        blocker.write_text("not a directory")
        env["RESPAN_SPOOL_DIR"] = str(blocker / "spool")
        temp = tmp_path / "tmp"
        temp.mkdir()
        env["TMPDIR"] = str(temp)
        monkeypatch.setattr(tempfile, "tempdir", str(temp))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _spooled() -> int:
    """Rows in whichever spool file this process uses (the configured one or the fallback)."""
    directory = _spool_dirs.resolve_dir()
    if not os.path.isdir(directory):
        directory = _spool_dirs.fallback_dir()
    return spool_rows(directory)


def _calls_during_outage(collector: Any, client: Any, prefix: str) -> None:
    collector.set_outage(True)
    start(collector)
    for i in range(N):
        with respan_instrument.attributes(custom_identifier=f"{prefix}-{i}"):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert collector.wait_for_requests(1, timeout=10)  # a post failed: the next try is 10-20 s away
    time.sleep(0.5)  # every log is in the spool by now


def _each_once(collector: Any, prefix: str) -> None:
    seen = sorted(str(log.get("custom_identifier")) for log in collector.logs)
    assert seen == sorted(f"{prefix}-{i}" for i in range(N))


def test_flush_after_an_outage_delivers_now(spool_place, collector, client) -> None:
    try:
        _calls_during_outage(collector, client, "back")
        collector.set_outage(False)
        started = time.monotonic()
        assert respan_instrument.flush(20)
        took = time.monotonic() - started
        _each_once(collector, "back")  # accepted before flush() returned, not merely spooled
        assert _spooled() == 0
        assert took < 8, took  # it did not wait out the backoff
    finally:
        collector.set_outage(False)
        respan_instrument.uninstrument()


def test_flush_while_still_down_tries_then_counts_the_spool(spool_place, collector, client) -> None:
    try:
        _calls_during_outage(collector, client, "down")
        posts = len(collector.requests)
        started = time.monotonic()
        assert respan_instrument.flush(20)  # safely spooled, and Respan still answers 503
        assert time.monotonic() - started < 8
        assert len(collector.requests) > posts  # it asked Respan before counting on the spool
        assert collector.logs == [] and _spooled() == N
        collector.set_outage(False)
        assert respan_instrument.flush(20)
        _each_once(collector, "down")
    finally:
        collector.set_outage(False)
        respan_instrument.uninstrument()


def test_flush_honours_a_retry_after_longer_than_its_timeout(spool_place, collector, client) -> None:
    """A 429 that asks for a wait beyond flush's timeout: Respan said it is not accepting, so the
    spool counts, and no post is sent before the time it asked for."""
    try:
        collector.set_outage(True, status=429, retry_after=30)
        start(collector)
        for i in range(3):
            with respan_instrument.attributes(custom_identifier=f"slow-{i}"):
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                )
        assert collector.wait_for_requests(1, timeout=10)
        time.sleep(0.5)
        posts = len(collector.requests)
        assert respan_instrument.flush(5)
        assert len(collector.requests) == posts and _spooled() == 3
    finally:
        collector.set_outage(False)
        respan_instrument.uninstrument()


EXIT_CHILD = """
import os, time
import openai
import respan_instrument
respan_instrument.instrument()
client = openai.OpenAI(api_key="sk-x", base_url=os.environ["STUB_URL"], max_retries=0)
for i in range({n}):
    with respan_instrument.attributes(custom_identifier=f"exit-{{i}}"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}])
print("called", flush=True)
while not os.path.exists(os.environ["GO_FILE"]):
    time.sleep(0.05)
"""


def test_exit_flush_after_an_outage_delivers_within_its_bound(spool_place, collector, stub, tmp_path) -> None:
    go = tmp_path / "respan-is-back"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPAN_")}
    env.update(spool_place)
    env.update(
        RESPAN_API_KEY=RESPAN_KEY,
        RESPAN_BASE_URL=collector.url + "/api",
        RESPAN_EXIT_TIMEOUT="10",
        RESPAN_INSTRUMENT_STRICT="1",
        STUB_URL=stub.url + "/v1",
        GO_FILE=str(go),
    )
    collector.set_outage(True)
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(EXIT_CHILD.format(n=N))],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "called"
        assert collector.wait_for_requests(1, timeout=10)
        time.sleep(0.5)
        collector.set_outage(False)
        started = time.monotonic()
        go.write_text("")
        _, err = child.communicate(timeout=30)
    finally:
        child.kill()
        collector.set_outage(False)
    assert child.returncode == 0, err
    assert time.monotonic() - started < 10
    assert "Traceback" not in err and "lost" not in err, err
    _each_once(collector, "exit")  # delivered by the exiting process, not left to a next one


def test_persist_during_an_outage_brings_no_try_forward(spool_place, collector) -> None:
    """A worker saves its logs before each result it sends (`persist()`): that waits for the
    spool only, and must not turn the backoff into a post per result while Respan is down."""
    from conftest import respan_logs

    from respan_instrument.deliver.pipeline import Pipeline

    collector.set_outage(True)
    pipeline = Pipeline(  # the directories and long backoff the wiring would hand down
        respan_logs(collector),
        spool_dir=_spool_dirs.resolve_dir(),
        fallback_dir=_spool_dirs.fallback_dir(),
        retry_base=float(LONG_BACKOFF["RESPAN_RETRY_BASE"]),
        retry_cap=float(LONG_BACKOFF["RESPAN_RETRY_CAP"]),
        schedule_delay=float(LONG_BACKOFF["RESPAN_SCHEDULE_DELAY"]),
    )
    try:
        pipeline.submit({"model": "gpt-4o-mini", "custom_identifier": "first"})
        assert collector.wait_for_requests(1, timeout=10)  # the next try is 10-20 s away
        posts = len(collector.requests)
        for i in range(5):
            pipeline.submit({"model": "gpt-4o-mini", "custom_identifier": f"result-{i}"})
            assert pipeline.persist(5)
            time.sleep(0.2)
        assert len(collector.requests) == posts
        assert pipeline.flush(20)  # a flush does try
        assert len(collector.requests) > posts and _spooled() == 6
    finally:
        collector.set_outage(False)
        pipeline.shutdown(2)
