"""The ASGI application of ``bobrapet serve``: discovery, the resource API, probes, metrics, OpenAPI.

:func:`build_app` is the one place the routers come together. Other parts add their own
endpoints by passing routers (``extra_routers``), which get the same error handling
(``Status`` bodies) and the same bearer-token check, or plain ASGI applications under a path
prefix (``mounts``; impulse webhooks under ``/impulses/``), which are served before FastAPI's
routing and middleware and answer their own errors. The FastAPI OpenAPI document is at
``/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from bobrapet import __version__
from bobrapet.runtime.foreground import Foreground
from bobrapet.server import discovery, health, openapi, resources
from bobrapet.server.auth import BearerAuth
from bobrapet.server.context import ApiContext
from bobrapet.server.errors import install_handlers
from bobrapet.server.foreground import ForegroundWrites


def build_app(
    context: ApiContext,
    *,
    token: str | None = None,
    extra_routers: Iterable[APIRouter] = (),
    mounts: Mapping[str, ASGIApp] | None = None,
    foreground: Foreground | None = None,
) -> ASGIApp:
    """The application serving ``context`` (``token``: required as a bearer token, but for
    probes; ``foreground``: write requests are served as its foreground work)."""
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
    served: ASGIApp = Mounts(app, mounts) if mounts else app
    if foreground is not None:
        served = ForegroundWrites(served, foreground)
    return BearerAuth(served, token)


class Mounts:
    """Serves HTTP requests under a mounted prefix with its application, all others with ``app``."""

    def __init__(self, app: ASGIApp, mounts: Mapping[str, ASGIApp]) -> None:
        self.app = app
        self.mounts = tuple(mounts.items())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope.get("path") or ""
            for prefix, mounted in self.mounts:
                if path.startswith(prefix):
                    await mounted(scope, receive, send)
                    return
        await self.app(scope, receive, send)
