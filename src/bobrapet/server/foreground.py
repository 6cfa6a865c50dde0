"""Writes before the engine: an ASGI middleware marking requests as foreground work.

Every request that changes state — an impulse delivery, an API create, update, patch or
delete — is served inside :meth:`~bobrapet.runtime.foreground.Foreground.serving`, so the
engine's reconciles take turns with it instead of delaying its answer (see
:mod:`bobrapet.runtime.foreground`). Reads are not marked: a watch or a followed log stays
open for minutes and must not hold the engine back.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from bobrapet.runtime.foreground import Foreground

#: Methods whose requests are foreground work.
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ForegroundWrites:
    """Serves write requests as foreground work of ``foreground``."""

    def __init__(self, app: ASGIApp, foreground: Foreground) -> None:
        self.app = app
        self.foreground = foreground

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in WRITES:
            await self.app(scope, receive, send)
            return
        with self.foreground.serving():
            await self.app(scope, receive, send)
