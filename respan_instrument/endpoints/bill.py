"""What a call is billed for, as its endpoint describes it: the lines of the bill and the units
that are not tokens.

An endpoint says what a call bought (`Endpoint.bill`): a list of `Line`s, each a quantity of one
unit (tokens, web search calls, minutes of audio, images, ...) at one model's rates. It also
declares the `PriceUnit`s its lines use besides tokens: the key a user prices them by in
`prices=` / RESPAN_PRICES_FILE, the `genai-prices` price keys that price them, and OpenAI's
published per-unit rates (with the date they were read) for what `genai-prices` lacks. The price
book (record/) prices each line; nothing here knows a price source.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

from .usage import TokenUsage

TOKENS = "tokens"  # a line priced by the model's token rates (its quantity is a TokenUsage)
FREE = "free"  # a line OpenAI does not charge for: a true 0, not an unknown price


class Line(NamedTuple):
    """One line of a call's bill."""

    name: str  # its key in `metadata.cost_breakdown` ("tokens", "web_search", "containers", ...)
    model: str  # the model whose rates price it
    unit: str  # TOKENS, FREE, or a PriceUnit's `unit`
    quantity: Any  # a TokenUsage for TOKENS; a count of units otherwise
    variant: str | None = None  # the kind, where the price depends on it (size/quality, tool version)
    detail: Mapping[str, Any] | None = None  # what a user needs to reconcile it if it is not priced


class PriceUnit(NamedTuple):
    """A unit a line may be billed in, other than tokens."""

    unit: str  # as a Line names it: "image", "audio_minute", "web_search_call", ...
    key: str | None  # the user's price key (USD per unit) in prices= / RESPAN_PRICES_FILE
    genai_keys: tuple[str, ...]  # genai-prices price keys that price it, most specific first
    scale: float  # genai-prices usage units in one of ours (60 audio seconds in a minute)
    published: Mapping[str, Mapping[str | None, float]]  # model ("*": any) -> variant -> USD
    read_on: str | None  # when `published` was read from https://openai.com/api/pricing


def unit(
    name: str,
    key: str | None,
    genai_keys: tuple[str, ...] = (),
    scale: float = 1.0,
    published: Mapping[str, Mapping[str | None, float]] | None = None,
    read_on: str | None = None,
) -> PriceUnit:
    return PriceUnit(name, key, genai_keys, scale, published or {}, read_on)


class Prices(Protocol):
    """The price book, as the bill asks it (record/ supplies it)."""

    def cost(
        self,
        model: str,
        usage: TokenUsage,
        *,
        provider: str | None = None,
        service_tier: str | None = None,
        batch: bool = False,
    ) -> float | None: ...

    def unit_cost(
        self,
        model: str,
        unit: str,
        quantity: float,
        variant: str | None = None,
        *,
        provider: str | None = None,
        batch: bool = False,
    ) -> float | None:
        """USD for `quantity` of a unit other than tokens (a `PriceUnit`'s `unit`), `variant`
        naming the kind where the price depends on it (an image's size and quality); None when
        the model has no known price for it."""
        ...


class Priced(NamedTuple):
    """What a call is priced by: the model (the response's, else the request's), its usage, and
    the request and response for endpoints priced by something else (images, audio, text)."""

    model: str
    usage: TokenUsage | None
    provider: str | None
    service_tier: str | None
    request: Mapping[str, Any]
    response: Any


__all__ = ["FREE", "TOKENS", "Line", "PriceUnit", "Priced", "Prices", "unit"]
