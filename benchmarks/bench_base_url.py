"""Instructions per base-URL read, as `capture/patch.py`'s `_begin` does it for each call.

    valgrind --tool=callgrind python benchmarks/bench_base_url.py 0
    valgrind --tool=callgrind python benchmarks/bench_base_url.py 20000

(per read: the difference of the two totals / 20000). It prints which instance attribute the fast
path reads (`_base_url` up to openai 2.x, `_configured_base_url` in 3.x); the version before the
fix kept True/False per class and only knew `_base_url`, which 3.x no longer sets.
"""

import sys

import openai

from respan_instrument.capture import patch

client = openai.OpenAI(api_key="x", base_url="http://127.0.0.1:1/v1")
kind = type(client)
patch._base_url(client)  # the once-per-class check
n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
table: dict = patch._plain_base_url
for _ in range(n):
    held = table.get(kind)
    if held is True:  # (the version before the fix: True when `_base_url` is the plain attribute)
        held = "_base_url"
    url = client.__dict__.get(held) if isinstance(held, str) else None
    if url is None:
        url = patch._base_url(client)
print(table[kind], file=sys.stderr)
