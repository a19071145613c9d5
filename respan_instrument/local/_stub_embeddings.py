"""Embeddings payloads (deterministic vectors, float or base64) for the stub."""

from __future__ import annotations

import base64
import hashlib
import json
import struct

from ._stub_common import JSON, CallSpec, count_words, make_usage

__all__ = ["embeddings"]

DEFAULT_DIMENSIONS = 8


def _inputs(body: JSON) -> list[object]:
    value = body.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        if value and all(isinstance(v, int) for v in value):
            return [value]
        return list(value)
    return []


def _vector(item: object, dims: int) -> list[float]:
    seed = json.dumps(item, sort_keys=True).encode("utf-8")
    out: list[float] = []
    counter = 0
    while len(out) < dims:
        digest = hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        out.extend(round(b / 127.5 - 1.0, 6) for b in digest)
        counter += 1
    return out[:dims]


def _tokens(item: object) -> int:
    if isinstance(item, str):
        return max(1, count_words(item))
    if isinstance(item, list):
        return len(item)
    return 1


def embeddings(spec: CallSpec) -> JSON:
    """A ``list`` of ``embedding`` objects, one per input."""
    dims_value = spec.body.get("dimensions")
    dims = dims_value if isinstance(dims_value, int) and dims_value > 0 else DEFAULT_DIMENSIONS
    as_base64 = spec.body.get("encoding_format") == "base64"
    data: list[JSON] = []
    for index, item in enumerate(_inputs(spec.body)):
        vector = _vector(item, dims)
        encoded: object = vector
        if as_base64:
            encoded = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    usage = make_usage(sum(_tokens(i) for i in _inputs(spec.body)), 0, spec.usage)
    return {
        "object": "list",
        "data": data,
        "model": spec.model,
        "usage": {
            "prompt_tokens": usage.prompt,
            "total_tokens": int(spec.usage.get("total_tokens", usage.prompt)),
        },
    }
