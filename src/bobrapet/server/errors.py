"""The API's errors beyond the store's, and the handlers that turn every failure into a ``Status``.

The store and admission raise :class:`~bobrapet.api.errors.StatusError` (NotFound,
AlreadyExists, Conflict, Invalid, BadRequest); this module adds the HTTP-level ones (an
unknown path, a method a resource does not allow, an unsupported media type, missing
credentials) with the reasons and messages of the Kubernetes API server. Invariant: no
request ends in a traceback or a non-``Status`` error body.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from bobrapet.api.errors import BadRequest, StatusError
from bobrapet.server.responses import status_response

log = logging.getLogger("bobrapet.server")

PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json")


def not_found_path() -> StatusError:
    """The API server's answer for a path that names no resource."""
    return StatusError("the server could not find the requested resource", reason="NotFound", code=404)


def method_not_allowed() -> StatusError:
    return StatusError(
        "the server does not allow this method on the requested resource", reason="MethodNotAllowed", code=405
    )


def unsupported_media_type(received: str, accepted: tuple[str, ...], hint: str = "") -> StatusError:
    message = (
        f"the body of the request was in an unknown format ({received or 'no Content-Type'}) - "
        f"accepted media types include: {', '.join(accepted)}"
    )
    return StatusError(message + (f"; {hint}" if hint else ""), reason="UnsupportedMediaType", code=415)


def unauthorized() -> StatusError:
    return StatusError("Unauthorized", reason="Unauthorized", code=401)


def not_acceptable(accept: str) -> StatusError:
    return StatusError(
        f"only the following media types are accepted: application/json (asked for {accept})",
        reason="NotAcceptable",
        code=406,
    )


def install_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` a ``Status`` response."""

    async def on_status_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StatusError)
        return status_response(exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return status_response(not_found_path())
        if exc.status_code == 405:
            return status_response(method_not_allowed())
        reason = "BadRequest" if exc.status_code == 400 else "InternalError"
        return status_response(StatusError(str(exc.detail), reason=reason, code=exc.status_code))

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "path"))
            problems.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg")))
        return status_response(BadRequest("; ".join(problems) or "invalid request"))

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
        return status_response(StatusError(f"internal error: {exc}", reason="InternalError", code=500))

    app.add_exception_handler(StatusError, on_status_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
