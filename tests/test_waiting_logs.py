"""A log waiting for the background writer holds what its log needs, not the caller's objects:
records wait up to half a second in a busy process, so whatever they hold outlives the call."""

from __future__ import annotations

import gc
import sys

from conftest import start

import respan_instrument


def test_a_waiting_log_holds_no_reference_to_the_callers_content(
    spool_dir, collector, client, monkeypatch, done
) -> None:
    monkeypatch.setenv("RESPAN_SCHEDULE_DELAY", "30")  # the log waits in memory until flush()
    start(collector)
    content = "".join(["kept by ", "the caller alone"])  # an object of its own, not interned
    before = sys.getrefcount(content)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": content}])
    gc.collect()
    # the request waits as the bytes the SDK sent; the SDK's dict tree (which shares the
    # caller's strings and objects) was let go when the call returned
    assert sys.getrefcount(content) == before
    assert respan_instrument.flush(10)
    (log,) = collector.logs
    assert log["prompt_messages"] == [{"role": "user", "content": content}]
    assert log["model"] and log["prompt_tokens"] > 0
