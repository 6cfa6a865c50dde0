"""``POST /impulses/<namespace>/<impulse>``: HTTP deliveries to webhook and github Impulses.

The handler finds the running HTTP impulse (404 for an unknown Impulse or one that does not
receive HTTP deliveries, 503 for one that is not running), reads the body — refusing with
413 as soon as ``Content-Length`` or the bytes received pass the impulse's ``maxBodyBytes``,
so an oversized body is never buffered — and hands the request to the impulse
(:mod:`bobrapet.impulses.webhook`, :mod:`bobrapet.impulses.github`). Refusals are Kubernetes
``Status`` bodies (400, 401, 404, 409, 413, 415, 503); an accepted delivery is answered (202)
only after its StoryTrigger is stored.

Invariants: header names reach the impulse lower-case (as Starlette gives them), query values
as text (a list when repeated); nothing is stored for a refused request.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bobrapet.api.errors import StatusError
from bobrapet.impulses.http import HttpRequest
from bobrapet.impulses.sink import Refused
from bobrapet.impulses.supervisor import Endpoint
from bobrapet.server.responses import json_response

PREFIX = "/impulses/"
PATH = PREFIX + "{namespace}/{impulse}"

Lookup = Callable[[str, str], Endpoint]


def too_large(limit: int) -> StatusError:
    return StatusError(
        f"the request body is larger than {limit} bytes, this impulse's limit (spec.with.maxBodyBytes)",
        reason="RequestEntityTooLarge",
        code=413,
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The body, or 413 as soon as it is known to pass ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def query_of(request: Request) -> dict[str, str | list[str]]:
    query: dict[str, str | list[str]] = {}
    for key, value in request.query_params.multi_items():
        current = query.get(key)
        if current is None:
            query[key] = value
        elif isinstance(current, list):
            current.append(value)
        else:
            query[key] = [current, value]
    return query


def impulse_router(lookup: Lookup) -> APIRouter:
    """The delivery endpoint; ``lookup(namespace, name)`` finds the running HTTP impulse.

    A plain Starlette route (no FastAPI parameter handling on the hot path)."""

    async def deliver(request: Request) -> Response:
        endpoint = lookup(request.path_params["namespace"], request.path_params["impulse"])
        body = await read_body(request, endpoint.max_body_bytes)
        headers = dict(request.headers.items())
        delivery = HttpRequest(body, headers, query_of(request))
        try:
            answer = await endpoint.impulse.handle(delivery, endpoint.sink)
        except Refused as refused:
            raise refused.status_error() from None
        return json_response(answer.body, answer.status)

    router = APIRouter()
    router.routes.append(Route(PATH, deliver, methods=["POST"], include_in_schema=False))
    return router
