"""Microseconds per cached PriceBook.cost() call (the hot path, on the caller's thread).

Run: PYTHONPATH=. python benchmarks/tools/bench_cost.py
"""

from __future__ import annotations

import time
import timeit

from respan_instrument.endpoints.usage import TokenUsage
from respan_instrument.record.prices import PriceBook


def main() -> None:
    book = PriceBook({"ft:gpt-4o-mini": {"input": 0.3, "output": 1.2, "cached_input": 0.15}})
    usage = TokenUsage(input_tokens=1200, output_tokens=350, cached_input_tokens=1024, reasoning_tokens=128)

    t0 = time.perf_counter()
    book.cost("gpt-4o-mini", usage)  # first call: imports genai-prices, resolves, compiles
    first_ms = (time.perf_counter() - t0) * 1e3

    cases = {
        "gpt-4o-mini": lambda: book.cost("gpt-4o-mini", usage),
        "gpt-5.4 (tiered) priority": lambda: book.cost("gpt-5.4", usage, service_tier="priority"),
        "azure o4-mini": lambda: book.cost("o4-mini", usage, provider="azure"),
        "override ft:gpt-4o-mini:org::x": lambda: book.cost("ft:gpt-4o-mini:org::x", usage),
        "unknown model (None)": lambda: book.cost("no-such-model", usage),
    }
    import logging

    logging.getLogger("respan_instrument").setLevel(logging.ERROR)
    for fn in cases.values():
        fn()  # resolve and cache

    number = 200_000
    print(f"first call (import genai-prices + resolve): {first_ms:.1f} ms")
    for name, fn in cases.items():
        best = min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6
        print(f"{name:34s} {best:.3f} us/call")
    baseline = min(timeit.repeat(lambda: None, number=number, repeat=5)) / number * 1e6
    print(f"{'(empty lambda call overhead)':34s} {baseline:.3f} us/call")
    t_genai = _genai_prices_baseline(number=2_000)
    if t_genai is not None:
        print(f"{'genai_prices.calc_price (reference)':34s} {t_genai:.1f} us/call")


def _genai_prices_baseline(number: int) -> float | None:
    try:
        from genai_prices import Usage, calc_price
    except ImportError:
        return None
    usage = Usage(input_tokens=1200, output_tokens=350, cache_read_tokens=1024, output_reasoning_tokens=128)
    calc_price(usage, "gpt-4o-mini")
    return (
        min(timeit.repeat(lambda: calc_price(usage, "gpt-4o-mini"), number=number, repeat=3)) / number * 1e6
    )


if __name__ == "__main__":
    main()
