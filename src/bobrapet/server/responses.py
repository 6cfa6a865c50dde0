"""JSON responses of the API: objects, lists and ``Status`` bodies, encoded once, compactly.

Invariants: every body is ``application/json`` (watch streams and ``/metrics`` aside);
every error is a ``meta/v1`` ``Status`` with the HTTP status code of its ``code``; admission
warnings travel as ``Warning: 299`` headers, as the API server sends them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.responses import Response

from bobrapet.api.errors import StatusError

JSON = "application/json"

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode(body: Any) -> bytes:
    return _ENCODER.encode(body).encode("utf-8")


def warning_header(text: str) -> str:
    """One ``Warning`` header value (RFC 7234 form, code 299, as the API server writes it)."""
    cleaned = " ".join(text.split()).replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{cleaned}"'


def json_response(body: Any, status: int = 200, warnings: Iterable[str] = ()) -> Response:
    response = Response(encode(body), status_code=status, media_type=JSON)
    for text in warnings:
        response.headers.append("Warning", warning_header(text))
    return response


def status_response(error: StatusError, headers: Mapping[str, str] | None = None) -> Response:
    """The ``Status`` body of ``error``, with its code as the HTTP status."""
    return Response(encode(error.to_status()), status_code=error.code, media_type=JSON, headers=headers)


def success_status(details: dict[str, Any], code: int = 200) -> dict[str, Any]:
    """A ``Status`` of success (what a delete that removed the object returns)."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
        "code": code,
    }
