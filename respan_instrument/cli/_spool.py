"""`respan-instrument spool status|flush`: look into the on-disk spool and deliver it now."""

from __future__ import annotations

import os
import sys

from .._config import DEFAULT_BASE_URL


def run_spool(
    action: str, spool_dir: str | None, base_url: str | None, api_key: str | None, timeout: float
) -> int:
    from .._spool import status

    if action == "status":
        info = status(spool_dir)
        if not info.get("exists"):
            print(f"no spool at {info.get('path')}")
            return 0
        print(f"spool      {info['path']}")
        print(f"logs       {info['rows']} ({info['leased']} leased by running processes)")
        print(f"size       {info['bytes'] / 1e6:.2f} MB on disk")
        if info.get("oldest_age_s") is not None:
            print(f"oldest     {info['oldest_age_s']:.0f} s ago")
        for base, rows in (info.get("by_base") or {}).items():
            print(f"  {rows:>8}  for {base}")
        return 0

    from .._exporter import deliver_spool

    key = api_key or os.environ.get("RESPAN_API_KEY")
    if not key:
        print("respan-instrument spool flush: set RESPAN_API_KEY or pass --api-key", file=sys.stderr)
        return 2
    base = (base_url or os.environ.get("RESPAN_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    result = deliver_spool(base, key, spool_dir, timeout=timeout)
    print(
        f"{result['outcome']}: {result['delivered']} delivered, {result['rejected']} rejected, "
        f"{result['remaining']} remaining in {result['path']}"
    )
    return 0 if result["outcome"] == "done" else 1
