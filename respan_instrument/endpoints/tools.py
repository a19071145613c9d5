"""What the built-in tools of the Responses API are billed for, read from a response: web search
and file search calls, image generation by the tool, code interpreter containers; and the search
fee of chat search models.

Web searches are counted from `tool_usage.web_search.num_requests` when the answer has it, else
from the completed `web_search_call` items whose action is a search (opening or finding in a page
is not billed). Image generation by the tool is billed at the image model's token rates from
`tool_usage.image_gen`. Containers are billed by container time, which one response cannot know:
their line names the container ids and memory size so a user can reconcile it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .bill import TOKENS, Line, unit
from .fields import get
from .images import svg_line, token_usage

_IMAGE_USAGE = ("input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details")
# The image tool's model when neither the request nor the response names it, as the SDK's
# `ImageGeneration.model` documents it (openai 3.63).
DEFAULT_IMAGE_TOOL_MODEL = "gpt-image-2.6-sunburst"
PREVIEW = "web_search_preview"

# Per-call fees by tool version, for models genai-prices has no per-call rate for; read from
# https://openai.com/api/pricing.
WEB_SEARCH_CALL = unit(
    "web_search_call",
    "per_web_search_call",
    genai_keys=("web_searches_kcount",),
    published={"*": {"web_search": 0.010, PREVIEW: 0.025}},
    read_on="2026-12-05",
)
FILE_SEARCH_CALL = unit(
    "file_search_call",
    "per_file_search_call",
    genai_keys=("storage_searches_kcount",),
    published={"*": {None: 0.0025}},
    read_on="2026-12-05",
)
# Billed per container-minute (with a minimum) since 2026-06: no per-session price applies.
CONTAINER = unit("container", None)
# An image made by the tool whose answer has no `tool_usage`: its tokens are unknown.
IMAGE_GENERATION_CALL = unit("image_generation_call", None)
UNITS = (WEB_SEARCH_CALL, FILE_SEARCH_CALL, CONTAINER, IMAGE_GENERATION_CALL)
_BILLED_ITEMS = frozenset(
    {"web_search_call", "file_search_call", "image_generation_call", "code_interpreter_call"}
)


def _tools(request: Mapping[str, Any], response: Any) -> list[Any]:
    tools = request.get("tools")
    if not tools:
        tools = get(response, "tools") if response is not None else None
    return list(tools) if isinstance(tools, (list, tuple)) else []


def _tool(tools: Iterable[Any], kind: str) -> Any:
    return next((tool for tool in tools if get(tool, "type") == kind), None)


def _is_search(action: Any) -> bool:
    """A web search call's action is billed when it is a search. (Answers from before actions
    were reported carry none: each of those calls was a search.)"""
    return action is None or get(action, "type") == "search"


def tool_lines(model: str, request: Mapping[str, Any], response: Any) -> list[Line]:
    """The lines of a response's bill besides its tokens."""
    items = get(response, "output") or ()
    tool_usage = get(response, "tool_usage")
    if tool_usage is None and not any(get(item, "type") in _BILLED_ITEMS for item in items):
        return []  # (most responses: a message, reasoning, function calls)
    tools = _tools(request, response)
    lines: list[Line] = []

    searches = get(get(tool_usage, "web_search"), "num_requests") if tool_usage is not None else None
    if type(searches) is not int:
        searches = sum(
            1
            for item in items
            if get(item, "type") == "web_search_call"
            and get(item, "status") == "completed"
            and _is_search(get(item, "action"))
        )
    if searches:
        preview = any(str(get(tool, "type") or "").startswith(PREVIEW) for tool in tools)
        lines.append(
            Line("web_search", model, WEB_SEARCH_CALL.unit, searches, PREVIEW if preview else "web_search")
        )

    files = sum(1 for i in items if get(i, "type") == "file_search_call" and get(i, "status") == "completed")
    if files:
        lines.append(Line("file_search", model, FILE_SEARCH_CALL.unit, files))

    lines.extend(_image_lines(tools, tool_usage, items))

    containers: dict[str, None] = {}
    for item in items:
        if get(item, "type") == "code_interpreter_call":
            container = get(item, "container_id")
            containers[container if isinstance(container, str) else "unknown"] = None
    if containers:
        detail: dict[str, Any] = {"container_ids": list(containers), "billed_by": "container time"}
        config = get(_tool(tools, "code_interpreter"), "container")
        memory = get(config, "memory_limit")  # (None when the tool names an existing container)
        if isinstance(memory, str):
            detail["memory_limit"] = memory
        lines.append(Line("containers", model, CONTAINER.unit, len(containers), None, detail))
    return lines


def _image_lines(tools: list[Any], tool_usage: Any, items: Any) -> list[Line]:
    calls = [item for item in items if get(item, "type") == "image_generation_call"]
    lines: list[Line] = []
    svgs = [line for line in (svg_line(get(call, "svg_usage")) for call in calls) if line is not None]
    image_model = get(_tool(tools, "image_generation"), "model")
    if not isinstance(image_model, str) or not image_model:
        image_model = DEFAULT_IMAGE_TOOL_MODEL
    made = get(tool_usage, "image_gen") if tool_usage is not None else None
    usage = token_usage(made, _IMAGE_USAGE) if made is not None else None
    if usage is not None and (usage.input_tokens or usage.output_tokens):
        lines.append(Line("image_generation", image_model, TOKENS, usage))
    else:
        done = sum(1 for call in calls if get(call, "status") == "completed")
        if done:
            detail = {"reason": "the answer has no tool_usage.image_gen token counts"}
            lines.append(
                Line("image_generation", image_model, IMAGE_GENERATION_CALL.unit, done, None, detail)
            )
    lines.extend(svgs)
    return lines


def chat_search_lines(model: str, request: Mapping[str, Any]) -> list[Line]:
    """A chat search model asked to search (`web_search_options`) pays one search call."""
    if request.get("web_search_options") is None:
        return []
    return [Line("web_search", model, WEB_SEARCH_CALL.unit, 1, PREVIEW)]
