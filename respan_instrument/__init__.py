"""Every call through the `openai` SDK, recorded as a span and delivered to Respan as a request log.

import respan_instrument
respan_instrument.instrument()
"""

from typing import TYPE_CHECKING, Any

from ._context import attributes
from ._setup import flush, instrument, log, uninstrument
from ._version import __version__
from .gateway import async_gateway_client, gateway_client

if TYPE_CHECKING:
    from ._instrumentor import RespanOpenAIInstrumentor

__all__ = [
    "RespanOpenAIInstrumentor",
    "__version__",
    "async_gateway_client",
    "attributes",
    "flush",
    "gateway_client",
    "instrument",
    "log",
    "uninstrument",
]


def __getattr__(name: str) -> Any:
    # imported on first use: opentelemetry-instrumentation costs ~15 ms to import
    if name == "RespanOpenAIInstrumentor":
        from ._instrumentor import RespanOpenAIInstrumentor

        return RespanOpenAIInstrumentor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
