"""An application that calls `instrument()` at module level and maps chat calls over a
`multiprocessing` pool (start method from argv), then keeps running until its stdin closes.

Run by tests/test_pool_start_methods.py as a script: spawned and forkserver children import it
again as `__mp_main__`, so each worker is instrumented by the module-level call, as in a real
application (no initializer).
"""

from __future__ import annotations

import multiprocessing
import os
import sys

import respan_instrument

respan_instrument.instrument()

_client = None


def work(i: int) -> int:
    global _client
    import openai

    if _client is None:
        _client = openai.OpenAI(api_key="sk-test", base_url=os.environ["STUB_URL"], max_retries=0)
    with respan_instrument.attributes(custom_identifier=f"pool-{i}"):
        _client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    return i


if __name__ == "__main__":
    method, calls = sys.argv[1], int(sys.argv[2])
    with multiprocessing.get_context(method).Pool(4) as pool:
        assert pool.map(work, range(calls)) == list(range(calls))
    print("mapped", flush=True)
    sys.stdin.read()  # the application goes on; the test ends it
