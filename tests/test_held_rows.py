"""Rows the writer just spooled are posted from memory (no claim reads them back): never twice,
never after the spool let go of them, and not once their lease is about to run out."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
from conftest import RESPAN_KEY, chat, respan_logs, spool_rows, start

import respan_instrument
from respan_instrument.deliver import spool as _spool
from respan_instrument.deliver.http import RetryPolicy
from respan_instrument.deliver.respan import RespanLogs
from respan_instrument.deliver.sender import HELD_MARGIN, HELD_MAX_BYTES, Sender


def _tags(logs: list[dict[str, Any]]) -> Counter[str]:
    return Counter(str(log.get("custom_identifier")) for log in logs)


class _Held(NamedTuple):
    sender: Sender
    spool: _spool.Spool
    route: str


@pytest.fixture
def held(spool_dir: str, collector: Any) -> Iterator[_Held]:
    """A sender (its thread not started) on its own spool handle, as the pipeline wires it."""
    spool = _spool.Spool(spool_dir, 1 << 30, _spool.owner_token(), RESPAN_KEY)
    spool.open()
    destination = respan_logs(collector)
    sender = Sender(spool, destination, RetryPolicy(base=0.01, cap=0.05))
    yield _Held(sender, spool, destination.route)
    if sender.thread.is_alive():
        sender.finish()
        sender.thread.join(5)
    spool.close()
    destination.close()


def _write(held: _Held, tags: list[str]) -> None:
    """What the writer does: spool the rows, then tell the sender of them."""
    bodies = [json.dumps({"log_type": "chat", "model": "m", "custom_identifier": t}).encode() for t in tags]
    last, trimmed = held.spool.append(held.route, bodies)
    held.sender.rows_written(last, bodies, whole=not trimmed)


def _ids_of(rows: list[tuple[int, bytes]]) -> list[str]:
    return [json.loads(body)["custom_identifier"] for _, body in rows]


def test_held_rows_a_claim_took_are_not_posted_again(held, spool_dir, collector) -> None:
    _write(held, [f"a-{i}" for i in range(6)])
    assert held.sender.poster.round(threading.Event()) == 0.0  # a claim takes them (and posts them)
    _write(held, [f"b-{i}" for i in range(3)])
    rows = held.sender._take_held(time.monotonic())
    assert _ids_of(rows) == [f"b-{i}" for i in range(3)]  # the a-rows, still held, are skipped
    assert held.sender.poster.post_held(rows, threading.Event()) == 0.0
    assert _tags(collector.logs) == Counter(
        {**{f"a-{i}": 1 for i in range(6)}, **{f"b-{i}": 1 for i in range(3)}}
    )
    assert spool_rows(spool_dir) == 0


def test_held_rows_whose_lease_runs_out_soon_are_left_to_a_claim(held) -> None:
    _write(held, ["old"])
    lease_left = float(held.sender.destination.wire_timeout) + HELD_MARGIN - 1
    first, bodies, _ = held.sender.held[0]
    held.sender.held[0] = (first, bodies, time.monotonic() + lease_left)  # as if written long ago
    _write(held, ["new"])
    assert _ids_of(held.sender._take_held(time.monotonic())) == ["new"]


def test_a_spool_trimmed_by_its_cap_holds_nothing_back(held) -> None:
    bodies = [b'{"custom_identifier": "x"}']
    last, _ = held.spool.append(held.route, bodies)
    held.sender.rows_written(last, bodies, whole=False)
    assert not held.sender.held and held.sender._take_held(time.monotonic()) == []


def test_held_rows_with_a_bulk_budget_that_runs_dry_arrive_once(
    spool_dir, collector, client, monkeypatch
) -> None:
    """Ten bulk posts a minute to spare and then one by one, held rows and claims taking turns:
    every log arrives, each once."""
    monkeypatch.setattr(RespanLogs, "max_batch", 4)
    monkeypatch.setenv("RESPAN_BULK_PER_MINUTE", "60")
    start(collector)
    try:
        expected = set()
        for wave in range(3):
            for i in range(16):
                chat(client, f"w{wave}-{i}")
                expected.add(f"w{wave}-{i}")
            time.sleep(0.3)
        assert respan_instrument.flush(30)
        seen = _tags(collector.logs)
        assert {t: seen[t] for t in expected if seen[t] != 1} == {}
    finally:
        respan_instrument.uninstrument()


def test_held_rows_are_bounded_in_bytes(held) -> None:
    """Large logs (images, long transcripts) waiting through an outage must not pile up in
    memory beside the spool: past HELD_MAX_BYTES they are left to claims."""
    big = b'{"custom_identifier": "' + b"x" * (HELD_MAX_BYTES // 3) + b'"}'

    def write_big() -> None:
        last, trimmed = held.spool.append(held.route, [big])
        held.sender.rows_written(last, [big], whole=not trimmed)

    for _ in range(4):
        write_big()
    assert len(held.sender.held) == 2
    assert len(held.sender._take_held(time.monotonic())) == 2
    write_big()
    assert len(held.sender.held) == 1  # room again once the held ones were taken


def test_rows_gone_from_the_spool_are_not_waited_for(held, collector) -> None:
    """Rows the sender was told of but that left the spool otherwise (trimmed by its size cap,
    delivered by another process) must not keep it waking at every writer pass for nothing."""
    sender = held.sender
    for tag in ("a", "b"):
        bodies = [json.dumps({"custom_identifier": tag}).encode()]
        last, _ = held.spool.append(held.route, bodies)
        sender.rows_written(last, bodies, whole=False)  # (not held: as after a trim)
        held.spool.delete([last])  # gone, as the size cap or another process takes it
    sender._waiting_since -= 60  # the oldest waited long: due
    sender.spool_opened()
    sender.thread.start()
    deadline = time.monotonic() + 5
    while sender._rows_out < sender._rows_in and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sender._rows_out == sender._rows_in == 2
    assert collector.logs == []
