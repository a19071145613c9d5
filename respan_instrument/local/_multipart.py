"""A small multipart/form-data parser for the stub (stdlib only; uploads of images, audio, files)."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP

__all__ = ["FormData", "parse_form"]


@dataclass
class FormData:
    """Form fields as strings; files as (filename, content type, size), and their bytes apart.

    ``contents`` exists only so an uploaded batch input can be answered later; the request
    record keeps names and sizes, never bytes, so a test's log of requests stays small.
    """

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)


def parse_form(content_type: str, raw: bytes) -> FormData:
    """Parse a multipart body; repeated fields (``timestamp_granularities[]``) are joined by commas."""
    form = FormData()
    if not content_type.lower().startswith("multipart/"):
        return form
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=HTTP).parsebytes(head + raw)
    if not message.is_multipart():
        return form
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            form.files[name] = (filename, part.get_content_type(), len(data))
            form.contents[name] = data
        elif name in form.fields:
            form.fields[name] = f"{form.fields[name]},{data.decode('utf-8', 'replace')}"
        else:
            form.fields[name] = data.decode("utf-8", "replace")
    return form
