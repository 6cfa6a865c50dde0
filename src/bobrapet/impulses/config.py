"""Reading an Impulse's ``spec.with`` into a runtime's typed configuration.

Invariants: :class:`ImpulseFatalError` (and its :class:`ImpulseConfigError`) is the one error
a runtime raises that its supervisor does not answer with a restart. :func:`parse_config`
either returns a fully validated model or raises :class:`ImpulseConfigError` listing every
offending field as ``spec.with.<path>`` with the fix (unknown fields are refused with the
closest valid name); it performs no I/O. Broker
URLs are checked for their scheme here; :func:`display_url` is the form of a URL that
logs and errors may show (no password).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from bobrapet.api.errors import Cause
from bobrapet.api.structural import validate_model
from bobrapet.api.types.base import WireModel

FIELD_PREFIX = "spec.with"

C = TypeVar("C", bound=WireModel)


class ImpulseFatalError(Exception):
    """The runtime cannot run as configured; restarting it cannot help (fix the resources)."""


class ImpulseConfigError(ImpulseFatalError, ValueError):
    """``spec.with`` cannot configure this impulse; the message names each field and the fix."""

    def __init__(self, impulse: str, causes: list[Cause]) -> None:
        self.causes = causes
        problems = "; ".join(f"{c.field}: {c.message}" if c.field else c.message for c in causes)
        super().__init__(f"{impulse} impulse: invalid {FIELD_PREFIX}: {problems}")


def parse_config(model: type[C], config: Mapping[str, Any] | None, impulse: str) -> C:
    """``config`` (an Impulse's ``spec.with``; ``None`` means empty) validated by ``model``."""
    data = dict(config) if config is not None else {}
    parsed, causes = validate_model(model, data)
    if parsed is None:
        raise ImpulseConfigError(impulse, [_prefixed(c) for c in causes])
    return parsed


def _prefixed(cause: Cause) -> Cause:
    field = f"{FIELD_PREFIX}.{cause.field}" if cause.field else FIELD_PREFIX
    return Cause(field, cause.message, cause.reason)


def check_url(url: str, schemes: tuple[str, ...], example: str) -> str:
    """``url`` if its scheme is one of ``schemes`` and it names a host (or a socket path)."""
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        allowed = ", ".join(f"{s}://" for s in schemes)
        raise ValueError(f"must be a URL starting with {allowed} (e.g. {example}), got {display_url(url)!r}")
    if not parts.hostname and not parts.path:
        raise ValueError(f"must name a host (e.g. {example}), got {display_url(url)!r}")
    return url


def display_url(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
