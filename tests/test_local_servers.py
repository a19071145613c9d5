"""The loopback servers themselves: the OpenAI stub driven by the real SDK, the collector by httpx."""

from __future__ import annotations

import asyncio
import gzip
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pydantic
import pytest
from faulty_collector import FaultyCollector

from respan_instrument.cli._logs import read_logs
from respan_instrument.local.collector import Collector
from respan_instrument.local.openai_stub import OpenAIStub

KEY = "rk-local-test"
USER: Any = [{"role": "user", "content": "Hello there"}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}


class Person(pydantic.BaseModel):
    name: str
    age: int
    tags: list[str]


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture()
def coll() -> Iterator[FaultyCollector]:
    with FaultyCollector(api_key=KEY) as server:
        yield server


@pytest.fixture()
def http() -> Iterator[httpx.Client]:
    with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=10.0) as client:
        yield client


# -- OpenAI stub: chat completions --------------------------------------------------------


def test_chat_completion(plain_client: openai.OpenAI, plain_stub: OpenAIStub) -> None:
    raw = plain_client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=USER)
    assert raw.headers["x-request-id"].startswith("req_")
    done = raw.parse()
    assert done.id.startswith("chatcmpl-")
    assert done.object == "chat.completion"
    assert done.model == "gpt-4o-mini-2024-07-18"
    assert done.choices[0].message.content == "Echo: Hello there"
    assert done.choices[0].finish_reason == "stop"
    assert done.usage is not None
    assert (done.usage.prompt_tokens, done.usage.completion_tokens, done.usage.total_tokens) == (7, 3, 10)
    assert done.usage.prompt_tokens_details is not None
    assert done.usage.prompt_tokens_details.cached_tokens == 0
    assert done.usage.completion_tokens_details is not None
    assert done.usage.completion_tokens_details.reasoning_tokens == 0
    (req,) = plain_stub.requests
    assert req.path == "/v1/chat/completions"
    assert req.body["messages"] == USER
    assert req.headers["authorization"] == "Bearer sk-test"
    plain_stub.clear()
    assert plain_stub.requests == []


def test_chat_echoes_unknown_model(plain_client: openai.OpenAI) -> None:
    done = plain_client.chat.completions.create(model="my-custom-model", messages=USER)
    assert done.model == "my-custom-model"


def test_chat_stream_with_usage(plain_client: openai.OpenAI) -> None:
    stream = plain_client.chat.completions.create(
        model="gpt-4o-mini", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    content = [
        c.choices[0].delta.content for c in chunks[1:] if c.choices and c.choices[0].delta.content is not None
    ]
    assert len(content) == 5
    assert "".join(content) == "Echo: Hello there"
    assert chunks[-2].choices[0].finish_reason == "stop"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None and last.usage.total_tokens == 10
    assert all(c.usage is None for c in chunks[:-1])


def test_chat_stream_chunk_count_header(plain_client: openai.OpenAI) -> None:
    stream = plain_client.chat.completions.create(
        model="gpt-4o-mini", messages=USER, stream=True, extra_headers={"x-stub-chunks": "50"}
    )
    chunks = list(stream)
    assert len(chunks) == 1 + 50 + 1  # role, content pieces, finish
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Echo: Hello there"
    assert chunks[-1].usage is None


def test_chat_stream_helper(plain_client: openai.OpenAI) -> None:
    with plain_client.chat.completions.stream(model="gpt-4o-mini", messages=USER) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Echo: Hello there"


def test_chat_tool_call(plain_client: openai.OpenAI) -> None:
    done = plain_client.chat.completions.create(model="gpt-4o", messages=USER, tools=[WEATHER_TOOL])
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    call: Any = calls[0]
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "x", "days": 1}


def test_chat_tool_call_stream(plain_client: openai.OpenAI) -> None:
    chunks = list(
        plain_client.chat.completions.create(model="gpt-4o", messages=USER, tools=[WEATHER_TOOL], stream=True)
    )
    deltas = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert deltas[0].id is not None and deltas[0].function is not None
    assert deltas[0].function.name == "get_weather"
    assert len(deltas) >= 3
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function is not None)
    assert json.loads(arguments) == {"city": "x", "days": 1}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_chat_n_choices(plain_client: openai.OpenAI) -> None:
    done = plain_client.chat.completions.create(model="gpt-4o-mini", messages=USER, n=2)
    assert [c.index for c in done.choices] == [0, 1]
    texts = [c.message.content for c in done.choices]
    assert texts[0] == "Echo: Hello there" and texts[1] != texts[0]
    chunks = list(plain_client.chat.completions.create(model="gpt-4o-mini", messages=USER, n=2, stream=True))
    streamed = {0: "", 1: ""}
    for chunk in chunks:
        for choice in chunk.choices:
            streamed[choice.index] += choice.delta.content or ""
    assert list(streamed.values()) == texts


def test_chat_parse(plain_client: openai.OpenAI) -> None:
    done = plain_client.chat.completions.parse(model="gpt-4o-mini", messages=USER, response_format=Person)
    assert done.choices[0].message.parsed == Person(name="x", age=1, tags=["x"])


def test_reply_and_usage_overrides() -> None:
    usage = {"prompt_tokens": 11, "completion_tokens": 4, "cached_tokens": 2, "reasoning_tokens": 1}
    with OpenAIStub(reply="Fixed answer", usage=usage, stream_chunks=2) as server:
        with openai.OpenAI(base_url=server.base_url, api_key="sk", max_retries=0) as client:
            done = client.chat.completions.create(model="m", messages=USER)
            assert done.choices[0].message.content == "Fixed answer"
            assert done.usage is not None
            assert (done.usage.prompt_tokens, done.usage.completion_tokens, done.usage.total_tokens) == (
                11,
                4,
                15,
            )
            assert done.usage.prompt_tokens_details and done.usage.prompt_tokens_details.cached_tokens == 2
            details = done.usage.completion_tokens_details
            assert details and details.reasoning_tokens == 1
            chunks = list(client.chat.completions.create(model="m", messages=USER, stream=True))
            assert [c.choices[0].delta.content for c in chunks[1:3]] == ["Fixed ", "answer"]
            resp = client.responses.create(model="m", input="hi")
            assert resp.output_text == "Fixed answer"
            assert resp.usage is not None
            assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (11, 4, 15)
            assert resp.usage.input_tokens_details.cached_tokens == 2
            assert resp.usage.output_tokens_details.reasoning_tokens == 1
    with pytest.raises(ValueError):
        OpenAIStub(usage={"bogus": 1})


# -- OpenAI stub: responses --------------------------------------------------------------


def test_responses_create(plain_client: openai.OpenAI, plain_stub: OpenAIStub) -> None:
    resp = plain_client.responses.create(model="gpt-4o-mini", input="Say hi", instructions="Be brief")
    assert resp.id.startswith("resp_") and resp.object == "response"
    assert resp.status == "completed"
    assert resp.model == "gpt-4o-mini-2024-07-18"
    assert resp.output_text == "Echo: Say hi"
    assert resp.output[0].type == "message"
    assert resp.usage is not None
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (9, 3, 12)
    assert plain_stub.requests[-1].path == "/v1/responses"


def test_responses_stream(plain_client: openai.OpenAI) -> None:
    events = list(
        plain_client.responses.create(
            model="gpt-4o-mini", input=[{"role": "user", "content": "a b"}], stream=True
        )
    )
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas: list[Any] = [e for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) == 5 and "".join(d.delta for d in deltas) == "Echo: a b"
    completed: Any = events[-1]
    assert completed.response.output_text == "Echo: a b"
    assert completed.response.usage.total_tokens == 2 + 5 + 3


def test_responses_stream_helper_and_parse(plain_client: openai.OpenAI) -> None:
    with plain_client.responses.stream(model="gpt-4o-mini", input="hey") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == "Echo: hey"
    parsed = plain_client.responses.parse(model="gpt-4o-mini", input="who?", text_format=Person)
    assert parsed.output_parsed == Person(name="x", age=1, tags=["x"])


def test_responses_function_call(plain_client: openai.OpenAI) -> None:
    tool: Any = {
        "type": "function",
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
    resp = plain_client.responses.create(model="gpt-4o-mini", input="find", tools=[tool])
    item: Any = resp.output[0]
    assert item.type == "function_call" and item.name == "lookup"
    assert json.loads(item.arguments) == {"q": "x"}
    events: list[Any] = list(
        plain_client.responses.create(model="gpt-4o-mini", input="find", tools=[tool], stream=True)
    )
    args = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert json.loads(args) == {"q": "x"}
    assert events[-1].response.output[0].call_id == events[2].item.call_id


# -- OpenAI stub: embeddings, legacy completions, Azure -------------------------------------


def test_embeddings(plain_client: openai.OpenAI) -> None:
    many = plain_client.embeddings.create(model="text-embedding-3-small", input=["one two", "three"])
    assert [d.index for d in many.data] == [0, 1]
    assert all(len(d.embedding) == 8 for d in many.data)
    assert many.usage.prompt_tokens == 3 and many.usage.total_tokens == 3
    again = plain_client.embeddings.create(
        model="text-embedding-3-small", input="one two", encoding_format="float"
    )
    assert again.data[0].embedding == pytest.approx(many.data[0].embedding, abs=1e-6)
    as_b64 = plain_client.embeddings.create(
        model="text-embedding-3-small", input="one two", encoding_format="base64"
    )
    assert as_b64.model == "text-embedding-3-small"


def test_legacy_completions(plain_client: openai.OpenAI) -> None:
    done = plain_client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say this")
    assert done.object == "text_completion" and done.id.startswith("cmpl-")
    assert done.choices[0].text == "Echo: Say this"
    assert done.usage is not None and done.usage.total_tokens == 2 + 5 + 3
    chunks = list(
        plain_client.completions.create(
            model="gpt-3.5-turbo-instruct",
            prompt="Say this",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "Echo: Say this"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_azure_client(plain_stub: OpenAIStub) -> None:
    plain_stub.clear()
    with openai.AzureOpenAI(
        azure_endpoint=plain_stub.url, api_version="2024-06-01", api_key="azure-key", max_retries=0
    ) as client:
        done = client.chat.completions.create(model="my-deployment", messages=USER)
        assert done.choices[0].message.content == "Echo: Hello there"
        assert client.embeddings.create(model="emb-deployment", input="x").data[0].index == 0
        assert client.responses.create(model="my-deployment", input="hi").output_text == "Echo: hi"
    paths = [r.path for r in plain_stub.requests]
    assert paths == [
        "/openai/deployments/my-deployment/chat/completions",
        "/openai/deployments/emb-deployment/embeddings",
        "/openai/responses",
    ]
    assert all(r.query["api-version"] == "2024-06-01" for r in plain_stub.requests)
    assert plain_stub.requests[0].headers["api-key"] == "azure-key"


# -- OpenAI stub: errors and failures ----------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "error"),
    [
        ("error-400", openai.BadRequestError),
        ("error-401", openai.AuthenticationError),
        ("error-404", openai.NotFoundError),
        ("error-429", openai.RateLimitError),
        ("error-500", openai.InternalServerError),
    ],
)
def test_error_models(plain_client: openai.OpenAI, model: str, error: type[openai.APIStatusError]) -> None:
    with pytest.raises(error) as info:
        plain_client.chat.completions.create(model=model, messages=USER)
    assert info.value.status_code == int(model[-3:])
    body: Any = info.value.body
    assert isinstance(body, dict) and body["type"] and body["message"]
    if model == "error-429":
        assert info.value.response.headers["retry-after"] == "0"
        assert body["code"] == "rate_limit_exceeded"


def test_status_header_override(plain_client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        plain_client.responses.create(model="gpt-4o-mini", input="x", extra_headers={"x-stub-status": "503"})
    assert info.value.status_code == 503


def test_slow_model(plain_client: openai.OpenAI) -> None:
    start = time.perf_counter()
    done = plain_client.chat.completions.create(model="slow-150", messages=USER)
    assert time.perf_counter() - start >= 0.15
    assert done.model == "slow-150"


def test_stream_fail(plain_client: openai.OpenAI) -> None:
    received: list[str] = []
    with pytest.raises((openai.APIConnectionError, httpx.HTTPError, ConnectionError)):
        for chunk in plain_client.chat.completions.create(model="stream-fail", messages=USER, stream=True):
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert 0 < len("".join(received)) < len("Echo: Hello there")
    # the stub keeps serving after an aborted stream
    assert plain_client.chat.completions.create(model="gpt-4o-mini", messages=USER).choices[0].message.content


def test_stub_api_key_enforced() -> None:
    with OpenAIStub(api_key="sk-right") as server:
        with openai.OpenAI(base_url=server.base_url, api_key="sk-wrong", max_retries=0) as wrong:
            with pytest.raises(openai.AuthenticationError):
                wrong.chat.completions.create(model="gpt-4o-mini", messages=USER)
        with openai.OpenAI(base_url=server.base_url, api_key="sk-right", max_retries=0) as right:
            assert right.chat.completions.create(model="gpt-4o-mini", messages=USER).choices


def test_async_client_smoke(plain_stub: OpenAIStub) -> None:
    async def run() -> tuple[str | None, str]:
        async with openai.AsyncOpenAI(base_url=plain_stub.base_url, api_key="sk", max_retries=0) as client:
            done = await client.chat.completions.create(model="gpt-4o-mini", messages=USER)
            text = ""
            stream = await client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
            async for chunk in stream:
                text += chunk.choices[0].delta.content or "" if chunk.choices else ""
            return done.choices[0].message.content, text

    assert asyncio.run(run()) == ("Echo: Hello there", "Echo: Hello there")


def test_stub_lifecycle() -> None:
    server = OpenAIStub()
    with pytest.raises(RuntimeError):
        _ = server.url
    server.start()
    assert server.url.startswith("http://127.0.0.1:") and server.base_url.endswith("/v1")
    server.stop()
    server.stop()
    assert not server.running


# -- collector ---------------------------------------------------------------------------------


def test_collector_create(coll: Collector, http: httpx.Client) -> None:
    log = {"model": "gpt-4o-mini", "prompt_tokens": 3}
    resp = http.post(coll.base_url + "/request-logs/create/", json=log)
    assert resp.status_code == 201
    uuid.UUID(resp.json()["id"])
    assert coll.wait_for(1, timeout=1.0)
    assert coll.logs == [log]
    (req,) = coll.requests
    assert req.path == "/api/request-logs/create/" and req.status == 201
    assert json.loads(req.body) == log and req.headers["authorization"] == f"Bearer {KEY}"


def test_collector_create_requires_model(coll: Collector, http: httpx.Client) -> None:
    resp = http.post(coll.base_url + "/request-logs/create/", json={"prompt_tokens": 3})
    assert resp.status_code == 400 and resp.json() == {"model": ["This field is required."]}
    assert http.post(coll.base_url + "/request-logs/create/", content=b"{nope").status_code == 400
    assert coll.logs == [] and [r.status for r in coll.requests] == [400, 400]
    assert not coll.wait_for(1, timeout=0.05)


def test_collector_bulk(coll: Collector, http: httpx.Client) -> None:
    rows: list[Any] = [{"model": "a"}, {"no_model": True}, {"model": "b"}, "junk"]
    resp = http.post(coll.base_url + "/request-logs/bulk/", json={"logs": rows})
    assert resp.status_code == 200
    data = resp.json()
    assert (data["success_count"], data["error_count"]) == (2, 2)
    assert [e["index"] for e in data["errors"]] == [1, 3]
    assert coll.logs == [{"model": "a"}, {"model": "b"}]
    too_many = http.post(coll.base_url + "/request-logs/bulk/", json={"logs": [{"model": "m"}] * 501})
    assert too_many.status_code == 400
    assert http.post(coll.base_url + "/request-logs/bulk/", json={}).status_code == 400
    assert len(coll.logs) == 2


def test_collector_auth(coll: Collector) -> None:
    url = coll.base_url + "/request-logs/create/"
    with httpx.Client() as anon:
        missing = anon.post(url, json={"model": "m"})
        wrong = anon.post(url, json={"model": "m"}, headers={"Authorization": "Bearer other"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert wrong.json() == {"detail": "Invalid API key"}
    assert coll.logs == []
    with Collector() as dev, httpx.Client() as anon:
        assert anon.post(dev.base_url + "/request-logs/create/", json={"model": "m"}).status_code == 201
        assert anon.get(dev.base_url + "/health").json() == {"ok": True}


def test_collector_fail_next_and_retry_after(coll: FaultyCollector, http: httpx.Client) -> None:
    url = coll.base_url + "/request-logs/create/"
    coll.fail_next(2, status=503)
    assert [http.post(url, json={"model": "m"}).status_code for _ in range(3)] == [503, 503, 201]
    coll.fail_next(1, status=429, retry_after=2)
    throttled = http.post(url, json={"model": "m"})
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "2" and throttled.json()["retry_after"] == 2
    coll.fail_next(1, status=500, body={"detail": "custom"})
    assert http.post(url, json={"model": "m"}).json() == {"detail": "custom"}
    assert len(coll.logs) == 1
    assert [r.status for r in coll.requests] == [503, 503, 201, 429, 500]


def test_collector_outage_delay_and_drop(coll: FaultyCollector, http: httpx.Client) -> None:
    url = coll.base_url + "/request-logs/bulk/"
    body = {"logs": [{"model": "m"}]}
    coll.set_outage(True)
    assert [http.post(url, json=body).status_code for _ in range(2)] == [503, 503]
    coll.set_outage(True, status=429, retry_after=0.1)
    assert http.post(url, json=body).headers["retry-after"] == "0.1"
    coll.set_outage(False)
    assert http.post(url, json=body).status_code == 200
    coll.set_delay(0.2)
    start = time.perf_counter()
    assert http.post(url, json=body).status_code == 200
    assert time.perf_counter() - start >= 0.2
    coll.set_delay(0)
    coll.drop_connection_next(1)
    with pytest.raises(httpx.TransportError):
        http.post(url, json=body)
    assert http.post(url, json=body).status_code == 200
    assert coll.requests[-2].status == 0
    assert len(coll.logs) == 3
    coll.clear()
    assert coll.logs == [] and coll.requests == []


def test_collector_body_limits_and_gzip(coll: Collector, http: httpx.Client) -> None:
    url = coll.base_url + "/request-logs/create/"
    big = http.post(url, content=b" " * (20 * 1024 * 1024 + 1), headers={"Content-Type": "application/json"})
    assert big.status_code == 413
    packed = gzip.compress(json.dumps({"model": "gz"}).encode())
    resp = http.post(
        url, content=packed, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
    )
    assert resp.status_code == 201 and coll.logs == [{"model": "gz"}]
    assert http.post(coll.base_url + "/request-logs/create", json={"model": "m"}).status_code == 404
    assert http.get(url).status_code == 405


def test_collector_sqlite_and_callback(tmp_path: Path) -> None:
    db = tmp_path / "logs.db"
    seen: list[dict[str, Any]] = []
    with Collector(db_path=db, on_log=seen.append) as server, httpx.Client() as client:
        bulk = {"logs": [{"model": "a", "n": 1}, {"model": "b", "n": 2}]}
        assert client.post(server.base_url + "/request-logs/bulk/", json=bulk).status_code == 200
        assert server.wait_for(2)
        assert seen == bulk["logs"]
        assert [log for _, log in read_logs(str(db))] == bulk["logs"]  # what `respan-instrument logs` reads
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT received_at, json FROM logs ORDER BY rowid").fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    assert [json.loads(r[1]) for r in rows] == bulk["logs"] and mode == "wal"
