"""OTLP export (RESPAN_EXPORT=otlp): the real SDK against the stub, spans decoded by the collector's
OTLP/HTTP receiver with opentelemetry-proto; and the span attributes every mode carries."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from answers import genai_usd
from conftest import FAST_RETRY, OPENAI_KEY, RESPAN_KEY, child_env, run_child, spool_rows, start

import respan_instrument
from respan_instrument.local import Collector

CONTENT_KEYS = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions")
CREDENTIAL = "cred-secret-789"
CREDENTIALS = {"openai": {"api_key": CREDENTIAL}}


@pytest.fixture(autouse=True)
def _otlp_extra_installed() -> None:
    """The `test` extra brings the OTLP packages: without them these tests cannot pass."""
    try:
        import opentelemetry.exporter.otlp.proto.common  # noqa: F401
        import opentelemetry.proto  # noqa: F401
    except ImportError:
        pytest.fail("the otlp extra is not installed: pip install -e '.[test]'")


@pytest.fixture()
def otlp(collector: Collector, stub: Any) -> Iterator[Collector]:
    stub.clear()
    start(collector, export="otlp")
    yield collector
    respan_instrument.uninstrument()


@pytest.fixture()
def usage(stub: Any) -> Iterator[dict[str, int]]:
    """Usage the stub reports, with cached and reasoning tokens (restored after)."""
    saved = dict(stub.usage)
    stub.usage.update(prompt_tokens=40, completion_tokens=12, cached_tokens=16, reasoning_tokens=5)
    yield stub.usage
    stub.usage.clear()
    stub.usage.update(saved)


def spans(collector: Collector, n: int) -> list[dict[str, Any]]:
    assert respan_instrument.flush(10), "flush() did not report full delivery"
    assert collector.wait_for_spans(n, timeout=10)
    got = collector.spans
    assert len(got) == n, [s["name"] for s in got]
    return got


def no_secrets(collector: Collector) -> None:
    for request in collector.requests:
        for secret in (OPENAI_KEY.encode(), CREDENTIAL.encode(), b"Bearer", b"authorization"):
            assert secret not in request.body, secret
        assert request.headers.get("authorization") == f"Bearer {RESPAN_KEY}"


def test_chat_span_carries_every_attribute_of_what_the_stub_returned(otlp, client, usage) -> None:
    scope = {
        "customer_identifier": "cust-1",
        "customer_params": {"email": "a@b.c", "name": "Ann"},
        "thread_identifier": "thread-9",
        "group_identifier": "group-3",
        "custom_identifier": "custom-7",
        "metadata": {"env": "prod", "n": 3},
        "customer_credentials": CREDENTIALS,
    }
    with respan_instrument.attributes(**scope):
        reply = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
            temperature=0.3,
            max_tokens=50,
        )
    (span,) = spans(otlp, 1)
    a = span["attributes"]
    assert span["name"] == "chat gpt-4o-mini" and span["kind"] == 3  # CLIENT
    assert span["scope"]["name"] == "respan_instrument" and span["status"]["code"] == 0
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o-mini" and a["gen_ai.request.temperature"] == 0.3
    assert a["gen_ai.request.max_tokens"] == 50
    assert a["gen_ai.response.model"] == reply.model and a["gen_ai.response.id"] == reply.id
    assert a["gen_ai.response.finish_reasons"] == [reply.choices[0].finish_reason]
    assert a["gen_ai.usage.input_tokens"] == reply.usage.prompt_tokens == 40
    assert a["gen_ai.usage.output_tokens"] == reply.usage.completion_tokens == 12
    assert a["gen_ai.usage.cache_read.input_tokens"] == 16
    assert a["gen_ai.usage.reasoning.output_tokens"] == 5
    # reasoning tokens are billed as output tokens
    usd = genai_usd(reply.model, input_tokens=40, cache_read_tokens=16, output_tokens=12)
    assert a["gen_ai.usage.cost"] == pytest.approx(usd)
    assert a["respan.entity.log_type"] == "chat"
    assert a["respan.customer_params.customer_identifier"] == "cust-1"
    assert a["respan.customer_params.email"] == "a@b.c" and a["respan.customer_params.name"] == "Ann"
    assert a["respan.threads.thread_identifier"] == "thread-9" == a["gen_ai.conversation.id"]
    assert a["respan.trace.trace_group_identifier"] == "group-3"
    assert a["respan.span_params.custom_identifier"] == "custom-7"
    assert a["respan.metadata.env"] == "prod" and a["respan.metadata.n"] == 3
    # legacy indexed names, OTLP export only
    assert a["gen_ai.usage.prompt_tokens"] == 40 and a["gen_ai.usage.completion_tokens"] == 12
    assert a["gen_ai.prompt.0.role"] == "system" and a["gen_ai.prompt.0.content"] == "be brief"
    assert a["gen_ai.prompt.1.role"] == "user" and a["gen_ai.prompt.1.content"] == "hi"
    assert a["gen_ai.completion.0.role"] == "assistant"
    assert a["gen_ai.completion.0.content"] == reply.choices[0].message.content
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "hi"}]},
    ]
    assert json.loads(a["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": reply.choices[0].message.content}],
            "finish_reason": "stop",
        }
    ]
    assert not any(k.startswith(("respan.customer_credentials", "respan.cost_usd")) for k in a)
    no_secrets(otlp)


def test_stream_span_has_time_to_first_chunk_and_joins_the_callers_trace(otlp, client, sdk_spans) -> None:
    provider, _ = sdk_spans
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("handler") as parent:
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "stream me"}], stream=True
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    (span,) = spans(otlp, 1)
    a = span["attributes"]
    ctx = parent.get_span_context()
    assert span["trace_id"] == f"{ctx.trace_id:032x}" and span["parent_span_id"] == f"{ctx.span_id:016x}"
    assert a["gen_ai.request.stream"] is True
    assert 0 < a["gen_ai.response.time_to_first_chunk"] == a["gen_ai.usage.ttft"]
    assert span["end_time_unix_nano"] > span["start_time_unix_nano"]
    assert json.loads(a["gen_ai.output.messages"])[0]["parts"] == [{"type": "text", "content": text}]


def test_responses_span_has_system_instructions_and_items(otlp, client) -> None:
    reply = client.responses.create(model="gpt-4o-mini", instructions="answer in French", input="hello")
    (span,) = spans(otlp, 1)
    a = span["attributes"]
    assert a["respan.entity.log_type"] == "response" and a["gen_ai.response.id"] == reply.id
    assert a["gen_ai.usage.input_tokens"] == reply.usage.input_tokens
    assert a["gen_ai.usage.output_tokens"] == reply.usage.output_tokens
    assert json.loads(a["gen_ai.system_instructions"]) == [{"type": "text", "content": "answer in French"}]
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "hello"}]}
    ]
    out = json.loads(a["gen_ai.output.messages"])
    assert out[0]["role"] == "assistant" and out[0]["parts"] == [
        {"type": "text", "content": reply.output_text}
    ]
    assert a["gen_ai.prompt.0.role"] == "system" and a["gen_ai.prompt.1.content"] == "hello"


def test_embeddings_span_has_input_only(otlp, client) -> None:
    reply = client.embeddings.create(model="text-embedding-3-small", input="vectors please")
    (span,) = spans(otlp, 1)
    a = span["attributes"]
    assert a["gen_ai.operation.name"] == "embeddings" and a["respan.entity.log_type"] == "embedding"
    assert a["gen_ai.usage.input_tokens"] == reply.usage.prompt_tokens
    assert "gen_ai.output.messages" not in a and "gen_ai.usage.output_tokens" not in a
    assert json.loads(a["gen_ai.input.messages"])[0]["parts"] == [
        {"type": "text", "content": "vectors please"}
    ]
    assert str(reply.data[0].embedding[0]) not in json.dumps(a)


def test_failed_call_is_an_error_span(otlp, client) -> None:
    import openai

    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="error-429", messages=[{"role": "user", "content": "x"}])
    (span,) = spans(otlp, 1)
    assert span["status"]["code"] == 2 and span["status"]["message"]
    assert span["attributes"]["error.type"] == "RateLimitError"
    assert span["events"][0]["name"] == "exception"


def test_content_is_truncated_as_request_logs_are(collector, stub, client, monkeypatch) -> None:
    monkeypatch.setenv("RESPAN_MAX_CONTENT_BYTES", "2000")
    start(collector, export="otlp")
    image = "data:image/png;base64," + "A" * 5000
    history = [{"role": "system", "content": "rules"}]
    history += [{"role": "user", "content": f"old-{i} " + "x" * 300} for i in range(20)]
    history += [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image}}]}]
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=history)
        (span,) = spans(collector, 1)
    finally:
        respan_instrument.uninstrument()
    messages = json.loads(span["attributes"]["gen_ai.input.messages"])
    assert "A" * 100 not in json.dumps(span) and len(messages) < len(history)
    assert messages[0]["parts"][0]["content"] == "rules"  # the system message stays
    assert messages[-1]["parts"][0]["type"] == "uri" and "image/png" in messages[-1]["parts"][0]["uri"]


def test_content_capture_off_leaves_no_content(collector, stub, client) -> None:
    respan_instrument.instrument(
        api_key=RESPAN_KEY, base_url=collector.url + "/api", export="otlp", capture_content=False
    )
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "private"}])
        client.responses.create(model="gpt-4o-mini", instructions="secret rules", input="private")
        got = spans(collector, 2)
    finally:
        respan_instrument.uninstrument()
    for span in got:
        a = span["attributes"]
        assert not [
            k for k in a if k in CONTENT_KEYS or k.startswith(("gen_ai.prompt.", "gen_ai.completion."))
        ]
        assert a["gen_ai.usage.input_tokens"] > 0
        assert "private" not in json.dumps(span) and "secret rules" not in json.dumps(span)


def test_log_is_a_span_too(otlp) -> None:
    respan_instrument.log(
        model="gpt-4o",
        log_type="chat",
        prompt_tokens=3,
        completion_tokens=4,
        cost=0.5,
        customer_identifier="hand",
    )
    (span,) = spans(otlp, 1)
    a = span["attributes"]
    assert a["gen_ai.request.model"] == "gpt-4o" and a["gen_ai.usage.cost"] == 0.5
    assert a["gen_ai.usage.input_tokens"] == 3 and a["respan.customer_params.customer_identifier"] == "hand"


def test_throttled_then_accepted_with_retry_after(collector, stub, client, monkeypatch) -> None:
    for name, value in FAST_RETRY.items():
        monkeypatch.setenv(name, value)
    start(collector, export="otlp")
    try:
        collector.fail_next(2, status=429, retry_after=0.2)
        for i in range(3):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"t{i}"}]
            )
        got = spans(collector, 3)
    finally:
        respan_instrument.uninstrument()
    assert Counter(r.status for r in collector.requests)[429] == 2
    assert len({s["span_id"] for s in got}) == 3


def test_endpoint_without_a_key_goes_to_a_collector_without_authorization(stub, client, monkeypatch) -> None:
    agent = Collector()  # an OpenTelemetry Collector adds the key itself
    agent.start()
    try:
        monkeypatch.setenv("RESPAN_OTLP_ENDPOINT", agent.url + "/v1/traces")
        monkeypatch.setenv("RESPAN_EXPORT", "otlp")
        respan_instrument.instrument()
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert respan_instrument.flush(10) and agent.wait_for_spans(1, 10)
        (request,) = agent.requests
        assert request.path == "/v1/traces" and "authorization" not in request.headers
        assert request.headers["content-type"] == "application/x-protobuf"
    finally:
        respan_instrument.uninstrument()
        agent.stop()


def test_export_setting(monkeypatch, caplog) -> None:
    from respan_instrument._config import load_settings

    monkeypatch.setenv("RESPAN_EXPORT", "OTLP")
    assert load_settings().export == "otlp"
    assert load_settings(export="logs").export == "logs"  # the argument wins
    assert load_settings(base_url="http://h/api").otlp_endpoint == "http://h/api/v2/traces"
    monkeypatch.setenv("RESPAN_EXPORT", "zipkin")
    with caplog.at_level(logging.WARNING, logger="respan_instrument"):
        assert load_settings().export == "logs"
        assert load_settings().export == "logs"
    said = [r for r in caplog.records if "zipkin" in r.getMessage()]
    assert len(said) <= 1  # once per process (an earlier test may have said it already)
    monkeypatch.setenv("RESPAN_OTLP_ENDPOINT", "not a url")
    with pytest.raises(ValueError, match="RESPAN_OTLP_ENDPOINT"):
        load_settings()


def test_without_the_otlp_extra_request_logs_are_sent(instrumented, collector, client, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.proto", None)  # as if not installed
    start(collector, export="otlp")
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert respan_instrument.flush(10) and collector.wait_for(1)
    assert collector.spans == [] and len(collector.logs) == 1


def test_app_tracer_provider_spans_carry_respans_names(traced, client) -> None:
    _, exporter = traced
    with respan_instrument.attributes(
        customer_identifier="c-2", thread_identifier="t-2", metadata={"k": "v"}
    ):
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "x"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        list(stream)
    (span,) = exporter.get_finished_spans()
    a = dict(span.attributes or {})
    assert a["respan.entity.log_type"] == "chat" and a["gen_ai.usage.cost"] > 0
    assert a["respan.customer_params.customer_identifier"] == "c-2"
    assert a["respan.threads.thread_identifier"] == "t-2" == a["gen_ai.conversation.id"]
    assert a["respan.metadata.k"] == "v"
    assert a["gen_ai.usage.ttft"] == a["gen_ai.response.time_to_first_chunk"] > 0
    assert not [k for k in a if k.startswith(("gen_ai.prompt.", "gen_ai.completion.", "respan.cost_usd"))]


# ---- across processes ----------------------------------------------------------------------


def run(code: str, collector: Collector, stub: Any, spool_dir: str, **extra: str) -> None:
    done = run_child(
        code, child_env(collector, stub, spool_dir, RESPAN_EXIT_TIMEOUT="2", **extra), timeout=60
    )
    assert done.returncode == 0, done.stderr


def tags(spans: list[dict[str, Any]]) -> Counter[str]:
    return Counter(s["attributes"].get("respan.span_params.custom_identifier") for s in spans)


def test_outage_then_the_next_process_delivers_each_span_once(collector, stub, tmp_path) -> None:
    spool_dir = str(tmp_path / "spool")
    collector.set_outage(True)
    run("for i in range(6):\n    call(f'a-{i}')\n", collector, stub, spool_dir, RESPAN_EXPORT="otlp")
    assert collector.spans == [] and spool_rows(spool_dir) == 6
    collector.set_outage(False)
    run("call('b-0')\nassert respan_instrument.flush(10)\n", collector, stub, spool_dir, RESPAN_EXPORT="otlp")
    got = collector.spans
    assert tags(got) == Counter({f"a-{i}": 1 for i in range(6)} | {"b-0": 1})
    assert len({s["span_id"] for s in got}) == 7 and collector.logs == []
    assert spool_rows(spool_dir) == 0
    # the spooled rows went as one batch: their serialized requests joined are one request
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    sizes = [
        len(ExportTraceServiceRequest.FromString(r.body).resource_spans)
        for r in collector.requests
        if r.status == 200
    ]
    assert max(sizes) > 1 and sum(sizes) == 7
    for name in os.listdir(spool_dir):  # the spool kept spans, never a key
        with open(os.path.join(spool_dir, name), "rb") as f:
            data = f.read()
        assert RESPAN_KEY.encode() not in data and b"sk-x" not in data


def test_a_shared_spool_sends_logs_and_spans_each_to_its_own_place(collector, stub, tmp_path) -> None:
    spool_dir = str(tmp_path / "spool")
    collector.set_outage(True)
    run("for i in range(3):\n    call(f'log-{i}')\n", collector, stub, spool_dir)
    run("for i in range(4):\n    call(f'span-{i}')\n", collector, stub, spool_dir, RESPAN_EXPORT="otlp")
    assert spool_rows(spool_dir) == 7
    collector.set_outage(False)
    # each mode's next process delivers what is its own, and only that
    run("assert respan_instrument.flush(10)\n", collector, stub, spool_dir)
    assert Counter(log.get("custom_identifier") for log in collector.logs) == Counter(
        {f"log-{i}": 1 for i in range(3)}
    )
    assert collector.spans == [] and spool_rows(spool_dir) == 4
    run("assert respan_instrument.flush(10)\n", collector, stub, spool_dir, RESPAN_EXPORT="otlp")
    assert tags(collector.spans) == Counter({f"span-{i}": 1 for i in range(4)})
    assert len(collector.logs) == 3 and spool_rows(spool_dir) == 0
    for request in collector.requests:
        kind = "traces" if request.path.endswith("/v2/traces") else "logs"
        body = request.body
        assert (b"span-" in body) == (kind == "traces") or request.status != 200
        assert (b"log-" not in body) or kind == "logs"
