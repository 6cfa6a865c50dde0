"""What the API's handlers share: the store client, readiness, shutdown and metrics.

One :class:`ApiContext` per application (``app.state.api``). Invariant: the resource API
writes through :attr:`ApiContext.client`, a client whose admission also checks status
writes (requests are user input; the engine's own client skips that check on its hot path).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from bobrapet.runtime.metrics import Metrics
from bobrapet.store.client import Client


def _never() -> bool:
    return False


@dataclass
class ApiContext:
    """Shared state of one API application."""

    client: Client
    #: Whether the service is ready (its engine runs): ``/readyz``.
    ready: Callable[[], bool] = _never
    #: Set when the service shuts down: open watch streams end.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    #: The process's metrics (``/metrics`` answers 404 without them).
    metrics: Metrics | None = None
    #: Longest a watch stays open without ``timeoutSeconds`` (the API server: 30-60 min).
    max_watch_seconds: float = 1800.0


def api_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.api
    return context
