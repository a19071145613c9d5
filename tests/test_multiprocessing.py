"""multiprocessing workers keep their logs (SPEC §5): the application calls nothing of ours.

Pool workers end through os._exit (no atexit) and `with Pool(...)` terminates them (SIGTERM) as
soon as the results are in; ProcessPoolExecutor and plain Process workers end through os._exit
too. Every log of every worker must reach the collector once, after the parent's flush().
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import signal
import sys
import time
from typing import Any

import pytest
from _mp_worker import (
    calls,
    calls_in_two_posts,
    calls_then_sigterm_from_a_thread,
    calls_then_wait,
    forks_a_child_that_is_terminated,
    instrument_child,
)
from conftest import RESPAN_KEY, delivered, start

import respan_instrument

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fork start method")

CALLS = 4  # per task
TASKS = 4
WAIT = 30  # seconds for a pool's results: a hung worker fails the test instead of hanging it


def _check(collector: Any, n: int) -> list[dict[str, Any]]:
    logs = delivered(collector, n, timeout=20)
    ids = [log["span_unique_id"] for log in logs]
    assert len(set(ids)) == n, "a log was delivered twice"
    return logs


def _args(stub: Any, tag: str) -> list[tuple[str, int, str]]:
    return [(stub.url, CALLS, f"{tag}{i}") for i in range(TASKS)]


def test_fork_pool_closed_and_joined(instrumented, stub) -> None:
    pool = multiprocessing.get_context("fork").Pool(2)
    try:
        pool.starmap_async(calls, _args(stub, "fork")).get(WAIT)
        pool.close()  # the workers end normally, through os._exit
    finally:
        pool.terminate()
    pool.join()
    _check(instrumented, CALLS * TASKS)


def test_fork_pool_with_block_terminates_workers(instrumented, stub) -> None:
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.starmap_async(calls, _args(stub, "with")).get(WAIT)
    _check(instrumented, CALLS * TASKS)


def test_spawn_pool_instrumented_by_initializer(instrumented, stub) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2, initializer=instrument_child, initargs=(RESPAN_KEY, instrumented.url + "/api")) as pool:
        pool.starmap_async(calls, _args(stub, "spawn")).get(WAIT)
    _check(instrumented, CALLS * TASKS)


def test_process_pool_executor(instrumented, stub) -> None:
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as executor:
        list(executor.map(calls, *zip(*_args(stub, "ppe"), strict=True), timeout=WAIT))
    _check(instrumented, CALLS * TASKS)


def test_process_that_ends_normally(instrumented, stub) -> None:
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=calls, args=(stub.url, CALLS, f"proc{i}")) for i in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(WAIT)
        assert worker.exitcode == 0
    _check(instrumented, CALLS * 2)


@pytest.fixture()
def slow_writer(monkeypatch: pytest.MonkeyPatch, collector: Any, stub: Any) -> Any:
    """Instrumented with a writer that waits 30 s between passes: a worker's logs stay in memory
    unless something saves them."""
    monkeypatch.setenv("RESPAN_SCHEDULE_DELAY", "30")
    stub.clear()
    start(collector)
    yield collector
    respan_instrument.uninstrument()


def test_worker_terminated_by_sigterm_saves_its_logs(slow_writer, stub) -> None:
    ctx = multiprocessing.get_context("fork")
    done = ctx.Event()
    worker = ctx.Process(target=calls_then_wait, args=(stub.url, CALLS, done, None))
    worker.start()
    assert done.wait(WAIT)
    worker.terminate()
    worker.join(WAIT)
    assert worker.exitcode == -signal.SIGTERM  # it still ends by the signal, as without us
    _check(slow_writer, CALLS)


def test_sigterm_taken_by_another_thread_still_ends_the_worker(slow_writer, stub) -> None:
    ctx = multiprocessing.get_context("fork")
    worker = ctx.Process(target=calls_then_sigterm_from_a_thread, args=(stub.url, CALLS))
    worker.start()
    worker.join(WAIT / 2)  # its main thread sleeps 60 s: only we can interrupt it
    if worker.exitcode is None:
        worker.kill()
        worker.join()
    assert worker.exitcode == -signal.SIGTERM
    _check(slow_writer, CALLS)


def test_a_workers_own_forked_child_terminated_leaves_the_worker_running(slow_writer, stub) -> None:
    ctx = multiprocessing.get_context("fork")
    done = ctx.Event()
    worker = ctx.Process(target=forks_a_child_that_is_terminated, args=(stub.url, CALLS, done))
    worker.start()
    try:
        assert done.wait(WAIT)
        assert worker.is_alive()
    finally:
        worker.terminate()
        worker.join(WAIT)
    assert worker.exitcode == -signal.SIGTERM
    _check(slow_writer, CALLS)  # saved when the worker itself was terminated


def test_terminated_worker_starts_no_post_and_sends_nothing_twice(
    monkeypatch: pytest.MonkeyPatch, collector: Any, stub: Any
) -> None:
    """SIGTERM while a post is on the wire and more logs wait behind it: the worker waits for
    that post (its rows are deleted once accepted) and leaves the rest to its parent. Posting
    them itself, it would be killed mid-post, and the parent would send them again."""
    monkeypatch.setenv("RESPAN_SCHEDULE_DELAY", "0.05")
    start(collector)
    try:
        collector.set_delay(1.3)  # two posts in a row outlast the two seconds' grace
        ctx = multiprocessing.get_context("fork")
        done = ctx.Event()
        worker = ctx.Process(target=calls_in_two_posts, args=(stub.url, CALLS, done))
        worker.start()
        assert done.wait(WAIT)
        worker.terminate()
        worker.join(WAIT)
        assert worker.exitcode == -signal.SIGTERM
        collector.set_delay(0)
        time.sleep(1.5)  # a post the worker left on the wire would land by now
        _check(collector, CALLS)
    finally:
        collector.set_delay(0)
        respan_instrument.uninstrument()


def test_worker_killed_after_a_message_to_its_parent_lost_nothing(slow_writer, stub) -> None:
    ctx = multiprocessing.get_context("fork")
    ours, theirs = ctx.Pipe()
    worker = ctx.Process(target=calls_then_wait, args=(stub.url, CALLS, None, theirs))
    worker.start()
    assert ours.poll(WAIT)
    assert ours.recv() == "calls made"
    os.kill(worker.pid, signal.SIGKILL)  # no exit hook of any kind: only what it spooled is left
    worker.join(WAIT)
    _check(slow_writer, CALLS)


def test_terminated_pool_during_an_outage_is_delivered_later(instrumented, stub) -> None:
    instrumented.set_outage(True)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.starmap_async(calls, _args(stub, "outage")).get(WAIT)
    assert respan_instrument.flush(10)  # safe in the spool while Respan is down
    assert not instrumented.logs
    instrumented.set_outage(False)
    _check(instrumented, CALLS * TASKS)
