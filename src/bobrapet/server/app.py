"""The ASGI application of ``bobrapet serve``: discovery, the resource API, probes, metrics, OpenAPI.

:func:`build_app` is the one place the routers come together. Other parts add their own
endpoints by passing routers (``extra_routers``; e.g. impulse webhooks under
``/impulses/<namespace>/<impulse>``): they get the same error handling (``Status`` bodies)
and the same bearer-token check. The FastAPI OpenAPI document is at ``/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp

from bobrapet import __version__
from bobrapet.server import discovery, health, openapi, resources
from bobrapet.server.auth import BearerAuth
from bobrapet.server.context import ApiContext
from bobrapet.server.errors import install_handlers


def build_app(
    context: ApiContext, *, token: str | None = None, extra_routers: Iterable[APIRouter] = ()
) -> ASGIApp:
    """The application serving ``context`` (``token``: required as a bearer token, but for probes)."""
    app = FastAPI(
        title="Bobrapet",
        version=__version__,
        description="The Kubernetes-shaped API of an embedded Bobrapet control plane (`bobrapet serve`).",
        docs_url=None,
        redoc_url=None,
    )
    app.state.api = context
    install_handlers(app)
    app.include_router(health.router)
    app.include_router(discovery.router)
    app.include_router(openapi.router)
    for router in extra_routers:
        app.include_router(router)
    app.include_router(resources.router)  # last: its patterns are the broadest
    return BearerAuth(app, token)
