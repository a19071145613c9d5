"""Privacy and sampling (SPEC §16): the real SDK against the stub; what reached the collector,
the OTLP receiver, the application's own spans, and the bytes of the spool on disk."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

import pytest
from conftest import assert_none_of, delivered, sdk_has, spool_bytes, start

import respan_instrument

EMAIL = "jane.doe@example.com"
PHONE = "+1 (415) 555-0132"
CARD = "4111 1111 1111 1111"
IBAN = "DE89 3704 0044 0532 0130 00"
KEY = "sk-proj-Ab3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI"
PII = (EMAIL, PHONE, CARD, IBAN, KEY)
# raw forms, as JSON or a span would carry them
RAW = (EMAIL, "555-0132", "4111 1111 1111 1111", "3704 0044 0532", "Ab3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI")
ORDINARY = "Order ORD-20240115-7781 of 2024-01-15 12:30 for $1,234.56 (app 3.11.4, ts 1700000000123)"
PROMPT = f"Hi, I am Jane, {EMAIL}, phone {PHONE}, card {CARD}, IBAN {IBAN}, key {KEY}. {ORDINARY}"
TOOL = {
    "type": "function",
    "function": {
        "name": "lookup_customer",
        "parameters": {"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"]},
    },
}


def conversation() -> list[dict[str, Any]]:
    """A chat with PII in the system and user messages, an assistant's tool call and its result."""
    return [
        {"role": "system", "content": f"Support desk. Escalations: {EMAIL}"},
        {"role": "user", "content": PROMPT},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup_customer", "arguments": json.dumps({"email": EMAIL})},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": f"found: {PHONE}, card {CARD}"},
        {"role": "user", "content": [{"type": "text", "text": f"Again: {EMAIL}, {IBAN}"}]},
    ]


# ---- redaction: request logs and the spool --------------------------------------------------


def test_pii_never_reaches_the_spool_file_nor_the_collector(done, collector, stub, client, spool_dir) -> None:
    collector.set_outage(True)  # Respan unreachable: the logs wait in the spool
    start(collector, redact="pii")
    client.chat.completions.create(model="gpt-4o-mini", messages=conversation())
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}], tools=[TOOL]
    )
    assert respan_instrument.flush(10)  # safely in the spool
    on_disk = spool_bytes(spool_dir)
    assert b"[EMAIL]" in on_disk and b"[CARD]" in on_disk and b"gpt-4o-mini" in on_disk
    assert_none_of(RAW, on_disk)
    assert ORDINARY.encode() in on_disk  # ordinary numbers and text survive

    collector.set_outage(False)
    logs = sorted(delivered(collector, 2), key=lambda log: len(log["prompt_messages"]))
    assert_none_of(RAW, json.dumps(logs))
    tools, chat = logs
    system, user, assistant, tool, again = chat["prompt_messages"]
    assert system == {"role": "system", "content": "Support desk. Escalations: [EMAIL]"}
    assert user["content"] == (
        f"Hi, I am Jane, [EMAIL], phone [PHONE], card [CARD], IBAN [IBAN], key [SECRET]. {ORDINARY}"
    )
    call = assistant["tool_calls"][0]
    assert call["id"] == "call_1" and call["function"]["name"] == "lookup_customer"
    assert json.loads(call["function"]["arguments"]) == {"email": "[EMAIL]"}
    assert tool == {"role": "tool", "tool_call_id": "call_1", "content": "found: [PHONE], card [CARD]"}
    assert again["content"] == [{"type": "text", "text": "Again: [EMAIL], [IBAN]"}]
    assert chat["completion_message"]["content"].startswith("Echo: Again: [EMAIL], [IBAN]")
    # the rest of the log is as it was: model, tokens, cost, status
    assert chat["model"].startswith("gpt-4o-mini") and chat["prompt_tokens"] > 0 and chat["cost"] > 0
    assert chat["status"] == "success"
    assert tools["tool_calls"][0]["function"]["name"] == "lookup_customer"


def test_respan_redact_env_and_the_caller_objects_untouched(
    done, collector, stub, client, monkeypatch
) -> None:
    monkeypatch.setenv("RESPAN_REDACT", "PII")
    start(collector)
    messages = conversation()
    before = json.dumps(messages)
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    (log,) = delivered(collector)
    assert_none_of(RAW, json.dumps(log))
    assert json.dumps(messages) == before  # the caller's messages were never written to


def test_responses_instructions_input_and_output_are_redacted(done, collector, stub, client) -> None:
    start(collector, redact="pii")
    client.responses.create(model="gpt-4o-mini", instructions=f"Reply to {EMAIL}", input=PROMPT)
    (log,) = delivered(collector)
    assert_none_of(RAW, json.dumps(log))
    assert log["instructions"] == "Reply to [EMAIL]"
    assert "[CARD]" in json.dumps(log["input"]) and "[CARD]" in json.dumps(log["output"])


def test_async_stream_is_redacted(done, collector, stub, aclient) -> None:
    start(collector, redact="pii")

    async def main() -> str:
        async with aclient() as c:
            stream = await c.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}], stream=True
            )
            return "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])

    text = asyncio.run(main())
    assert EMAIL in text  # the user gets what the model said, unredacted
    (log,) = delivered(collector)
    assert_none_of(RAW, json.dumps(log))
    assert "[EMAIL]" in log["completion_message"]["content"]


def test_a_function_redactor_sees_each_content_string_on_the_writer(done, collector, stub, client) -> None:
    seen: list[tuple[str, str]] = []

    def shout(text: str) -> str:
        seen.append((text, threading.current_thread().name))
        return text.upper()

    start(collector, redact=shout)
    main = threading.current_thread().name
    client.chat.completions.create(model="gpt-4o-mini", messages=conversation(), user="u-1")
    (log,) = delivered(collector)
    strings = {text for text, _ in seen}
    assert {thread for _, thread in seen} and main not in {thread for _, thread in seen}
    assert PROMPT in strings and json.dumps({"email": EMAIL}) in strings and "lookup_customer" in strings
    assert not strings & {"system", "user", "assistant", "tool", "call_1", "function", "text"}
    assert log["prompt_messages"][1] == {"role": "user", "content": PROMPT.upper()}
    assert log["prompt_messages"][2]["tool_calls"][0]["id"] == "call_1"
    assert log["completion_message"]["role"] == "assistant"


@pytest.mark.parametrize("failure", ["raises", "returns None"])
def test_a_redactor_that_fails_drops_the_content_reported_once(
    done, collector, stub, client, caplog, failure
) -> None:
    def broken(text: str) -> str:
        if failure == "raises":
            raise ValueError(f"cannot redact {text}")
        return None  # type: ignore[return-value]

    caplog.set_level(logging.WARNING, logger="respan_instrument")
    from respan_instrument import _logger

    _logger._seen.discard("redactor-failed")
    start(collector, redact=broken)
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])
    logs = delivered(collector, 3)
    for log in logs:
        assert_none_of(RAW, json.dumps(log))
        assert not {"prompt_messages", "completion_message", "input", "output"} & set(log)
        assert log["model"].startswith("gpt-4o-mini") and log["prompt_tokens"] > 0 and log["cost"] > 0
    reports = [r for r in caplog.records if r.name == "respan_instrument" and "redact" in r.getMessage()]
    assert len(reports) == 1, [r.getMessage() for r in reports]
    assert_none_of(RAW, reports[0].getMessage())
    assert "ValueError" in reports[0].getMessage() or "NoneType" in reports[0].getMessage()


def test_hand_built_logs_are_redacted_and_sampled(done, collector) -> None:
    start(collector, redact="pii", sample_rate=0.0)
    respan_instrument.log(
        model="gpt-4o",
        prompt_messages=[{"role": "user", "content": PROMPT}],
        completion_message={"role": "assistant", "content": EMAIL},
        cost=0.5,
    )
    (log,) = delivered(collector)
    assert "prompt_messages" not in log and log["cost"] == 0.5  # sampled out: metrics only
    collector.clear()
    with respan_instrument.attributes(capture_content=True):  # this one keeps its content
        respan_instrument.log(
            model="gpt-4o",
            prompt_messages=[{"role": "user", "content": PROMPT}],
            completion_message={"role": "assistant", "content": EMAIL},
        )
    (log,) = delivered(collector)
    assert_none_of(RAW, json.dumps(log))
    assert log["completion_message"] == {"role": "assistant", "content": "[EMAIL]"}
    assert "capture_content" not in log


# ---- the application's own spans, and OTLP export --------------------------------------------


def test_app_spans_carry_no_content_while_a_redactor_is_set(done, collector, stub, client, sdk_spans) -> None:
    provider, exporter = sdk_spans
    start(collector, redact="pii", tracer_provider=provider)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])
    (span,) = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert "gen_ai.input.messages" not in attributes and "gen_ai.output.messages" not in attributes
    assert attributes["gen_ai.usage.input_tokens"] > 0
    assert_none_of(RAW, json.dumps({k: str(v) for k, v in attributes.items()}))
    (log,) = delivered(collector)  # the log has the content, redacted
    assert log["prompt_messages"][0]["content"].startswith("Hi, I am Jane, [EMAIL]")


def test_otlp_export_is_redacted(done, collector, stub, client) -> None:
    start(collector, redact="pii", export="otlp")
    client.chat.completions.create(model="gpt-4o-mini", messages=conversation())
    assert respan_instrument.flush(10)
    assert collector.wait_for_spans(1, timeout=10)
    (span,) = collector.spans
    for request in collector.requests:
        assert_none_of(RAW, request.body)
    attributes = span["attributes"]
    assert (
        "[EMAIL]" in attributes["gen_ai.input.messages"] and "[PHONE]" in attributes["gen_ai.input.messages"]
    )
    assert "[EMAIL]" in attributes["gen_ai.output.messages"]
    assert "[EMAIL]" in attributes["gen_ai.prompt.1.content"]
    assert_none_of(RAW, json.dumps(attributes, default=str))


# ---- content off per call ---------------------------------------------------------------------


def test_capture_content_per_call_overrides_the_process(done, collector, stub, client, sdk_spans) -> None:
    provider, exporter = sdk_spans
    start(collector, tracer_provider=provider)
    with respan_instrument.attributes(capture_content=False, customer_identifier="c-1"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "private"}])
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "public"}])
    off, on = sorted(delivered(collector, 2), key=lambda log: "prompt_messages" in log)
    assert "prompt_messages" not in off and "completion_message" not in off
    assert off["customer_identifier"] == "c-1" and off["prompt_tokens"] > 0 and "capture_content" not in off
    assert on["prompt_messages"] == [{"role": "user", "content": "public"}]
    spans = {
        dict(s.attributes or {}).get("respan.customer_params.customer_identifier"): s
        for s in exporter.get_finished_spans()
    }
    private = dict(spans["c-1"].attributes or {})
    assert "gen_ai.input.messages" not in private and not [k for k in private if "capture_content" in k]
    assert "public" in dict(spans[None].attributes or {})["gen_ai.input.messages"]


def test_capture_content_true_inside_a_process_that_captures_none(done, collector, stub, client) -> None:
    start(collector, capture_content=False)
    with respan_instrument.attributes(capture_content=True):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "kept"}])
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "dropped"}])
    logs = delivered(collector, 2)
    assert sorted(json.dumps(log.get("prompt_messages")) for log in logs) == [
        '[{"role": "user", "content": "kept"}]',
        "null",
    ]


def test_capture_content_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="capture_content"):
        respan_instrument.attributes(capture_content="no")


# ---- sampling content, never the bill ---------------------------------------------------------


def kept(log: dict[str, Any], rate: float) -> bool:
    """The decision for the log's trace, as SPEC §16 and OpenTelemetry's ratio sampler make it."""
    return int(log["trace_unique_id"], 16) & (2**64 - 1) < round(rate * 2**64)


def test_sample_rate_keeps_content_for_that_fraction_of_traces_and_every_metric(
    done, collector, stub, client
) -> None:
    start(collector, sample_rate=0.5)
    with respan_instrument.attributes(customer_identifier="c-9", thread_identifier="t-9"):
        for i in range(40):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{i}"}]
            )
    logs = delivered(collector, 40)
    with_content = [log for log in logs if "prompt_messages" in log]
    assert 5 < len(with_content) < 35
    for log in logs:
        assert ("prompt_messages" in log) == ("completion_message" in log) == kept(log, 0.5)
        assert (
            log["model"].startswith("gpt-4o-mini")
            and log["status"] == "success"
            and log["status_code"] == 200
        )
        assert log["prompt_tokens"] > 0 and log["completion_tokens"] > 0 and log["cost"] > 0
        assert log["generation_time"] > 0
        assert log["customer_identifier"] == "c-9" and log["thread_identifier"] == "t-9"


def test_a_trace_keeps_its_content_whole(done, collector, stub, client, sdk_spans) -> None:
    provider, exporter = sdk_spans
    start(collector, sample_rate=0.5, tracer_provider=provider)
    tracer = provider.get_tracer("app")
    for turn in range(12):
        with tracer.start_as_current_span(f"turn {turn}"):
            for _ in range(3):
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                )
    logs = delivered(collector, 36)
    by_trace: dict[str, set[bool]] = {}
    for log in logs:
        by_trace.setdefault(log["trace_unique_id"], set()).add("prompt_messages" in log)
    assert len(by_trace) == 12 and all(len(choices) == 1 for choices in by_trace.values())
    assert {next(iter(choices)) for choices in by_trace.values()} == {True, False}
    # the spans on the application's provider follow the same choice
    for span in exporter.get_finished_spans():
        if span.name.startswith("chat"):
            trace = f"{span.context.trace_id:032x}"
            has = "gen_ai.input.messages" in (span.attributes or {})
            assert {has} == by_trace[trace] and has == kept({"trace_unique_id": trace}, 0.5)


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_sample_rate_bounds(done, collector, stub, client, monkeypatch, rate) -> None:
    monkeypatch.setenv("RESPAN_SAMPLE_RATE", str(rate))
    start(collector)
    for _ in range(5):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert {("prompt_messages" in log) for log in delivered(collector, 5)} == {bool(rate)}


@pytest.mark.parametrize(
    ("env", "kwargs", "match"),
    [
        ({"RESPAN_SAMPLE_RATE": "1.5"}, {}, "RESPAN_SAMPLE_RATE"),
        ({"RESPAN_SAMPLE_RATE": "-0.1"}, {}, "RESPAN_SAMPLE_RATE"),
        ({"RESPAN_SAMPLE_RATE": "half"}, {}, "RESPAN_SAMPLE_RATE"),
        ({"RESPAN_SAMPLE_RATE": "nan"}, {}, "RESPAN_SAMPLE_RATE"),
        ({}, {"sample_rate": 2}, "sample_rate"),
        ({}, {"sample_rate": True}, "sample_rate"),
        ({}, {"sample_rate": "0.5"}, "sample_rate"),
        ({}, {"sample_rate": float("nan")}, "sample_rate"),
        ({"RESPAN_REDACT": "emails"}, {}, "RESPAN_REDACT"),
        ({}, {"redact": "strict"}, "redact"),
        ({}, {"redact": 42}, "redact"),
    ],
)
def test_bad_privacy_settings_are_a_value_error(done, collector, monkeypatch, env, kwargs, match) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=match):
        start(collector, **kwargs)


def test_redact_off_is_the_default(done, collector, stub, client, monkeypatch) -> None:
    monkeypatch.setenv("RESPAN_REDACT", "off")
    start(collector)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])
    (log,) = delivered(collector)
    assert log["prompt_messages"][0]["content"] == PROMPT  # recorded as sent


# ---- realtime ------------------------------------------------------------------------------------


# (openai 1.x's realtime client opens its socket the way newer websockets deprecate)
@pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager:DeprecationWarning")
def test_realtime_transcripts_are_redacted(done, collector) -> None:
    pytest.importorskip("websockets")
    import openai

    from tests.realtime_server import RealtimeServer

    if not sdk_has("realtime"):
        pytest.skip("no realtime in this SDK")
    start(collector, redact="pii")
    with RealtimeServer() as server:
        client = openai.OpenAI(
            api_key="sk-x", base_url="http://127.0.0.1:9/v1", websocket_base_url=server.url
        )
        with client.realtime.connect(model="gpt-realtime") as conn:
            item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": PROMPT}]}
            conn.conversation.item.create(item=item)  # type: ignore[arg-type]
            conn.response.create()
            for event in conn:
                if event.type == "response.done":
                    break
    (log,) = delivered(collector)
    assert_none_of(RAW, json.dumps(log))
    assert log["prompt_messages"][0]["content"].startswith("Hi, I am Jane, [EMAIL], phone [PHONE]")


# ---- a writer far behind -------------------------------------------------------------------------


def test_a_log_the_caller_must_build_goes_without_content_not_redacted_there(collector, spool_dir) -> None:
    """Past the queue's limit the caller's thread builds a log itself (Pipeline._compact): with a
    redactor set, the destination's encoder makes that log without content, so the redactor
    runs on the writer only."""
    from conftest import respan_logs

    from respan_instrument.deliver.pipeline import Pipeline
    from respan_instrument.record.pii import redact
    from respan_instrument.record.privacy import Privacy

    threads: set[str] = set()

    def watched(text: str) -> str:
        threads.add(threading.current_thread().name)
        return redact(text)

    pipeline = Pipeline(
        respan_logs(collector, Privacy(True, 1.0, watched)),
        spool_dir=spool_dir,
        max_queue=3,
        schedule_delay=30,  # the writer sleeps: the queue fills
    )
    try:
        for i in range(10):
            pipeline.submit(
                {
                    "model": "m",
                    "custom_identifier": f"q-{i}",
                    "prompt_messages": [{"role": "user", "content": PROMPT}],
                }
            )
        assert pipeline.flush(10)
    finally:
        pipeline.shutdown(2)
    assert collector.wait_for(10, timeout=10)
    logs = {log["custom_identifier"]: log for log in collector.logs}
    assert_none_of(RAW, json.dumps(list(logs.values())))
    assert [i for i in range(10) if "prompt_messages" in logs[f"q-{i}"]] == [0, 1, 2]
    assert threading.current_thread().name not in threads and threads
