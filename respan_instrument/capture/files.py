"""The files of a multipart request (audio, images), described without reading them."""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Mapping
from typing import Any

from ..endpoints.base import FilePart


def describe_files(files: Any) -> tuple[FilePart, ...]:
    """`FinalRequestOptions.files` (a mapping or a list of `(field, file)`, each file its bytes,
    a file object, or a `(name, content[, media type[, headers]])` tuple) as placeholders.

    The file is never read: a file object's size comes from its buffer or its descriptor, and
    its position is left alone.
    """
    entries = files.items() if isinstance(files, Mapping) else files
    parts = []
    for field, file in entries:
        name: Any = None
        media: Any = None
        content = file
        if isinstance(file, tuple):
            name = file[0] if len(file) > 0 else None
            content = file[1] if len(file) > 1 else None
            media = file[2] if len(file) > 2 else None
        if name is None:
            name = getattr(content, "name", None)
        filename = os.path.basename(name) if isinstance(name, str) and name else None
        if not isinstance(media, str) or not media:
            media = mimetypes.guess_type(filename)[0] if filename else None
        parts.append(FilePart(str(field), filename, media, _size(content)))
    return tuple(parts)


def _size(content: Any) -> int | None:
    if isinstance(content, (bytes, bytearray, memoryview)):
        return len(content)
    getbuffer = getattr(content, "getbuffer", None)  # io.BytesIO
    if callable(getbuffer):
        try:
            return len(getbuffer())
        except (TypeError, ValueError, BufferError):
            return None
    fileno = getattr(content, "fileno", None)
    if callable(fileno):
        try:
            return os.fstat(fileno()).st_size
        except (OSError, ValueError, TypeError):
            return None
    return None
