"""The redactor's cost on the writer thread: the built-in patterns (`RESPAN_REDACT=pii`) on 2 KB
prompts, per string and per log, in microseconds and (with --instructions) in instructions
counted by callgrind.

    PYTHONPATH=. python benchmarks/tools/bench_redact.py [--instructions] [--number 2000]

Redaction runs on the background writer only (SPEC §16): the caller's thread never pays for it.
What a log costs the writer with it on is measured here as `Privacy.redacted` + `encode_log` on a
chat log whose user message is the 2 KB prompt (and a short answer), against `encode_log` alone.
Four prompts of 2,048 characters each: prose without digits; a support conversation (a few dates,
amounts and ids, as most prompts have); a digit-dense one (two long numbers every 190 characters,
a worst case for the numeric scan); and the support one with an e-mail address, a phone number,
a card and an IBAN in it. Timings swing with the machine's load (the instruction counts do not).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable
from typing import Any

from respan_instrument.record import pii
from respan_instrument.record.log_json import encode_log
from respan_instrument.record.privacy import Privacy

CALLS = 50  # per case under callgrind


def prompts() -> dict[str, str]:
    prose = ("The quick brown fox jumps over the lazy dog while the band plays on. " * 40)[:2048]
    support = (
        "You are a support assistant for an online shop. Answer politely and briefly, quote the "
        "order number when you refer to an order, and never promise a refund before checking the "
        "policy. The customer writes: Hello, I ordered a pair of running shoes (size 42) and a water "
        "bottle last week, order ORD-20240115-7781, for $129.90 in total. The tracking page said it "
        "would arrive on 2024-01-19 but nothing came, and the poster's app (version 3.11.4) shows "
        "no update since Tuesday 12:30. I have been a customer since 2019 and this never happened "
        "before. Could you check what is going on and tell me when I can expect it? If the parcel "
        "is lost I would prefer a replacement to a refund, as the shoes were on sale (20% off). "
    )
    support = (support * 4)[:2048]
    dense = (
        "Hello, I ordered item ORD-20240115-7781 on 2024-01-15 at 12:30 for $1,234.56 (version 3.11.4). "
        "Please check the shipping status; my account was created in 2019 and I have 3 open tickets. "
    )
    dense = (dense * 12)[:2048]
    personal = (
        support[:1800] + " Reach me at jane.doe@example.com or +1 (415) 555-0132; card 4111 1111 1111 1111, "
        "IBAN DE89 3704 0044 0532 0130 00."
    )[:2048]
    return {"prose": prose, "support": support, "digit-dense": dense, "support + PII": personal}


def log_of(prompt: str) -> dict[str, Any]:
    return {
        "log_type": "chat",
        "model": "gpt-4o-mini",
        "prompt_messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}],
        "completion_message": {
            "role": "assistant",
            "content": "Your parcel is on its way; sorry for the wait.",
        },
        "prompt_tokens": 480,
        "completion_tokens": 12,
        "cost": 0.0000792,
        "status_code": 200,
        "status": "success",
    }


def cases() -> dict[str, Callable[[], Any]]:
    redacting = Privacy(True, 1.0, pii.redact)
    out: dict[str, Callable[[], Any]] = {}
    for name, prompt in prompts().items():
        log = log_of(prompt)
        out[f"redact() on the 2 KB prompt: {name}"] = lambda p=prompt: pii.redact(p)
        out[f"log encoded, redaction off: {name}"] = lambda log=log: encode_log(dict(log), 1_000_000)
        out[f"log redacted + encoded: {name}"] = lambda log=log: encode_log(
            redacting.redacted(dict(log)), 1_000_000
        )
    return out


def timings(number: int) -> None:
    for name, fn in cases().items():
        fn()
        best = min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6
        print(f"{name:48s} {best:8.1f} us")


def child() -> None:
    """Under callgrind: each case's calls between two dumps of the counters."""
    for i, fn in enumerate(cases().values()):
        fn()
        _dump("before")
        for _ in range(CALLS):
            fn()
        _dump(f"case-{i}")
    print("ok", flush=True)


def _dump(label: str) -> None:
    subprocess.run(
        ["callgrind_control", f"--dump={label}", str(os.getpid())], capture_output=True, check=True
    )


def instructions() -> dict[str, float]:
    out_dir = tempfile.mkdtemp(prefix="respan-redact-")
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_dir}/cg.out", sys.executable,
           os.path.abspath(__file__), "--child"]  # fmt: skip
    subprocess.run(cmd, capture_output=True, text=True, check=True)
    names = list(cases())
    results: dict[str, float] = {}
    for path in os.listdir(out_dir):
        label = total = None
        with open(os.path.join(out_dir, path)) as fh:
            for line in fh:
                if line.startswith("desc: Trigger:") and "case-" in line:
                    label = line.rsplit("case-", 1)[1].strip()
                elif line.startswith(("summary:", "totals:")):
                    total = int(line.split()[1])
                    break
        if label is not None and total is not None:
            results[names[int(label)]] = total / CALLS
    return {name: results[name] for name in names if name in results}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--instructions", action="store_true", help="count instructions with callgrind too")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child()
        return
    print("microseconds per call (best of 5 repeats)")
    timings(args.number)
    if args.instructions:
        print("\ninstructions per call (callgrind)")
        for name, count in instructions().items():
            print(f"{name:48s} {count / 1e3:8,.0f} k")
        print(json.dumps({"python": sys.version.split()[0]}))


if __name__ == "__main__":
    main()
