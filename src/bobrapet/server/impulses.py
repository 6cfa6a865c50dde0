"""``POST /impulses/<namespace>/<impulse>``: HTTP deliveries to webhook and github Impulses.

The endpoint finds the running HTTP impulse (404 for an unknown Impulse or one that does not
receive HTTP deliveries, 503 for one that is not running), reads the body — refusing with
413 as soon as ``Content-Length`` or the bytes received pass the impulse's ``maxBodyBytes``,
so an oversized body is never buffered — and hands the request to the impulse
(:mod:`bobrapet.impulses.webhook`, :mod:`bobrapet.impulses.github`). Refusals are Kubernetes
``Status`` bodies (400, 401, 404, 405, 409, 413, 415, 503); an accepted delivery is answered
(202) only after its StoryTrigger is stored.

It is a plain ASGI application mounted before the API's routing (see
:func:`bobrapet.server.app.build_app`): deliveries are the service's hot path, and FastAPI's
routing and middleware cost more than the rest of a delivery but the store write.

Invariants: header names reach the impulse lower-case, query values as text (a list when
repeated); nothing is stored for a refused request; no request ends without a ``Status`` body
or the impulse's answer (a client that disconnects mid-body gets nothing and stores nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.datastructures import Headers, QueryParams
from starlette.types import Receive, Scope, Send

from bobrapet.api.errors import StatusError
from bobrapet.impulses.http import HttpRequest
from bobrapet.impulses.sink import Refused
from bobrapet.impulses.supervisor import Endpoint
from bobrapet.server.errors import method_not_allowed, not_found_path
from bobrapet.server.responses import JSON, encode

log = logging.getLogger("bobrapet.server.impulses")

PREFIX = "/impulses/"

Lookup = Callable[[str, str], Endpoint]


class Disconnected(Exception):
    """The client went away before its body was complete."""


def too_large(limit: int) -> StatusError:
    return StatusError(
        f"the request body is larger than {limit} bytes, this impulse's limit (spec.with.maxBodyBytes)",
        reason="RequestEntityTooLarge",
        code=413,
    )


def target_of(path: str) -> tuple[str, str]:
    """``(namespace, impulse)`` of a delivery path (ASGI paths are already percent-decoded);
    404 for any other shape."""
    parts = path[len(PREFIX) :].split("/")
    if len(parts) != 2 or not all(parts):
        raise not_found_path()
    return parts[0], parts[1]


def headers_of(scope: Scope) -> dict[str, str]:
    """Header names lower-case, values as text; a repeated header keeps its last value."""
    return dict(Headers(scope=scope).items())


def query_of(scope: Scope) -> dict[str, str | list[str]]:
    query: dict[str, str | list[str]] = {}
    for key, value in QueryParams(scope.get("query_string", b"")).multi_items():
        current = query.get(key)
        if current is None:
            query[key] = value
        elif isinstance(current, list):
            current.append(value)
        else:
            query[key] = [current, value]
    return query


async def read_body(headers: dict[str, str], receive: Receive, limit: int) -> bytes:
    """The body, or 413 as soon as it is known to pass ``limit`` bytes."""
    declared = headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def respond(send: Send, status: int, body: object) -> None:
    payload = encode(body)
    headers = [(b"content-type", JSON.encode()), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _status(error: StatusError) -> tuple[int, object]:
    return error.code, error.to_status()


class ImpulseEndpoint:
    """The delivery endpoint as an ASGI application; ``lookup(namespace, name)`` finds the
    running HTTP impulse."""

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, body = await self._deliver(scope, receive)
        except Disconnected:
            return
        except Refused as refused:
            status, body = _status(refused.status_error())
        except StatusError as error:
            status, body = _status(error)
        except Exception as exc:
            log.error("POST %s failed: %s", scope.get("path"), exc, exc_info=exc)
            status, body = _status(StatusError(f"internal error: {exc}", reason="InternalError", code=500))
        await respond(send, status, body)

    async def _deliver(self, scope: Scope, receive: Receive) -> tuple[int, object]:
        namespace, name = target_of(scope["path"])
        if scope.get("method") != "POST":
            raise method_not_allowed()
        endpoint = self.lookup(namespace, name)
        headers = headers_of(scope)
        body = await read_body(headers, receive, endpoint.max_body_bytes)
        answer = await endpoint.impulse.handle(HttpRequest(body, headers, query_of(scope)), endpoint.sink)
        return answer.status, answer.body
