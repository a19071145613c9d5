"""Keep a log's content fields within limits without touching the caller's data."""

from __future__ import annotations

import json
from collections.abc import MutableMapping, Sequence
from typing import Any

_MIN_STRING = 256


def is_inline_data(text: str) -> bool:
    """An inline `data:` URL (base64 image, audio) that a log carries as a short placeholder."""
    return len(text) > 128 and text.startswith("data:")


def strip_data_urls(value: Any) -> Any:
    """A copy of `value` with inline `data:` URLs (base64 images, audio) replaced by a placeholder.

    Containers are copied only where something changed.
    """
    if isinstance(value, str):
        if is_inline_data(value):
            head, _, payload = value.partition(",")
            media = head[5:].split(";", 1)[0] or "application/octet-stream"
            return f"[respan: inline {media} omitted, {len(payload)} characters]"
        return value
    if isinstance(value, list):
        items = [strip_data_urls(v) for v in value]
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    if isinstance(value, dict):
        changed = {k: strip_data_urls(v) for k, v in value.items()}
        return changed if any(changed[k] is not value[k] for k in value) else value
    return value


def _size(value: Any) -> int:
    return len(json.dumps(value, default=str, ensure_ascii=False).encode())


def limit_content(log: MutableMapping[str, Any], fields: Sequence[str], limit: int) -> None:
    """Replace data URLs, then drop the oldest messages (keeping system and newest) and cut long
    strings until the content fields fit in `limit` bytes. The log itself is never dropped."""
    for key in fields:
        if key in log:
            log[key] = strip_data_urls(log[key])
    sizes = {key: _size(log[key]) for key in fields if key in log}
    total = sum(sizes.values())
    if total <= limit:
        return
    for key in ("prompt_messages", "input"):
        value = log.get(key)
        if isinstance(value, list) and len(value) > 2:
            budget = limit - (total - sizes[key])
            log[key] = _drop_oldest(value, budget)
            total = total - sizes[key] + _size(log[key])
            sizes[key] = _size(log[key])
    if total <= limit:
        return
    # still too big: shorten the longest strings of every content field proportionally
    for key in fields:
        if key in log:
            share = max(_MIN_STRING, int(limit * sizes[key] / max(total, 1)) - 64)
            log[key] = _cut_strings(log[key], share)


def _drop_oldest(messages: list[Any], budget: int) -> list[Any]:
    head = [m for m in messages[:1] if isinstance(m, dict) and m.get("role") in ("system", "developer")]
    rest = messages[len(head) :]
    kept: list[Any] = []
    used = _size(head) + 128
    for message in reversed(rest):
        cost = _size(message) + 1
        if kept and used + cost > budget:
            break
        kept.append(message)
        used += cost
    kept.reverse()
    dropped = len(rest) - len(kept)
    if not dropped:
        return messages
    marker = {"role": "system", "content": f"[respan: {dropped} earlier messages omitted for size]"}
    return [*head, marker, *kept]


def _cut_strings(value: Any, budget: int) -> Any:
    if isinstance(value, str):
        if len(value.encode()) <= budget:
            return value
        cut = value.encode()[:budget].decode(errors="ignore")
        return f"{cut}… [respan: truncated, {len(value)} characters in all]"
    if isinstance(value, list):
        return [_cut_strings(v, budget) for v in value]
    if isinstance(value, dict):
        return {k: _cut_strings(v, budget) for k, v in value.items()}
    return value
