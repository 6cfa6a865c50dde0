"""StructuredError: the exception an engram raises to control how its failure is recorded.

Invariants: ``to_wire()`` returns a StructuredError v1 dict (reference §9.3) with only the
allowed camelCase keys (``version``, ``type``, ``message``, ``exitCode``, ``exitClass``,
``retryable``, ``code``, ``details``), a non-empty ``message``, and optional keys omitted when
unset. Constructor arguments are validated so a bad type/exitClass fails where it is raised.
Standard library only (imported by warm workers).
"""

from __future__ import annotations

from typing import Any

ERROR_TYPES = frozenset(
    {
        "timeout",
        "storage_error",
        "serialization_error",
        "validation_error",
        "initialization_error",
        "execution_error",
        "unknown",
    }
)
EXIT_CLASSES = frozenset({"success", "retry", "terminal", "rateLimited", "unknown"})


def error_wire(
    type: str,
    message: str,
    *,
    exit_code: int | None = None,
    exit_class: str | None = None,
    retryable: bool | None = None,
    code: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a StructuredError v1 wire dict; optional fields are omitted when None."""
    wire: dict[str, Any] = {"version": "v1", "type": type, "message": message or type}
    if exit_code is not None and exit_code >= 0:
        wire["exitCode"] = exit_code
    if exit_class is not None:
        wire["exitClass"] = exit_class
    if retryable is not None:
        wire["retryable"] = retryable
    if code is not None:
        wire["code"] = code
    if details is not None:
        wire["details"] = details
    return wire


class StructuredError(Exception):
    """Raise from an engram to choose the recorded error type, exit class and retryability.

    ``exit_class="terminal"`` disables retries of the step, ``"retry"`` allows them.
    """

    def __init__(
        self,
        message: str,
        type: str = "execution_error",
        exit_class: str | None = None,
        retryable: bool | None = None,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(message, str) or not message:
            raise ValueError("StructuredError message must be a non-empty string")
        if type not in ERROR_TYPES:
            raise ValueError(f"StructuredError type {type!r} is not one of {sorted(ERROR_TYPES)}")
        if exit_class is not None and exit_class not in EXIT_CLASSES:
            raise ValueError(
                f"StructuredError exit_class {exit_class!r} is not one of {sorted(EXIT_CLASSES)}"
            )
        if details is not None and not isinstance(details, dict):
            raise ValueError("StructuredError details must be a dict")
        super().__init__(message)
        self.message = message
        self.type = type
        self.exit_class = exit_class
        self.retryable = retryable
        self.code = code
        self.details = details

    def to_wire(self, exit_code: int = 1) -> dict[str, Any]:
        """The StructuredError v1 dict recorded in ``StepRun.status.error``."""
        return error_wire(
            self.type,
            self.message,
            exit_code=exit_code,
            exit_class=self.exit_class,
            retryable=self.retryable,
            code=self.code,
            details=self.details,
        )
