"""Images API payloads (generations, edits, variations; JSON and streamed) for the stub."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

from ._stub_common import JSON, CallSpec, Reply, SSEvent, count_words

__all__ = ["TINY_PNG_B64", "image_reply"]

#: The PNG signature and an IHDR chunk start: enough for a client to see "a PNG", tiny on purpose.
TINY_PNG_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR").decode("ascii")
_IMAGE_TOKENS = 272  # the API's output token count for one low-quality square image


def _token_model(model: str) -> bool:
    """Only the gpt-image family is billed in tokens, so only it reports ``usage``."""
    return model.startswith("gpt-image")


def _usage(spec: CallSpec, n: int, with_image_input: bool) -> JSON:
    words = count_words(str(spec.body.get("prompt") or ""))
    text = int(spec.usage.get("input_tokens", max(1, words)))
    image = 194 if with_image_input else 0
    output = int(spec.usage.get("output_tokens", _IMAGE_TOKENS * n))
    return {
        "input_tokens": text + image,
        "input_tokens_details": {"text_tokens": text, "image_tokens": image},
        "output_tokens": output,
        "total_tokens": int(spec.usage.get("total_tokens", text + image + output)),
    }


def _count(body: JSON) -> int:
    try:
        return max(1, min(int(body.get("n") or 1), 10))
    except (TypeError, ValueError):
        return 1


def _settings(body: JSON) -> JSON:
    return {
        "size": str(body.get("size") or "1024x1024"),
        "quality": str(body.get("quality") or "low"),
        "background": str(body.get("background") or "opaque"),
        "output_format": str(body.get("output_format") or "png"),
    }


def _image_object(spec: CallSpec, kind: str) -> JSON:
    body, n = spec.body, _count(spec.body)
    wants_url = body.get("response_format") == "url" and not _token_model(spec.model)
    item: dict[str, Any] = (
        {"url": "https://stub.invalid/image.png"} if wants_url else {"b64_json": TINY_PNG_B64}
    )
    if spec.model == "dall-e-3":
        item["revised_prompt"] = str(body.get("prompt") or "")
    answer: JSON = {"created": int(time.time()), "data": [dict(item) for _ in range(n)]}
    if _token_model(spec.model):
        answer.update(_settings(body))
        answer["usage"] = _usage(spec, n, kind != "generations")
    return answer


def _image_stream(spec: CallSpec, kind: str) -> Iterator[SSEvent]:
    prefix = "image_edit" if kind == "edits" else "image_generation"
    try:
        partials = max(0, min(int(spec.body.get("partial_images") or 0), 3))
    except (TypeError, ValueError):
        partials = 0
    common: JSON = {"created_at": int(time.time()), **_settings(spec.body), "b64_json": TINY_PNG_B64}
    for index in range(partials):
        kind_name = f"{prefix}.partial_image"
        yield SSEvent({"type": kind_name, **common, "partial_image_index": index}, kind_name, True)
    done = f"{prefix}.completed"
    usage = _usage(spec, 1, kind == "edits")
    yield SSEvent({"type": done, **common, "usage": usage}, done, True)


def image_reply(kind: str, spec: CallSpec) -> Reply:
    """Answer ``images/<kind>`` (generations, edits, variations)."""
    if spec.body.get("stream") in (True, "true") and kind != "variations":
        return Reply(events=_image_stream(spec, kind))
    return Reply(json=_image_object(spec, kind))
