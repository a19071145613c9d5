"""Files and Batch API for the stub: uploads kept in memory, batches completed at once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from ._stub_common import JSON, Reply, new_id

__all__ = ["Answerer", "FileStore"]

#: (endpoint such as "chat/completions", request body) -> the answer's JSON, or None if unknown.
Answerer = Callable[[str, JSON], JSON | None]


def _endpoint_of(url: str) -> str:
    """``/v1/chat/completions`` -> ``chat/completions`` (batch lines name the endpoint by URL)."""
    parts = [p for p in url.split("?")[0].split("/") if p]
    return "/".join(parts[1:] if parts[:1] == ["v1"] else parts)


class FileStore:
    """Uploaded files and batches by id; batch output files answer each line with the stub's builders."""

    def __init__(self, answer: Answerer) -> None:
        self._answer = answer
        self._files: dict[str, tuple[JSON, bytes]] = {}
        self._batches: dict[str, JSON] = {}
        self._lock = threading.Lock()

    def _add_file(self, filename: str, purpose: str, data: bytes) -> JSON:
        meta: JSON = {
            "id": new_id("file-"),
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }
        with self._lock:
            self._files[meta["id"]] = (meta, data)
        return meta

    def upload(self, fields: dict[str, str], name: str, data: bytes) -> Reply:
        """``POST /files``: a file object; the bytes stay in memory for ``/files/{id}/content``."""
        return Reply(json=self._add_file(name, fields.get("purpose", "batch"), data))

    def file(self, file_id: str) -> Reply | None:
        """``GET /files/{id}``."""
        with self._lock:
            found = self._files.get(file_id)
        return None if found is None else Reply(json=dict(found[0]))

    def content(self, file_id: str) -> Reply | None:
        """``GET /files/{id}/content``: the raw bytes."""
        with self._lock:
            found = self._files.get(file_id)
        return None if found is None else Reply(raw=found[1], content_type="application/octet-stream")

    def create_batch(self, body: JSON) -> Reply | None:
        """``POST /batches``: completed at once, its output file answering every input line."""
        with self._lock:
            found = self._files.get(str(body.get("input_file_id")))
        if found is None:
            return None
        lines = [json.loads(line) for line in found[1].decode("utf-8").splitlines() if line.strip()]
        output = [self._output_line(line) for line in lines]
        data = "".join(json.dumps(o, separators=(",", ":")) + "\n" for o in output).encode("utf-8")
        out = self._add_file("batch_output.jsonl", "batch_output", data)
        now = int(time.time())
        failed = sum(1 for o in output if o["error"] is not None)
        batch: JSON = {
            "id": new_id("batch_"),
            "object": "batch",
            "endpoint": str(body.get("endpoint") or ""),
            "errors": None,
            "input_file_id": found[0]["id"],
            "completion_window": str(body.get("completion_window") or "24h"),
            "status": "completed",
            "output_file_id": out["id"],
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": now,
            "expires_at": now + 86400,
            "finalizing_at": now,
            "completed_at": now,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": len(output), "completed": len(output) - failed, "failed": failed},
            "metadata": body.get("metadata"),
        }
        with self._lock:
            self._batches[batch["id"]] = batch
        return Reply(json=batch)

    def batch(self, batch_id: str) -> Reply | None:
        """``GET /batches/{id}``."""
        with self._lock:
            found = self._batches.get(batch_id)
        return None if found is None else Reply(json=dict(found))

    def _output_line(self, line: Any) -> JSON:
        request = line if isinstance(line, dict) else {}
        raw_body = request.get("body")
        body: JSON = raw_body if isinstance(raw_body, dict) else {}
        answer = self._answer(_endpoint_of(str(request.get("url") or "")), body)
        line_id = new_id("batch_req_")
        if answer is None:
            error = {"code": "invalid_url", "message": f"Unsupported batch URL {request.get('url')!r}."}
            return {"id": line_id, "custom_id": request.get("custom_id"), "response": None, "error": error}
        response = {"status_code": 200, "request_id": new_id("req_"), "body": answer}
        return {"id": line_id, "custom_id": request.get("custom_id"), "response": response, "error": None}
