"""Moderations API payloads for the stub: deterministic flags from trigger words."""

from __future__ import annotations

from ._stub_common import JSON, CallSpec, Reply, new_id, text_of

__all__ = ["moderation_reply"]

_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
_IMAGE_CATEGORIES = frozenset(
    {"self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "violence", "violence/graphic"}
)
#: Trigger word -> categories it flags, so a test chooses a verdict by the words of its input.
_TRIGGERS: dict[str, tuple[str, ...]] = {
    "kill": ("violence",),
    "hate": ("hate", "harassment"),
    "steal": ("illicit",),
}


def _inputs(body: JSON) -> list[tuple[str, bool]]:
    """(text, has image) per input: a string, a list of strings, or a list of multimodal parts."""
    value = body.get("input")
    if isinstance(value, str):
        return [(value, False)]
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        has_image = any(v.get("type") == "image_url" for v in value)
        return [(text_of(value), has_image)]
    if isinstance(value, list):
        return [(str(v), False) for v in value]
    return [("", False)]


def _result(text: str, has_image: bool) -> JSON:
    words = text.lower()
    hit = {c for word, cats in _TRIGGERS.items() if word in words for c in cats}
    applied = {
        c: (["text", "image"] if has_image and c in _IMAGE_CATEGORIES else ["text"]) for c in _CATEGORIES
    }
    return {
        "flagged": bool(hit),
        "categories": {c: c in hit for c in _CATEGORIES},
        "category_scores": {c: (0.97 if c in hit else 0.0001) for c in _CATEGORIES},
        "category_applied_input_types": applied,
    }


def moderation_reply(spec: CallSpec) -> Reply:
    """Answer ``moderations``; an input containing "kill" is flagged for violence."""
    model = spec.model or "omni-moderation-latest"
    if model in ("omni-moderation-latest", "text-moderation-latest"):
        model = f"{model.rsplit('-', 1)[0]}-2024-09-26"
    results = [_result(text, image) for text, image in _inputs(spec.body)]
    return Reply(json={"id": new_id("modr-"), "model": model, "results": results})
