"""What every endpoint spec shares: the spec's shape, and the generic parts of turning a request
and a response into span attributes and usage (read through `fields` and `usage`).

An endpoint module subclasses `Endpoint`, sets its URL patterns, methods, names and flags, and
overrides what differs: how its usage is spelled, its finish reasons, its stream accumulator, and the content of
its log. Nothing here knows of threads, spans, queues or Respan's delivery.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

from .. import _semconv as sc
from .bill import TOKENS, Line, Priced, PriceUnit
from .bill import Prices as Prices
from .fields import fields_of as fields_of
from .fields import get as get
from .usage import CHAT_NAMES, NEW_TUPLE, TokenUsage, UsageNames, parse

# request parameters copied to the log when the user passed them
REQUEST_FIELDS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "max_output_tokens",
        "frequency_penalty",
        "presence_penalty",
        "stop",
        "n",
        "seed",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "reasoning_effort",
        "service_tier",
    }
)


# keys of a tool definition that hold a credential (a remote MCP server's `authorization` and
# `headers`): a log never carries them
TOOL_CREDENTIALS = frozenset({"authorization", "headers"})


def without_credentials(tools: Any) -> Any:
    """`tools` as a log may show them: copies without their credentials (the same object when
    none has any)."""
    if not isinstance(tools, (list, tuple)) or not any(
        isinstance(tool, Mapping) and not TOOL_CREDENTIALS.isdisjoint(tool) for tool in tools
    ):
        return tools
    return [
        {key: value for key, value in tool.items() if key not in TOOL_CREDENTIALS}
        if isinstance(tool, Mapping)
        else tool
        for tool in tools
    ]


def as_dict(obj: Any) -> Any:
    """An SDK model as the JSON the provider sent (unset fields left out)."""
    if obj is None or isinstance(obj, (str, int, float, bool, list, dict)):
        return obj
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        try:  # pydantic v2: parsed output of .parse() helpers must not warn
            return dump(mode="json", exclude_unset=True, by_alias=True, warnings=False)
        except TypeError:  # pydantic v1
            return obj.dict(exclude_unset=True, by_alias=True)
    return obj


class Text:
    """Streamed text deltas, joined 32 at a time.

    Thousands of small strings held until the end of a stream, pinned among the SDK's
    short-lived objects, fragment the allocator's pools and slow every later chunk; joined in
    blocks, only a few stay alive.
    """

    __slots__ = ("parts", "blocks")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.blocks: list[str] = []

    def add(self, text: str) -> None:
        parts = self.parts
        parts.append(text)
        if len(parts) >= 32:
            self.blocks.append("".join(parts))
            parts.clear()

    def extend(self, texts: list[str]) -> None:
        parts = self.parts
        parts.extend(texts)
        if len(parts) >= 32:
            self.blocks.append("".join(parts))
            parts.clear()

    def value(self) -> str:
        return "".join(self.blocks) + "".join(self.parts)


class FilePart(NamedTuple):
    """A file sent in a multipart request, as a log may show it: never its bytes."""

    field: str  # the form field it was sent in (`file`, `image`, `mask`)
    filename: str | None
    media_type: str | None
    size: int | None  # bytes, when known without reading the file

    def placeholder(self) -> str:
        """`[audio: audio/mpeg, 123 KB, talk.mp3]`: what the file was, in a log's content."""
        media = self.media_type or "application/octet-stream"
        kind = media.split("/", 1)[0] if media.split("/", 1)[0] in ("image", "audio", "video") else "file"
        parts = [media]
        if self.size is not None:
            parts.append(size_text(self.size))
        if self.filename:
            parts.append(self.filename)
        return f"[{kind}: {', '.join(parts)}]"


def size_text(size: int) -> str:
    """A byte count as a person reads it: `312 B`, `34 KB`, `2.5 MB`."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / (1024 * 1024):.1f} MB"


class Accumulator(Protocol):
    """Sans-I/O: streamed chunks or events in (SDK models or parsed JSON), a response-shaped
    summary out (`model`, `id`, `usage`, `service_tier` and the endpoint's output fields)."""

    model: str | None
    usage: Any

    def add(self, item: Any) -> bool:
        """Take one chunk or event; True when it carried output (for time to first token)."""
        ...


class Outcome(NamedTuple):
    """What a response says about the call: span attributes and what it is priced by."""

    attributes: dict[str, Any]
    usage: TokenUsage | None
    model: str | None
    service_tier: str | None


class Endpoint:
    """One OpenAI endpoint: how a POST to its URL becomes span attributes and a request log.

    Subclasses set the class attributes and override the methods whose answer differs.
    """

    # The URLs it answers, as the SDK spells them (FinalRequestOptions.url, before Azure rewrites
    # it): `{id}` stands for one path segment naming an object, and a query string the SDK puts in
    # the URL itself (`/responses?beta=true`) is part of the pattern. The registry routes by these.
    routes: tuple[str, ...] = ()
    methods: frozenset[str] = frozenset({"post"})  # HTTP methods, lower case
    operation: str = ""  # gen_ai.operation.name
    log_type: str = ""  # Respan's log_type
    request_fields: frozenset[str] = REQUEST_FIELDS  # looked up, key by key of a request
    # usage field names: input total, output total, their detail objects
    usage_names: UsageNames = CHAT_NAMES
    output_tokens = True  # its usage has output tokens at all (embeddings have none, not zero)
    stream_usage = True  # a stream may be asked for its usage (`stream_options.include_usage`)
    stream_errors = True  # the SDK raises on a stream event with a top-level "error"
    keeps_body = True  # the response's JSON is kept for the log (False: only `summary()` of it)
    # Its streams are followed through the proxy and its accumulator even when nobody watches
    # the call: their events are few and large (a partial image, an audio chunk), and keeping
    # their text for the worker would hold megabytes of base64 it never needs.
    taps_streams = True
    always_taps = False  # tapped with a span too: the SDK's own helpers read its streams
    polls = False  # it reads the state of earlier work (a poll), rather than asking for new work
    # (request field, value) saying the answer is server-sent events the SDK nevertheless
    # returns whole (`stream_format="sse"`): the log is a stream's, timed to the first chunk of
    # the body that holds `first_output_marker`.
    events_when: tuple[str, str] | None = None
    first_output_marker = b""
    # Statuses after which the work it answers changes no more; with `terminal_only`, a response
    # seen in any other status makes no log (see record/settle.py).
    terminal_statuses: frozenset[str] = frozenset()
    # where an answer has no `choices`, the field whose string says how it ended (a response's
    # `status`, a Live session's `reason`)
    finish_field: str | None = None
    # the units its bill has besides tokens (see `bill.PriceUnit`): the user's price keys and
    # OpenAI's published rates for them
    price_units: tuple[PriceUnit, ...] = ()
    logs_turns = False  # its `lines` are the agent turns it showed (record/agent_turns.py)

    def __repr__(self) -> str:
        return f"<endpoint {' '.join(self.routes) or type(self).__name__}>"

    @functools.cached_property
    def _fixed_attributes(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The request attributes that depend on the provider and model only, per pair."""
        return {}

    # ---- request ----------------------------------------------------------------------------
    def request_attributes(self, body: Mapping[str, Any], provider: str) -> dict[str, Any]:
        """Span attributes known before the call: operation, provider, model, parameters."""
        model = body.get("model")
        cache = self._fixed_attributes
        fixed = cache.get((provider, model)) if isinstance(model, str) else None
        if fixed is None:
            fixed = {
                sc.OPERATION_NAME: self.operation,
                sc.PROVIDER_NAME: provider,
                sc.SYSTEM: provider,
                sc.REQUEST_MODEL: model if isinstance(model, str) else str(model),
                sc.LOG_TYPE: self.log_type,
            }
            if isinstance(model, str):
                if len(cache) >= 256:  # a bounded memo: model names come from user code
                    cache.clear()
                cache[(provider, model)] = fixed
        attrs = fixed.copy()
        for key, name in sc.REQUEST_PARAMETERS.items():
            value = body.get(key)
            if value is not None and isinstance(value, (int, float, str)):
                attrs[name] = value
        stop = body.get("stop")
        if stop is not None:
            attrs[sc.REQUEST_STOP_SEQUENCES] = (stop,) if isinstance(stop, str) else tuple(map(str, stop))
        if body.get("stream"):
            attrs[sc.REQUEST_STREAM] = True
        return attrs

    # ---- response ---------------------------------------------------------------------------
    def accumulator(self) -> Accumulator:
        raise NotImplementedError(f"{self!r} does not stream")

    def summary(self, response: Any, http: Any) -> Any:
        """What the log needs of a response whose body is not kept (see `keeps_body`): from the
        parsed response (None when the user read the body as bytes) and the HTTP response
        (None for a stream)."""
        return response

    def usage(self, usage: Any) -> TokenUsage | None:
        """Token counts from a usage object or its JSON, as this endpoint spells them."""
        return parse(usage, self.usage_names)

    def finish_reasons(self, fields: Any, response: Any) -> tuple[str, ...] | None:
        if self.finish_field is not None:
            ended = fields.get(self.finish_field)
            return (ended,) if isinstance(ended, str) else None
        choices = get(response, "choices")  # (a property on accumulators; a list in parsed JSON)
        if choices:
            return tuple(str(get(c, "finish_reason")) for c in choices)
        return None

    def outcome(self, response: Any, span_attributes: bool = True) -> Outcome:
        """The few typed fields a call needs from a response (SDK model, parsed JSON or a
        stream's accumulator): usage, model and service tier for the cost, and, when a span
        can show them, the response attributes."""
        fields = fields_of(response)
        model = fields.get("model")
        model = model if isinstance(model, str) else None
        tier = fields.get("service_tier")
        tier = tier if isinstance(tier, str) else None
        usage = self.usage(fields.get("usage"))
        if not span_attributes:
            lean: Outcome = NEW_TUPLE(Outcome, ({}, usage, model, tier))
            return lean
        attrs: dict[str, Any] = {}
        if model is not None:
            attrs[sc.RESPONSE_MODEL] = model
        rid = fields.get("id")
        if isinstance(rid, str):
            attrs[sc.RESPONSE_ID] = rid
        if tier is not None:
            attrs[sc.RESPONSE_SERVICE_TIER] = tier
        reasons = self.finish_reasons(fields, response)
        if reasons:
            attrs[sc.RESPONSE_FINISH_REASONS] = reasons
        if usage is not None:
            attrs[sc.USAGE_INPUT_TOKENS] = usage.input_tokens
            if self.output_tokens:
                attrs[sc.USAGE_OUTPUT_TOKENS] = usage.output_tokens
            if usage.cached_input_tokens:
                attrs[sc.USAGE_CACHE_READ_INPUT_TOKENS] = usage.cached_input_tokens
            if usage.cache_write_tokens:
                attrs[sc.USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_write_tokens
            if usage.reasoning_tokens:
                attrs[sc.USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens
        return Outcome(attrs, usage, model, tier)

    def model_of(self, request: Mapping[str, Any], response: Any = None) -> str | None:
        """The model a request asks for; an endpoint whose API has a default model names it
        (from the answer too, when there is one: it may tell which default answered)."""
        model = request.get("model")
        return model if isinstance(model, str) and model else None

    def bill(self, call: Priced) -> list[Line]:
        """What a successful call is billed for: its tokens at the model's rates."""
        if call.usage is None:
            return []
        return [NEW_TUPLE(Line, (TOKENS, call.model, TOKENS, call.usage, None, None))]

    # ---- the log ----------------------------------------------------------------------------
    def parameters(self, log: dict[str, Any], request: Mapping[str, Any]) -> None:
        """Copy the request parameters the user passed to the log."""
        # the request's few keys looked up in the set, not the dozens of fields in the request:
        # this runs for every log
        wanted = self.request_fields
        for key, value in request.items():
            if value is not None and key in wanted:
                log[key] = without_credentials(value) if key == "tools" else value

    def content(
        self, log: dict[str, Any], request: Mapping[str, Any], response: Any, files: tuple[FilePart, ...]
    ) -> None:
        """Add the prompt and the output to a log (only called when content is captured).
        `files`: what a multipart request sent besides its fields."""

    def terminal_only(self, request: Mapping[str, Any]) -> bool:
        """True when a call's log waits for the response to reach a terminal status (see
        `responses.py`): calls that see it unfinished make no log."""
        return False

    def ended(self, request: Mapping[str, Any], response: Any) -> tuple[str, str | None] | None:
        """(status, error message) when the work ended otherwise than done, for the log's
        `metadata.response_status`; with an error message the log is an error. None: done."""
        return None

    def thread(self, request: Mapping[str, Any], response: Any) -> tuple[str | None, str | None]:
        """(conversation id, id of the response this one continues), for the log's thread."""
        return None, None

    def lines(self, response: Any) -> list[Any] | None:
        """The results a file of results holds (Batch API output), each logged as its own
        call; None for a call that is one call."""
        return None

    def stream_error(self, error: Any) -> BaseException:
        """The error the SDK raised for an error event in a stream (an `openai.APIError`)."""
        message = error.get("message") if isinstance(error, Mapping) else None
        if not message or not isinstance(message, str):
            message = "An error occurred during streaming"
        api_error = getattr(sys.modules.get("openai"), "APIError", None)
        if not (isinstance(api_error, type) and issubclass(api_error, Exception)):
            return RuntimeError(message)
        # Built without its __init__: the worker has no request to give it (openai >= 3.60 reads
        # the request's headers there), and the log needs only its type, message and body.
        exc = api_error.__new__(api_error)
        Exception.__init__(exc, message)
        details = error if isinstance(error, Mapping) else {}
        vars(exc).update(  # (the instance dict: nothing the SDK defines can make this raise)
            message=message,
            request=None,
            body=error,
            code=details.get("code"),
            param=details.get("param"),
            type=details.get("type"),
        )
        return exc
