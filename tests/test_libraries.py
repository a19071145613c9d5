"""Popular libraries built on the openai SDK, used unmodified against the loopback stub.

Each scenario runs twice: once uninstrumented, once instrumented. The instrumented run must send
the same requests, return the same results, and deliver exactly one complete request log per
request the stub received. A library that is not installed skips its tests."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from conftest import OPENAI_KEY, delivered, start
from pydantic import BaseModel

import respan_instrument
from respan_instrument.local import Collector, OpenAIStub
from respan_instrument.local.openai_stub import StubRequest

T = TypeVar("T")

# litellm downloads its model price map at import unless told to use the copy it ships
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

QUESTION = "What is the capital of France?"
SYSTEM = "Answer in one word."


class Run:
    """The requests the stub received during the instrumented run, with the logs they produced."""

    def __init__(self, requests: list[StubRequest], logs: list[dict[str, Any]]) -> None:
        self.requests = requests
        self.logs = logs

    def paired(self) -> list[tuple[StubRequest, dict[str, Any]]]:
        """Each request with its log: matched on what was sent, since concurrent calls finish in any order."""
        left = list(self.logs)
        pairs = []
        for request in self.requests:
            body = request.body
            sent = body.get("messages", body.get("input"))
            match = next((log for log in left if log.get("prompt_messages", log.get("input")) == sent), None)
            assert match is not None, f"no log carries the input of {request.path}"
            left.remove(match)
            pairs.append((request, match))
        return pairs


def _posts(stub: OpenAIStub) -> list[StubRequest]:
    return [r for r in stub.requests if r.method == "POST"]


# ids the stub made up for one run come back in the next request of an agent's loop
_STUB_ID = re.compile(r"\b(call_|fc_|msg_|resp_|chatcmpl-)[0-9a-f]+")


def _sent(requests: list[StubRequest]) -> list[str]:
    return sorted(_STUB_ID.sub(r"\1", json.dumps([r.path, r.body], sort_keys=True)) for r in requests)


def twice(stub: OpenAIStub, collector: Collector, call: Callable[[], T]) -> tuple[T, T, Run]:
    """`call()` uninstrumented, then instrumented: (plain result, instrumented result, the run)."""
    stub.clear()
    plain = call()
    plain_requests = _posts(stub)
    assert plain_requests, "the scenario sent no request"
    assert not collector.logs
    stub.clear()
    start(collector)
    try:
        result = call()
        requests = _posts(stub)
        # the instrumentation changes no request (concurrent ones may arrive in another order)
        assert _sent(requests) == _sent(plain_requests)
        logs = delivered(collector, len(requests))
    finally:
        respan_instrument.uninstrument()
    return plain, result, Run(requests, logs)


def assert_chat_logs(run: Run, *, stream: bool | None = None) -> None:
    """Every chat request's log carries what was sent and what came back, and succeeded."""
    for request, log in run.paired():
        assert request.path.endswith("/chat/completions")
        assert log["log_type"] == "chat" and log["status"] == "success"
        assert log["prompt_messages"] == request.body["messages"]
        assert log["model"].startswith(request.body["model"])
        assert log["stream"] is bool(request.body.get("stream"))
        if stream is not None:
            assert log["stream"] is stream
        message = log["completion_message"]
        assert message["content"] or message.get("tool_calls"), log
        options = request.body.get("stream_options") or {}
        if not log["stream"] or options.get("include_usage"):
            # a stream reports usage only when asked to (the stub is not an OpenAI host)
            assert log["prompt_tokens"] > 0 and log["completion_tokens"] > 0


def assert_response_logs(run: Run, *, stream: bool) -> None:
    for request, log in run.paired():
        assert request.path.endswith("/responses")
        assert log["log_type"] == "response" and log["status"] == "success"
        assert log["input"] == request.body["input"]
        assert log["stream"] is stream
        assert log["output"][0]["content"][0]["text"]
        assert log["prompt_tokens"] > 0 and log["completion_tokens"] > 0


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for every async run here: libraries keep async clients bound to the loop
    that first used them (LangChain caches one for the whole process)."""
    new = asyncio.new_event_loop()
    yield new
    # an async generator a library left open (litellm's aiohttp stream iterator) is finalized
    # by an `aclose()` scheduled on this loop when it is collected: collect now, while the loop
    # can still run it, not at some later test's garbage collection after the loop closed
    gc.collect()
    new.run_until_complete(new.shutdown_asyncgens())
    new.close()


@pytest.fixture()
def current_loop(loop: asyncio.AbstractEventLoop) -> Iterator[asyncio.AbstractEventLoop]:
    """The module's loop as the thread's current one, as an application that made one has it:
    older Agents SDK releases run `run_sync` on `asyncio.get_event_loop()`."""
    asyncio.set_event_loop(loop)
    yield loop
    asyncio.set_event_loop(None)


# --- LangChain: ChatOpenAI --------------------------------------------------------------------


def _chat_openai(stub: OpenAIStub, **kwargs: Any) -> Any:
    lc = pytest.importorskip("langchain_openai")
    return lc.ChatOpenAI(
        model="gpt-4o-mini", api_key=OPENAI_KEY, base_url=stub.base_url, max_retries=0, **kwargs
    )


def _lc_messages() -> list[Any]:
    from langchain_core.messages import HumanMessage, SystemMessage

    return [SystemMessage(SYSTEM), HumanMessage(QUESTION)]


def test_langchain_invoke(stub, collector) -> None:
    llm = _chat_openai(stub)
    plain, result, run = twice(stub, collector, lambda: llm.invoke(_lc_messages()))
    assert result.content == plain.content == f"Echo: {QUESTION}"
    assert result.usage_metadata == plain.usage_metadata
    assert_chat_logs(run, stream=False)
    (log,) = run.logs
    assert log["prompt_messages"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": QUESTION},
    ]
    assert log["completion_message"]["content"] == result.content
    assert log["prompt_tokens"] == result.usage_metadata["input_tokens"]
    assert log["completion_tokens"] == result.usage_metadata["output_tokens"]


def test_langchain_async_invoke(stub, collector, loop) -> None:
    llm = _chat_openai(stub)
    plain, result, run = twice(stub, collector, lambda: loop.run_until_complete(llm.ainvoke(_lc_messages())))
    assert result.content == plain.content
    assert_chat_logs(run, stream=False)


def test_langchain_stream(stub, collector) -> None:
    llm = _chat_openai(stub, stream_usage=True)

    def call() -> tuple[str, Any]:
        chunks = list(llm.stream(_lc_messages()))
        total = chunks[0]
        for chunk in chunks[1:]:
            total = total + chunk
        return "".join(str(c.content) for c in chunks), total.usage_metadata

    plain, result, run = twice(stub, collector, call)
    assert result == plain
    assert result[0] == f"Echo: {QUESTION}"
    assert_chat_logs(run, stream=True)
    (log,) = run.logs
    assert log["completion_message"]["content"] == result[0]
    assert log["prompt_tokens"] == result[1]["input_tokens"]


def test_langchain_async_stream(stub, collector, loop) -> None:
    llm = _chat_openai(stub)

    async def main() -> str:
        return "".join([str(c.content) async for c in llm.astream(_lc_messages())])

    plain, result, run = twice(stub, collector, lambda: loop.run_until_complete(main()))
    assert result == plain == f"Echo: {QUESTION}"
    assert_chat_logs(run, stream=True)
    assert run.logs[0]["completion_message"]["content"] == result


def test_langchain_batch(stub, collector) -> None:
    llm = _chat_openai(stub)
    questions = [f"Question number {i}?" for i in range(4)]

    def call() -> list[str]:
        return [str(m.content) for m in llm.batch(questions)]

    plain, result, run = twice(stub, collector, call)
    assert result == plain == [f"Echo: {q}" for q in questions]
    assert_chat_logs(run, stream=False)
    assert sorted(log["completion_message"]["content"] for log in run.logs) == sorted(result)


class City(BaseModel):
    name: str
    population: int


class Reply(BaseModel):
    reply: str


@pytest.mark.parametrize("method", ["json_schema", "function_calling", "json_mode"])
def test_langchain_structured_output(stub, collector, method) -> None:
    # json_mode asks for any JSON object: the stub answers those with {"reply": ...}
    schema = Reply if method == "json_mode" else City
    llm = _chat_openai(stub).with_structured_output(schema, method=method)
    prompt = [("system", "Reply in JSON."), ("user", QUESTION)]
    plain, result, run = twice(stub, collector, lambda: llm.invoke(prompt))
    assert isinstance(result, schema) and result == plain
    assert_chat_logs(run, stream=False)
    ((request, log),) = run.paired()
    if method == "function_calling":
        (call,) = log["completion_message"]["tool_calls"]
        assert json.loads(call["function"]["arguments"]) == result.model_dump()
        assert log["tools"] == request.body["tools"]
    else:
        assert json.loads(log["completion_message"]["content"]) == result.model_dump()
        assert log["response_format"]["type"] == request.body["response_format"]["type"]


def test_langchain_responses_api(stub, collector) -> None:
    llm = _chat_openai(stub, use_responses_api=True)
    plain, result, run = twice(stub, collector, lambda: llm.invoke(QUESTION))
    assert result.text == plain.text == f"Echo: {QUESTION}"
    assert_response_logs(run, stream=False)


# --- OpenAI Agents SDK ------------------------------------------------------------------------


def _agents() -> Any:
    agents = pytest.importorskip("agents")
    agents.set_tracing_disabled(True)  # its own tracing would try to export to OpenAI
    return agents


def _agent(stub: OpenAIStub, api: str, **kwargs: Any) -> Any:
    """An agent on a fresh async client (each run has its own event loop)."""
    import openai

    agents = _agents()
    client = openai.AsyncOpenAI(api_key=OPENAI_KEY, base_url=stub.base_url, max_retries=0)
    model_class = agents.OpenAIResponsesModel if api == "responses" else agents.OpenAIChatCompletionsModel
    model = model_class(model="gpt-4o-mini", openai_client=client)
    return agents.Agent(name="Geographer", instructions=SYSTEM, model=model, **kwargs)


@pytest.mark.parametrize("api", ["responses", "chat"])
@pytest.mark.usefixtures("current_loop")
def test_agents_run_sync(stub, collector, api) -> None:
    agents = _agents()
    plain, result, run = twice(
        stub, collector, lambda: agents.Runner.run_sync(_agent(stub, api), QUESTION).final_output
    )
    assert result == plain == f"Echo: {QUESTION}"
    if api == "responses":
        assert_response_logs(run, stream=False)
    else:
        assert_chat_logs(run, stream=False)
        (log,) = run.logs
        assert log["prompt_messages"] == [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": QUESTION},
        ]
    assert run.logs[0]["model"].startswith("gpt-4o-mini")


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_agents_run_async_structured(stub, collector, api) -> None:
    agents = _agents()

    async def main() -> Any:
        result = await agents.Runner.run(_agent(stub, api, output_type=City), QUESTION)
        return result.final_output

    plain, result, run = twice(stub, collector, lambda: asyncio.run(main()))
    assert isinstance(result, City) and result == plain
    ((request, log),) = run.paired()
    if api == "responses":
        assert log["log_type"] == "response" and log["status"] == "success"
        assert json.loads(log["output"][0]["content"][0]["text"]) == result.model_dump()
    else:
        assert_chat_logs(run, stream=False)
        assert json.loads(log["completion_message"]["content"]) == result.model_dump()


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_agents_tool_loop(stub, collector, api) -> None:
    """A tool call, the tool run by the agent, then the answer: two requests, two logs."""
    agents = _agents()
    looked_up: list[str] = []

    def capital_of(country: str) -> str:
        """The capital city of a country."""
        looked_up.append(country)
        return "Paris"

    tool = agents.function_tool(capital_of)

    async def main() -> Any:
        result = await agents.Runner.run(_agent(stub, api, tools=[tool]), QUESTION)
        return result.final_output

    plain, result, run = twice(stub, collector, lambda: asyncio.run(main()))
    assert result == plain == f"Echo: {QUESTION}"
    assert looked_up == ["x", "x"]  # the stub's sample arguments, once per run
    assert len(run.requests) == 2
    first, second = (log for _, log in run.paired())
    if api == "chat":
        assert_chat_logs(run, stream=False)
        (call,) = first["completion_message"]["tool_calls"]
        assert call["function"]["name"] == "capital_of"
        assert second["prompt_messages"][-1] == {
            "role": "tool",
            "tool_call_id": call["id"],
            "content": "Paris",
        }
        assert second["completion_message"]["content"] == result
    else:
        assert first["log_type"] == second["log_type"] == "response"
        assert first["output"][0]["type"] == "function_call" and first["output"][0]["name"] == "capital_of"
        assert second["input"][-1]["type"] == "function_call_output"
        assert second["input"][-1]["output"] == "Paris"
        assert second["output"][0]["content"][0]["text"] == result


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_agents_run_streamed(stub, collector, api) -> None:
    agents = _agents()

    async def main() -> tuple[str, Any]:
        streamed = agents.Runner.run_streamed(_agent(stub, api), QUESTION)
        deltas = []
        async for event in streamed.stream_events():
            if (
                event.type == "raw_response_event"
                and getattr(event.data, "type", "") == "response.output_text.delta"
            ):
                deltas.append(event.data.delta)
        return "".join(deltas), streamed.final_output

    plain, result, run = twice(stub, collector, lambda: asyncio.run(main()))
    assert result == plain
    assert result[0] == result[1] == f"Echo: {QUESTION}"
    if api == "responses":
        assert_response_logs(run, stream=True)
        assert run.logs[0]["output"][0]["content"][0]["text"] == result[1]
    else:
        assert_chat_logs(run, stream=True)
        assert run.logs[0]["completion_message"]["content"] == result[1]


# --- litellm ----------------------------------------------------------------------------------


# litellm imports provider modules lazily, during a call; pydantic warns about one of their TypedDicts
quiet_litellm = pytest.mark.filterwarnings("ignore:Item.* using the `ReadOnly` qualifier:UserWarning")


def _litellm() -> Any:
    litellm = pytest.importorskip("litellm")
    litellm.telemetry = False
    return litellm


def _litellm_args(stub: OpenAIStub) -> dict[str, Any]:
    return {
        "model": "openai/gpt-4o-mini",
        "api_base": stub.base_url,
        "api_key": OPENAI_KEY,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}],
        "max_retries": 0,
    }


@quiet_litellm
def test_litellm_completion(stub, collector) -> None:
    litellm = _litellm()

    def call() -> tuple[str, int, int]:
        response = litellm.completion(**_litellm_args(stub))
        usage = response.usage
        return response.choices[0].message.content, usage.prompt_tokens, usage.completion_tokens

    plain, result, run = twice(stub, collector, call)
    assert result == plain
    assert result[0] == f"Echo: {QUESTION}"
    assert_chat_logs(run, stream=False)
    (log,) = run.logs
    assert log["completion_message"]["content"] == result[0]
    assert (log["prompt_tokens"], log["completion_tokens"]) == result[1:]


@quiet_litellm
def test_litellm_completion_stream(stub, collector) -> None:
    """litellm streams through `with_raw_response.create(stream=True)` and `.parse()`."""
    litellm = _litellm()

    def call() -> str:
        chunks = list(litellm.completion(**_litellm_args(stub), stream=True))
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    plain, result, run = twice(stub, collector, call)
    assert result == plain == f"Echo: {QUESTION}"
    assert_chat_logs(run, stream=True)
    assert run.logs[0]["completion_message"]["content"] == result


@quiet_litellm
def test_litellm_acompletion_stream(stub, collector, loop) -> None:
    litellm = _litellm()

    async def main() -> str:
        response = await litellm.acompletion(**_litellm_args(stub), stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in response if c.choices])

    plain, result, run = twice(stub, collector, lambda: loop.run_until_complete(main()))
    assert result == plain == f"Echo: {QUESTION}"
    assert_chat_logs(run, stream=True)
    assert run.logs[0]["completion_message"]["content"] == result


# --- instructor -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["TOOLS", "JSON_SCHEMA"])
def test_instructor_response_model(stub, collector, mode) -> None:
    import openai

    instructor = pytest.importorskip("instructor")

    class User(BaseModel):
        name: str
        age: int

    def call() -> tuple[dict[str, Any], str]:
        with openai.OpenAI(api_key=OPENAI_KEY, base_url=stub.base_url, max_retries=0) as raw:
            client = instructor.from_openai(raw, mode=getattr(instructor.Mode, mode))
            user, completion = client.chat.completions.create_with_completion(
                model="gpt-4o-mini",
                response_model=User,
                messages=[{"role": "user", "content": "Extract: Jason is 25 years old."}],
            )
        assert isinstance(user, User)
        return user.model_dump(), completion.choices[0].finish_reason

    plain, result, run = twice(stub, collector, call)
    assert result == plain
    assert_chat_logs(run, stream=False)
    ((request, log),) = run.paired()
    message = log["completion_message"]
    if mode == "TOOLS":
        (tool_call,) = message["tool_calls"]
        assert tool_call["function"]["name"] == request.body["tools"][0]["function"]["name"]
        assert json.loads(tool_call["function"]["arguments"]) == result[0]
    else:
        assert json.loads(message["content"]) == result[0]
