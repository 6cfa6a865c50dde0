"""Turning API errors into messages that point at the file, document, line and field."""

from __future__ import annotations

from bobrapet.api.errors import StatusError
from bobrapet.api.manifest import Document


class UsageError(Exception):
    """Bad command-line usage (exit code 2)."""


def format_status_error(err: StatusError, doc: Document | None = None) -> list[str]:
    """Lines describing ``err``; field causes carry the line/column when known."""
    head = err.message.split(": ", 1)[0] if err.causes else err.message
    if err.causes and err.kind:
        head = f'{err.kind} "{err.name}" is invalid' if err.name else f"{err.kind} is invalid"
    lines = [f"error: {doc.where()}: {head}" if doc else f"error: {head}"]
    for cause in err.causes:
        where = ""
        if doc is not None and cause.field:
            pos = doc.position_of(cause.field)
            if pos is not None:
                where = f" (line {pos[0]}, column {pos[1]})"
        field = cause.field or "<object>"
        lines.append(f"  {field}{where}: {cause.message}")
    return lines
