"""Build a deterministic sample value that satisfies a (simple) JSON schema."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["example_from_schema"]

_MAX_DEPTH = 16

_STRING_FORMATS: dict[str, str] = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00",
    "email": "x@example.com",
    "uri": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def example_from_schema(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Any:
    """Return a sample instance of ``schema``: strings "x", integers 1, numbers 1.0, ..."""
    return _example(schema, schema if root is None else root, 0)


def _resolve(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any]:
    if not ref.startswith("#"):
        return {}
    node: Any = root
    for part in ref.lstrip("#").strip("/").split("/"):
        if not part:
            continue
        key = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or key not in node:
            return {}
        node = node[key]
    return node if isinstance(node, Mapping) else {}


def _pick_variant(variants: list[Any]) -> Mapping[str, Any]:
    for variant in variants:
        if isinstance(variant, Mapping) and variant.get("type") != "null":
            return variant
    return {"type": "null"}


def _example(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> Any:
    if depth > _MAX_DEPTH:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _example(_resolve(ref, root), root, depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        variants = schema.get(key)
        if isinstance(variants, list) and variants:
            return _example(_pick_variant(variants), root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "properties" in schema:
        kind = "object"
    return _by_type(kind, schema, root, depth)


def _by_type(kind: Any, schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> Any:
    if kind == "object":
        props = schema.get("properties")
        if not isinstance(props, Mapping):
            return {}
        return {
            str(name): _example(sub if isinstance(sub, Mapping) else {}, root, depth + 1)
            for name, sub in props.items()
        }
    if kind == "array":
        items = schema.get("items")
        min_items = schema.get("minItems")
        count = max(1, min_items) if isinstance(min_items, int) else 1
        item_schema = items if isinstance(items, Mapping) else {}
        return [_example(item_schema, root, depth + 1) for _ in range(count)]
    if kind == "integer":
        minimum = schema.get("minimum")
        return max(1, int(minimum)) if isinstance(minimum, (int, float)) else 1
    if kind == "number":
        minimum = schema.get("minimum")
        return max(1.0, float(minimum)) if isinstance(minimum, (int, float)) else 1.0
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _STRING_FORMATS:
        return _STRING_FORMATS[fmt]
    return "x"
