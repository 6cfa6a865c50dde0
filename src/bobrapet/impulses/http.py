"""HTTP deliveries, framework-free: the request an HTTP impulse sees, its answer, and the
steps every HTTP impulse shares (body parsing, JSON errors).

The server reads the request (body capped at :attr:`HttpImpulse.max_body_bytes`, see
``bobrapet.server``), builds an :class:`HttpRequest` and calls :meth:`HttpImpulse.handle`;
refusals are :class:`~bobrapet.impulses.sink.Refused` (an HTTP status and a message) that the
server answers as Kubernetes ``Status`` bodies.

Invariants: header names are lower-case; query values are text, or a list when repeated;
:func:`json_body` accepts ``application/json`` and any ``+json`` media type (or no
``Content-Type``), refuses other media types with 415, and bodies that are not JSON (or hold
``NaN``/``Infinity``) with 400 naming the position; an empty body is ``None``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol, runtime_checkable

from bobrapet.impulses.sink import Refused, TriggerSink

#: The header whose value is a webhook delivery's dedupe token (``mode: token``).
IDEMPOTENCY_KEY = "idempotency-key"
JSON_TYPES = ("application/json",)


@dataclass(frozen=True)
class HttpRequest:
    """One POST to ``/impulses/<namespace>/<impulse>``."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str | list[str]] = field(default_factory=dict)

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: dict[str, Any]


@runtime_checkable
class HttpImpulse(Protocol):
    """A runtime that receives HTTP deliveries (webhook, github)."""

    max_body_bytes: int

    async def handle(self, request: HttpRequest, sink: TriggerSink) -> HttpAnswer: ...


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def is_json_type(media_type: str) -> bool:
    return not media_type or media_type in JSON_TYPES or media_type.endswith("+json")


def unsupported(media_type: str, accepted: str = "application/json") -> Refused:
    return Refused(
        f"the body is {media_type}; send JSON with Content-Type: {accepted}",
        code=415,
        reason="UnsupportedMediaType",
    )


def parse_json(raw: bytes | str) -> Any:
    """The JSON value of ``raw`` (``None`` when empty); :class:`Refused` (400) otherwise."""
    if not raw or not raw.strip():
        return None
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(f"the body is not JSON: {exc}") from None


def json_body(request: HttpRequest) -> Any:
    """The request's JSON body (see the module invariants)."""
    if not is_json_type(request.media_type):
        raise unsupported(request.media_type)
    return parse_json(request.body)
