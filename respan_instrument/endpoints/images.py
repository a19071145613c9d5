"""Images (`/images/generations`, `/images/edits`, `/images/variations`): a generation log with
the prompt, placeholders for the images sent and received (never their base64), tokens for GPT
Image models and a per-image price for DALL·E."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Endpoint, FilePart, fields_of, get, size_text
from .bill import TOKENS, Line, Priced, unit
from .usage import TokenUsage, parse

_PARTIAL_EVENTS = frozenset({"image_generation.partial_image", "image_edit.partial_image"})
_COMPLETED_EVENTS = frozenset({"image_generation.completed", "image_edit.completed"})
# The API's model for a request that names none: DALL·E 2, unless a parameter only the GPT
# Image models take is passed (then the answer counts tokens, and the model it used is unknown).
DEFAULT_MODEL = "dall-e-2"
_GPT_IMAGE_PARAMETERS = ("background", "moderation", "output_compression", "output_format", "partial_images")
_GPT_IMAGE_QUALITIES = ("low", "medium", "high", "auto")

# OpenAI's per-image prices by size and quality, for the models genai-prices does not price
# per image; read from https://openai.com/api/pricing.
PER_IMAGE = unit(
    "image",
    "per_image",
    published={
        "dall-e-3": {
            "1024x1024/standard": 0.040,
            "1024x1792/standard": 0.080,
            "1792x1024/standard": 0.080,
            "1024x1024/hd": 0.080,
            "1024x1792/hd": 0.120,
            "1792x1024/hd": 0.120,
        },
        "dall-e-2": {"256x256": 0.016, "512x512": 0.018, "1024x1024": 0.020},
    },
    read_on="2026-12-05",
)


def token_usage(usage: Any, names: tuple[str, str, str, str]) -> TokenUsage | None:
    """GPT Image tokens: what the answer makes is image tokens unless it says otherwise."""
    tokens = parse(usage, names)
    if tokens is None:
        return None
    u = fields_of(usage)
    details_in = u.get("input_tokens_details")
    details_out = u.get("output_tokens_details")
    image_in = get(details_in, "image_tokens") if details_in is not None else None
    image_out = get(details_out, "image_tokens") if details_out is not None else tokens.output_tokens
    cached = u.get("cached_tokens")  # (the image tool's usage counts them at its top level)
    return tokens._replace(
        input_image_tokens=image_in if isinstance(image_in, int) else 0,
        output_image_tokens=image_out if isinstance(image_out, int) else 0,
        cached_input_tokens=cached if type(cached) is int else tokens.cached_input_tokens,
    )


def svg_line(svg: Any) -> Line | None:
    """`svg_usage`: a second model (the SVG author) at its own token rates."""
    if svg is None:
        return None
    s = fields_of(svg)
    model, inp, out = s.get("model"), s.get("input_tokens"), s.get("output_tokens")
    if not isinstance(model, str) or type(inp) is not int or type(out) is not int:
        return None
    reasoning = s.get("reasoning_tokens")
    usage = TokenUsage(inp, out, reasoning_tokens=reasoning if type(reasoning) is int else 0)
    return Line("svg", model, TOKENS, usage)


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

    __slots__ = ("model", "usage", "output_format", "pictures", "svg_usage")

    def __init__(self, response: Any = None) -> None:
        self.model: Any = None
        self.usage: Any = None
        self.output_format: Any = None
        self.svg_usage: Any = None
        self.pictures: list[Picture] = []
        if response is not None:
            fields = fields_of(response)
            self.usage = fields.get("usage")
            self.output_format = fields.get("output_format")
            self.svg_usage = fields.get("svg_usage")
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
            self.svg_usage = e.get("svg_usage") or self.svg_usage
            self.output_format = e.get("output_format") or self.output_format
            self.pictures.append(Picture(None, e.get("b64_json"), None))
            return True
        return False


class Images(Endpoint):
    routes = ("/images/generations",)
    operation = "image_generation"
    log_type = "generation"
    request_fields = frozenset({"size", "quality", "n", "style", "background", "output_format"})
    keeps_body = False  # base64 images: megabytes the log never shows
    taps_streams = False  # a few events, each a whole image in base64
    stream_usage = False
    stream_errors = False
    usage_names = ("input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details")
    price_units = (PER_IMAGE,)

    def accumulator(self) -> PicturesAccumulator:
        return PicturesAccumulator()

    def summary(self, response: Any, http: Any) -> Any:
        if response is None or isinstance(response, Pictures):
            return response
        return Pictures(response)

    def finish_reasons(self, fields: Any, response: Any) -> tuple[str, ...] | None:
        return None

    def usage(self, usage: Any) -> TokenUsage | None:
        return token_usage(usage, self.usage_names)

    def model_of(self, request: Mapping[str, Any], response: Any = None) -> str | None:
        model = request.get("model")
        if isinstance(model, str) and model:
            return model
        if any(request.get(key) is not None for key in _GPT_IMAGE_PARAMETERS):
            return None
        if request.get("quality") in _GPT_IMAGE_QUALITIES:
            return None
        if response is not None and get(response, "usage") is not None:
            return None  # an answer counting tokens is a GPT Image model's (a Batch line's, say)
        return DEFAULT_MODEL

    def bill(self, call: Priced) -> list[Line]:
        """Tokens for GPT Image models, per image by size and quality for DALL·E; an SVG
        author's tokens at its own rates."""
        response = call.response
        lines = super().bill(call)
        if call.usage is None:
            count = len(response.pictures) if isinstance(response, Pictures) else 0
            if count:
                size = str(call.request.get("size") or "1024x1024")
                quality = str(call.request.get("quality") or "standard")
                lines.append(Line("images", call.model, "image", count, f"{size}/{quality}"))
        svg = svg_line(response.svg_usage if isinstance(response, Pictures) else get(response, "svg_usage"))
        if svg is not None:
            lines.append(svg)
        return lines

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

    def model_of(self, request: Mapping[str, Any], response: Any = None) -> str | None:
        model = request.get("model")
        return model if isinstance(model, str) and model else DEFAULT_MODEL


IMAGES = Images()
IMAGE_EDITS = ImageEdits()
IMAGE_VARIATIONS = ImageVariations()
