"""The benchmarks, one entry point: each scenario writes its section of benchmarks/RESULTS.md.

    python benchmarks/run.py SCENARIO [--quick] [--no-write] [scenario options]

Scenarios:
    overhead      bare client, ours and the peers interleaved in one run: process CPU (with
                  delivery), caller CPU, wall, caller p50/p99 per call (needs a quiet machine)
    instructions  instructions per call under callgrind, bare / ours / peers (load-independent)
    soak          delivery with Respan unreachable (memory, spool), draining, throughput
    import        import + instrument() on top of `import openai`, ours and the peers
    all           the four in that order

Any Python 3.11+ runs this script: every measurement runs in virtual environments of its own
(benchmarks/.venvs/<package>-openai<major>, one per package, built from the package index on
first use and reused; git ignores them), ours installed editable from this checkout.
`--quick` is for trying the harness (about 3 minutes for `all` without instructions); the
numbers worth keeping come from a full run on a quiet machine. Profiling and probing scripts
that answer narrower questions are in benchmarks/tools/.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "peers"), os.path.join(HERE, "scenarios")]

import instructions  # noqa: E402
import overhead  # noqa: E402
import soak  # noqa: E402
import startup  # noqa: E402
from common import RESULTS, log, write_section  # noqa: E402

SCENARIOS = {"overhead": overhead, "instructions": instructions, "soak": soak, "import": startup}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")
    parsers: dict[str, argparse.ArgumentParser] = {}
    for name, module in [*SCENARIOS.items(), ("all", None)]:
        doc = module.__doc__.split("\n")[0] if module else "every scenario in turn, with its defaults"
        p = sub.add_parser(
            name,
            help=doc,
            description=module.__doc__ if module else doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("--quick", action="store_true", help="fewer rounds and calls: to try the harness")
        p.add_argument("--no-write", action="store_true", help=f"print only; do not update {RESULTS}")
        if module:
            module.add_arguments(p)
        else:
            p.add_argument("--skip", default="", help="scenarios left out, e.g. instructions")
        parsers[name] = p
    args = parser.parse_args()
    if args.scenario == "all":
        flags = ["--quick"] * args.quick + ["--no-write"] * args.no_write
        skip = set(args.skip.split(","))
        runs = [(name, parsers[name].parse_args(flags)) for name in SCENARIOS if name not in skip]
    else:
        runs = [(args.scenario, args)]
    t0 = time.time()
    for name, scenario_args in runs:
        log(f"=== {name}")
        began = time.time()
        body = SCENARIOS[name].run(scenario_args)
        print(body, flush=True)
        if not scenario_args.no_write:
            write_section(name, body)
            log(f"=== {name}: {(time.time() - began) / 60:.1f} min; written to {os.path.relpath(RESULTS)}")
    log(f"=== done in {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    main()
