"""`respan-instrument spool status|flush`: look into the on-disk spool and deliver it now."""

from __future__ import annotations

import os
import sys
from typing import Any

from .._config import DEFAULT_BASE_URL, READ_TIMEOUT, env_number


def _print_status(info: dict[str, Any]) -> None:
    print(f"spool      {info['path']}")
    print(f"logs       {info['rows']} ({info['leased']} leased by running processes)")
    print(f"size       {info['bytes'] / 1e6:.2f} MB on disk")
    if info.get("oldest_age_s") is not None:
        print(f"oldest     {info['oldest_age_s']:.0f} s ago")
    for base, rows in (info.get("by_base") or {}).items():
        print(f"  {rows:>8}  for {base}")
    current = info.get("current_key")
    for fp, rows in (info.get("by_key") or {}).items():
        if not fp:
            print(f"  {rows:>8}  of unknown key (spooled by an earlier version; any key delivers them)")
        elif fp == current:
            print(f"  {rows:>8}  of key {fp} (this RESPAN_API_KEY's)")
        else:
            print(f"  {rows:>8}  of key {fp} (another key's: `spool flush` with that key delivers them)")


def run_spool(
    action: str, spool_dir: str | None, base_url: str | None, api_key: str | None, timeout: float
) -> int:
    from .._spool_dirs import fallback_dir, resolve_dir
    from ..deliver.spool import status

    key = api_key or os.environ.get("RESPAN_API_KEY")
    # where processes put logs when this directory is unusable
    fallback = fallback_dir()
    dirs = [resolve_dir(spool_dir)]
    if os.path.exists(os.path.join(fallback, "spool.sqlite3")) and fallback != dirs[0]:
        dirs.append(fallback)

    if action == "status":
        for place in dirs:
            info = status(place, key)
            if not info.get("exists"):
                print(f"no spool at {info.get('path')}")
                continue
            _print_status(info)
        return 0

    from ..deliver.drain import deliver_spool
    from ..deliver.http import RETRY_BASE, RETRY_CAP, RetryPolicy

    if not key:
        print("respan-instrument spool flush: set RESPAN_API_KEY or pass --api-key", file=sys.stderr)
        return 2
    base = (base_url or os.environ.get("RESPAN_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    code = 0
    used: set[str] = set()
    for place in dirs:
        if os.path.join(place, "spool.sqlite3") in used:
            continue
        retry = RetryPolicy(
            env_number("RESPAN_RETRY_BASE", RETRY_BASE), env_number("RESPAN_RETRY_CAP", RETRY_CAP)
        )
        result = deliver_spool(
            base, key, place, read_timeout=READ_TIMEOUT, fallback_dir=fallback, timeout=timeout, retry=retry
        )
        where = result["path"] or "memory (no usable spool directory)"
        others = 0
        if result["path"]:
            used.add(result["path"])
            info = status(os.path.dirname(result["path"]), key)
            others = sum(n for fp, n in info["by_key"].items() if fp and fp != info["current_key"])
        print(
            f"{result['outcome']}: {result['delivered']} delivered, {result['rejected']} rejected, "
            f"{result['remaining']} remaining in {where}"
            + (f"; {others} of other keys left for their owners" if others else "")
        )
        if result["outcome"] != "done":
            code = 1
    return code
