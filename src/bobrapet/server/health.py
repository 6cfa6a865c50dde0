"""Probes and metrics: ``/healthz``, ``/livez`` (alive), ``/readyz`` (its engine runs), ``/metrics``.

Invariants: the probes answer ``ok`` (200) or say what is missing (503) as plain text, and
never need credentials (:mod:`bobrapet.server.auth`); ``/readyz`` is 503 while the engine
starts and once shutdown began; ``/metrics`` is the Prometheus text format of the process's
metrics (:mod:`bobrapet.runtime.metrics`), 404 when they are off.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import PlainTextResponse, Response

from bobrapet.runtime.metrics import CONTENT_TYPE
from bobrapet.server.context import api_context
from bobrapet.server.errors import not_found_path

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness", response_class=PlainTextResponse)
async def healthz() -> Response:
    return PlainTextResponse("ok")


@router.get("/livez", summary="Liveness", response_class=PlainTextResponse)
async def livez() -> Response:
    return PlainTextResponse("ok")


@router.get("/readyz", summary="Readiness: the engine is up", response_class=PlainTextResponse)
async def readyz(request: Request) -> Response:
    ctx = api_context(request)
    if ctx.stopping.is_set():
        return PlainTextResponse("shutting down", status_code=503)
    if not ctx.ready():
        return PlainTextResponse("engine starting", status_code=503)
    return PlainTextResponse("ok")


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> Response:
    ctx = api_context(request)
    if ctx.metrics is None:
        raise not_found_path()
    return Response(ctx.metrics.exposition(), media_type=CONTENT_TYPE)
