"""Kubernetes-shaped API errors.

Every error the store or admission raises is a :class:`StatusError` carrying a
``meta/v1`` ``Status`` body, so the embedded store, the webhook server and the
Kubernetes backend report failures identically. ``Invalid`` errors list one
:class:`Cause` per offending field (``field`` is a dotted/indexed path such as
``spec.steps[2].needs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bobrapet.api.kinds import ALL_KINDS

#: Cause reason of a value over a size limit (Kubernetes ``field.TooLong``): callers that can
#: shrink the value (offload it to storage) act on it.
FIELD_VALUE_TOO_LONG = "FieldValueTooLong"


@dataclass(frozen=True)
class Cause:
    """One field-level problem (``details.causes[]`` of a Status)."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


@dataclass
class StatusError(Exception):
    """An API error with a Kubernetes ``Status`` body."""

    message: str
    reason: str = "InternalError"
    code: int = 500
    kind: str | None = None
    name: str | None = None
    group: str | None = None
    causes: list[Cause] = field(default_factory=list)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    def __str__(self) -> str:
        return self.message

    def to_status(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.name is not None:
            details["name"] = self.name
        if self.group is not None:
            details["group"] = self.group
        if self.kind is not None:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            body["details"] = details
        return body

    @classmethod
    def from_status(cls, body: dict[str, Any]) -> StatusError:
        """Rebuild the matching subclass from a ``Status`` body."""
        details = body.get("details") or {}
        causes = [
            Cause(field=c.get("field", ""), message=c.get("message", ""), reason=c.get("reason", ""))
            for c in details.get("causes") or []
        ]
        reason = body.get("reason") or "InternalError"
        klass = _BY_REASON.get(reason, StatusError)
        err = klass.__new__(klass)
        StatusError.__init__(
            err,
            message=body.get("message", ""),
            reason=reason,
            code=int(body.get("code") or 500),
            kind=details.get("kind"),
            name=details.get("name"),
            group=details.get("group"),
            causes=causes,
        )
        return err


def _qualified(kind: str, group: str | None) -> str:
    """``stories.bubustack.io`` — the resource name Kubernetes puts in messages."""
    known = next((k for k in ALL_KINDS if k.kind == kind and (group is None or k.group == group)), None)
    if known is not None:
        return known.qualified_plural
    plural = kind.lower()
    return f"{plural}.{group}" if group else plural


class NotFound(StatusError):
    def __init__(self, kind: str, name: str, group: str | None = None) -> None:
        super().__init__(
            message=f'{_qualified(kind, group)} "{name}" not found',
            reason="NotFound",
            code=404,
            kind=kind,
            name=name,
            group=group,
        )


class AlreadyExists(StatusError):
    def __init__(self, kind: str, name: str, group: str | None = None) -> None:
        super().__init__(
            message=f'{_qualified(kind, group)} "{name}" already exists',
            reason="AlreadyExists",
            code=409,
            kind=kind,
            name=name,
            group=group,
        )


class Conflict(StatusError):
    def __init__(self, kind: str, name: str, detail: str, group: str | None = None) -> None:
        super().__init__(
            message=(f'Operation cannot be fulfilled on {_qualified(kind, group)} "{name}": {detail}'),
            reason="Conflict",
            code=409,
            kind=kind,
            name=name,
            group=group,
        )


class Invalid(StatusError):
    """``reason: Invalid`` with one cause per field problem."""

    def __init__(self, kind: str, name: str, causes: list[Cause], group: str | None = None) -> None:
        summary = "; ".join(f"{c.field}: {c.message}" if c.field else c.message for c in causes)
        super().__init__(
            message=f'{kind} "{name}" is invalid: {summary}',
            reason="Invalid",
            code=422,
            kind=kind,
            name=name,
            group=group,
            causes=list(causes),
        )


class BadRequest(StatusError):
    def __init__(self, message: str) -> None:
        super().__init__(message=message, reason="BadRequest", code=400)


class Forbidden(StatusError):
    def __init__(self, message: str, kind: str | None = None, name: str | None = None) -> None:
        super().__init__(message=message, reason="Forbidden", code=403, kind=kind, name=name)


_BY_REASON: dict[str, type[StatusError]] = {
    "NotFound": NotFound,
    "AlreadyExists": AlreadyExists,
    "Conflict": Conflict,
    "Invalid": Invalid,
    "BadRequest": BadRequest,
    "Forbidden": Forbidden,
}
