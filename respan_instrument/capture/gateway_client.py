"""The gateway clients' classes: openai.OpenAI / AsyncOpenAI subclasses that add Respan's
gateway fields to every request body, through the SDK's `_prepare_options` hook."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_classes: dict[bool, type] = {}


def client_class(is_async: bool) -> type:
    """Subclasses of openai.OpenAI / AsyncOpenAI that add the gateway fields to every request body.

    Built on first use so that `import respan_instrument` never imports openai.
    """
    cls = _classes.get(is_async)
    if cls is not None:
        return cls
    import openai

    def merge(client: Any, options: Any) -> Any:
        extra = client._respan_body
        if extra and isinstance(options.json_data, Mapping) and options.method.lower() == "post":
            # the SDK's own copy of the options; the caller's dicts stay untouched
            options.json_data = {**extra, **options.json_data}
        return options

    def copy(self: Any, *args: Any, **kwargs: Any) -> Any:
        new = base.copy(self, *args, **kwargs)
        new._respan_body = self._respan_body
        return new

    if is_async:
        base: Any = openai.AsyncOpenAI

        async def prepare(self: Any, options: Any) -> Any:
            return merge(self, await base._prepare_options(self, options))
    else:
        base = openai.OpenAI

        def prepare(self: Any, options: Any) -> Any:  # type: ignore[misc]
            return merge(self, base._prepare_options(self, options))

    cls = type(
        "RespanGatewayAsyncOpenAI" if is_async else "RespanGatewayOpenAI",
        (base,),
        {
            "_respan_body": None,
            "_prepare_options": prepare,
            "copy": copy,
            "with_options": copy,
            "__module__": __name__,
        },
    )
    _classes[is_async] = cls
    return cls
