"""Bearer-token authentication of every endpoint but health and impulse webhooks (an ASGI
middleware).

Invariants: with a token configured, a request to any path outside :data:`OPEN_PATHS` and
:data:`OPEN_PREFIXES` (impulse webhooks) without ``Authorization: Bearer <token>`` gets
``401 Unauthorized`` (a ``Status`` body and ``WWW-Authenticate: Bearer``); tokens are
compared in constant time (:func:`hmac.compare_digest`); without a token (loopback only, see
:mod:`bobrapet.server.service`) every request passes.
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from bobrapet.server.errors import unauthorized
from bobrapet.server.responses import status_response

#: Paths served without credentials: probes must work before anyone has a token.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/livez"})
#: Path prefixes served without credentials: impulse webhooks, whose senders (GitHub...)
#: cannot send the API token; deliveries authenticate by signature (``spec.secrets.signing``).
OPEN_PREFIXES = ("/impulses/",)


def token_matches(header: bytes, token: bytes) -> bool:
    """Whether an ``Authorization`` header value carries ``token`` as a bearer token."""
    scheme, _, value = header.strip().partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(value.strip(), token)


class BearerAuth:
    """Refuses requests without the bearer ``token`` (``None``: no authentication)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode("utf-8") if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path") or ""
        if (
            self.token is None
            or scope["type"] != "http"
            or path in OPEN_PATHS
            or path.startswith(OPEN_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope.get("headers") or () if k == b"authorization"), b"")
        if token_matches(header, self.token):
            await self.app(scope, receive, send)
            return
        response = status_response(unauthorized(), headers={"WWW-Authenticate": 'Bearer realm="bobrapet"'})
        await response(scope, receive, send)
