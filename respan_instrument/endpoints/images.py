"""Images (`/images/generations`, `/images/edits`, `/images/variations`): a generation log with
the prompt, placeholders for the images sent and received (never their base64), tokens for GPT
Image models and a per-image price for DALL·E."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Endpoint, FilePart, Priced, Prices, fields_of, get, size_text
from .usage import TokenUsage

_PARTIAL_EVENTS = frozenset({"image_generation.partial_image", "image_edit.partial_image"})
_COMPLETED_EVENTS = frozenset({"image_generation.completed", "image_edit.completed"})


class Picture:
    """One image of an answer: its URL, or the size of its base64 (never the base64)."""

    __slots__ = ("url", "b64_chars", "revised_prompt")

    def __init__(self, url: Any, b64: Any, revised_prompt: Any) -> None:
        self.url = url if isinstance(url, str) else None
        self.b64_chars = len(b64) if isinstance(b64, str) else None
        self.revised_prompt = revised_prompt if isinstance(revised_prompt, str) else None

    def shown(self, media_type: str) -> str:
        if self.url:
            return self.url
        if self.b64_chars is not None:
            return f"[image: {media_type}, {size_text(self.b64_chars * 3 // 4)}]"
        return f"[image: {media_type}]"


class Pictures:
    """What a log needs of an images answer: usage, format and the pictures' placeholders."""

    __slots__ = ("model", "usage", "output_format", "pictures")

    def __init__(self, response: Any = None) -> None:
        self.model: Any = None
        self.usage: Any = None
        self.output_format: Any = None
        self.pictures: list[Picture] = []
        if response is not None:
            fields = fields_of(response)
            self.usage = fields.get("usage")
            self.output_format = fields.get("output_format")
            for item in fields.get("data") or ():
                self.pictures.append(
                    Picture(get(item, "url"), get(item, "b64_json"), get(item, "revised_prompt"))
                )


class PicturesAccumulator(Pictures):
    """A streamed answer (`stream=True` with `partial_images`): partial images count as output
    for time to first token; the completed event carries the image and the usage."""

    __slots__ = ()

    def add(self, event: Any) -> bool:
        e = fields_of(event)
        kind = e.get("type")
        if kind in _PARTIAL_EVENTS:
            return True
        if kind in _COMPLETED_EVENTS:
            self.usage = e.get("usage") or self.usage
            self.output_format = e.get("output_format") or self.output_format
            self.pictures.append(Picture(None, e.get("b64_json"), None))
            return True
        return False


class Images(Endpoint):
    routes = ("/images/generations",)
    operation = "image_generation"
    log_type = "generation"
    request_fields = ("size", "quality", "n", "style", "background", "output_format")
    keeps_body = False  # base64 images: megabytes the log never shows
    taps_streams = False  # a few events, each a whole image in base64
    stream_usage = False
    stream_errors = False
    usage_names = ("input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details")

    def accumulator(self) -> PicturesAccumulator:
        return PicturesAccumulator()

    def summary(self, response: Any, http: Any) -> Any:
        if response is None or isinstance(response, Pictures):
            return response
        return Pictures(response)

    def finish_reasons(self, fields: Any, response: Any) -> tuple[str, ...] | None:
        return None

    def usage(self, usage: Any) -> TokenUsage | None:
        """GPT Image tokens; what the answer makes is image tokens unless it says otherwise."""
        tokens = super().usage(usage)
        if tokens is None:
            return None
        u = fields_of(usage)
        details_in = u.get("input_tokens_details")
        details_out = u.get("output_tokens_details")
        image_in = get(details_in, "image_tokens") if details_in is not None else None
        image_out = get(details_out, "image_tokens") if details_out is not None else tokens.output_tokens
        return tokens._replace(
            input_image_tokens=image_in if isinstance(image_in, int) else 0,
            output_image_tokens=image_out if isinstance(image_out, int) else 0,
        )

    def price(self, prices: Prices, call: Priced) -> float | None:
        """Tokens for GPT Image models; per image by size and quality for DALL·E."""
        if call.usage is not None:
            return super().price(prices, call)
        response = call.response
        count = len(response.pictures) if isinstance(response, Pictures) else 0
        if not count:
            return None
        size = str(call.request.get("size") or "1024x1024")
        quality = str(call.request.get("quality") or "standard")
        cost = prices.unit_cost(call.model, "image", count, f"{size}/{quality}")
        return cost if cost is not None else prices.unit_cost(call.model, "image", count, size)

    def content(
        self, log: dict[str, Any], request: Mapping[str, Any], response: Any, files: tuple[FilePart, ...]
    ) -> None:
        prompt = request.get("prompt")
        shown = [part.placeholder() for part in files]
        if shown:
            log["input"] = [prompt, *shown] if prompt else shown
        elif prompt is not None:
            log["input"] = prompt
        if isinstance(response, Pictures) and response.pictures:
            media = f"image/{response.output_format or request.get('output_format') or 'png'}"
            log["output"] = [
                {"image": p.shown(media), "revised_prompt": p.revised_prompt}
                if p.revised_prompt
                else p.shown(media)
                for p in response.pictures
            ]


class ImageEdits(Images):
    routes = ("/images/edits",)
    operation = "image_edit"


class ImageVariations(Images):
    routes = ("/images/variations",)
    operation = "image_variation"


IMAGES = Images()
IMAGE_EDITS = ImageEdits()
IMAGE_VARIATIONS = ImageVariations()
