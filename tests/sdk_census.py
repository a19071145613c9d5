"""A census of the installed `openai` SDK: every resource method of a client, and the HTTP
request (method and URL as the SDK spells it) that calling it makes, found by calling it against
a transport that records the request and answers nothing. WebSocket `connect` methods are
listed, not called. Shared by tests/test_census.py and the README check."""

from __future__ import annotations

import asyncio
import inspect
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

SKIP = frozenset({"with_raw_response", "with_streaming_response", "with_options", "copy"})
BASE = "http://census.invalid/v1"


class Seen(NamedTuple):
    name: str  # dotted, from the client: `beta.responses.create`
    method: str  # HTTP method, lower case; "websocket" for a connect method; "" when none was made
    url: str  # as FinalRequestOptions.url spells it: path after /v1, with the query the SDK put in it
    error: str  # why no request was seen, when none was


class _Stop(Exception):
    """Raised by the recording transport: the request was seen, the call need go no further."""


def _http_module() -> Any:
    """The HTTP library the SDK is built on (httpx2 in openai 3.x, httpx before)."""
    base = sys.modules["openai._base_client"]
    return getattr(base, "httpx2", None) or base.httpx


def resources(client: Any) -> Iterator[tuple[str, Any, Callable[..., Any]]]:
    """(dotted name, resource, bound method) of every public resource method, each resource once."""
    from openai._resource import AsyncAPIResource, SyncAPIResource

    kinds = (SyncAPIResource, AsyncAPIResource)
    seen: set[int] = set()

    def walk(obj: Any, path: list[str]) -> Iterator[tuple[str, Any, Callable[..., Any]]]:
        kind = type(obj)
        for name in sorted(dir(kind)):
            if name.startswith("_") or name in SKIP:
                continue
            attr = inspect.getattr_static(kind, name)
            if isinstance(attr, property) or type(attr).__name__ == "cached_property":
                try:
                    value = getattr(obj, name)
                except Exception:  # noqa: BLE001 - a property that needs more than a client
                    continue
                if isinstance(value, kinds) and id(value) not in seen:
                    seen.add(id(value))
                    yield from walk(value, [*path, name])
            elif inspect.isfunction(attr) and path:
                yield ".".join([*path, name]), obj, getattr(obj, name)

    yield from walk(client, [])


_FILES = frozenset({"file", "image", "mask", "video", "audio_sample", "data", "content"})
# Arguments a method needs that its signature does not require (overloads that are told apart
# by which arguments are given)
_GIVEN = {"responses.stream": {"model": "x", "input": "x"}}


def _value(name: str, annotation: Any, attempt: int) -> Any:
    text = str(annotation)
    if name == "files" or "List[FileTypes]" in text or "Sequence[FileTypes]" in text:
        return [("a.png", b"x", "image/png")]
    if "FileTypes" in text or name in _FILES:
        return ("a.png", b"x", "image/png") if attempt % 2 == 0 else "x"
    return ("x", ["x"], {"x": "x"}, 1)[attempt % 4]


def _arguments(
    name: str, method: Callable[..., Any], attempt: int, wanted: set[str]
) -> tuple[list[Any], dict[str, Any]]:
    args: list[Any] = []
    kwargs: dict[str, Any] = dict(_GIVEN.get(name.removeprefix("beta."), {}))
    for param in inspect.signature(method).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.default is not inspect.Parameter.empty and param.name not in wanted:
            continue
        value = _value(param.name, param.annotation, attempt)
        if param.kind is param.POSITIONAL_ONLY:
            args.append(value)
        else:
            kwargs[param.name] = value
    return args, kwargs


async def _drive(result: Any) -> None:
    """Whatever the call returned, carried as far as it takes to make its first request."""
    if inspect.isawaitable(result):
        result = await result
    if hasattr(result, "__aenter__"):
        async with result:
            pass
    elif hasattr(result, "__enter__"):
        with result:
            pass


def census(is_async: bool = False) -> list[Seen]:
    """Every resource method of a fresh client (sync or async) and the request it makes."""
    import openai

    # an admin key too where the SDK has one (its admin resources ask for it)
    params = inspect.signature(openai.OpenAI).parameters
    _KEYS = {"api_key": "sk-census", **({"admin_api_key": "sk-admin"} if "admin_api_key" in params else {})}
    requests: list[tuple[str, str]] = []
    http = _http_module()

    def handler(request: Any) -> Any:
        url = request.url
        path = url.raw_path.decode("ascii")
        requests.append((request.method.lower(), path[len("/v1") :] if path.startswith("/v1/") else path))
        raise _Stop

    if is_async:
        client: Any = openai.AsyncOpenAI(
            **_KEYS,
            base_url=BASE,
            max_retries=0,
            http_client=http.AsyncClient(transport=http.MockTransport(handler)),
        )
    else:
        client = openai.OpenAI(
            **_KEYS,
            base_url=BASE,
            max_retries=0,
            http_client=http.Client(transport=http.MockTransport(handler)),
        )
    found: list[Seen] = []
    loop = asyncio.new_event_loop()
    try:
        for name, _, method in resources(client):
            if name.rsplit(".", 1)[-1] == "connect":
                found.append(Seen(name, "websocket", "", ""))
                continue
            error = ""
            wanted: set[str] = set()
            for attempt in range(6):
                del requests[:]
                try:
                    args, kwargs = _arguments(name, method, attempt, wanted)
                    with warnings.catch_warnings():  # (deprecated methods still make their request)
                        warnings.simplefilter("ignore")
                        result = method(*args, **kwargs)
                        loop.run_until_complete(_drive(result))
                except Exception as exc:  # noqa: BLE001 - what stopped it is noted, not raised
                    error = f"{type(exc).__name__}: {exc}"[:200]
                    either = re.search(r"Expected either \(([^)]*)\)", str(exc))
                    if either:  # the SDK's `required_args`: one set of arguments it accepts
                        wanted |= set(re.findall(r"'(\w+)'", either.group(1)))
                if requests:
                    break
            if requests:
                method_, url = requests[0]
                found.append(Seen(name, method_, url, ""))
            else:
                found.append(Seen(name, "", "", error))
    finally:
        loop.run_until_complete(client.close()) if is_async else client.close()
        loop.close()
    return found
