"""attributes(): nesting, decorators, contextvars across tasks, threads and executors."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading

import pytest
from conftest import RESPAN_KEY, delivered

import respan_instrument

MSG = [{"role": "user", "content": "x"}]


def call(client) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MSG)


def test_nesting_merges(instrumented, client) -> None:
    with respan_instrument.attributes(customer_identifier="outer", metadata={"a": "1", "b": "1"}):
        with respan_instrument.attributes(
            customer_identifier="inner", metadata={"b": "2"}, thread_identifier="t"
        ):
            call(client)
        call(client)
    call(client)
    inner, outer, none = delivered(instrumented, 3)
    assert inner["customer_identifier"] == "inner" and inner["thread_identifier"] == "t"
    assert inner["metadata"] == {"a": "1", "b": "2"}
    assert outer["customer_identifier"] == "outer" and "thread_identifier" not in outer
    assert "customer_identifier" not in none and "metadata" not in none


def test_decorators(instrumented, client) -> None:
    @respan_instrument.attributes(customer_identifier="sync-fn")
    def sync_fn() -> None:
        call(client)

    @respan_instrument.attributes(customer_identifier="gen-fn")
    def gen_fn():
        call(client)
        yield 1

    sync_fn()
    list(gen_fn())
    logs = delivered(instrumented, 2)
    assert [entry["customer_identifier"] for entry in logs] == ["sync-fn", "gen-fn"]


def test_asyncio_tasks_inherit(instrumented, aclient) -> None:
    async def one(c, name: str) -> None:
        with respan_instrument.attributes(custom_identifier=name):
            await c.chat.completions.create(model="gpt-4o-mini", messages=MSG)

    @respan_instrument.attributes(customer_identifier="async-fn")
    async def main() -> None:
        async with aclient() as c:
            await asyncio.gather(*(asyncio.create_task(one(c, f"task-{i}")) for i in range(3)))

    asyncio.run(main())
    logs = delivered(instrumented, 3)
    assert {entry["customer_identifier"] for entry in logs} == {"async-fn"}
    assert {entry["custom_identifier"] for entry in logs} == {"task-0", "task-1", "task-2"}


def test_threads_and_executors(instrumented, client) -> None:
    with respan_instrument.attributes(customer_identifier="threaded"):
        ctx = contextvars.copy_context()
        t = threading.Thread(target=ctx.run, args=(call, client))
        t.start()
        t.join()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            pool.submit(contextvars.copy_context().run, call, client).result()
    logs = delivered(instrumented, 2)
    assert [entry["customer_identifier"] for entry in logs] == ["threaded", "threaded"]


def test_defaults_from_instrument(collector, client) -> None:
    respan_instrument.instrument(
        api_key=RESPAN_KEY,
        base_url=collector.url + "/api",
        attributes={"metadata": {"env": "prod"}, "customer_identifier": "svc"},
    )
    try:
        with respan_instrument.attributes(metadata={"plan": "pro"}):
            call(client)
        (log,) = delivered(collector)
    finally:
        respan_instrument.uninstrument()
    assert log["metadata"] == {"env": "prod", "plan": "pro"} and log["customer_identifier"] == "svc"


def test_validation_at_the_call() -> None:
    with pytest.raises(TypeError, match="unknown"):
        respan_instrument.attributes(customer="x")
    with pytest.raises(TypeError):
        respan_instrument.attributes(customer_identifier=["x"])
    with pytest.raises(ValueError):
        respan_instrument.attributes(customer_identifier="x" * 1000)
    with pytest.raises(TypeError):
        respan_instrument.attributes(metadata={"k": object()})
    with pytest.raises(TypeError):
        respan_instrument.attributes(customer_params={"customer_identifier": "a", "phone": "1"})


def test_credentials_never_in_a_log(instrumented, client) -> None:
    with respan_instrument.attributes(
        customer_credentials={"openai": {"api_key": "sk-byok-secret"}}, customer_identifier="c"
    ):
        call(client)
    (log,) = delivered(instrumented)
    assert (
        log["customer_identifier"] == "c" and "customer_credentials" not in log
    )  # the scope applied, minus them
    assert all(b"sk-byok-secret" not in body for _, _, body, _ in instrumented.requests)
