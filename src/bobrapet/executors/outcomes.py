"""Executor-side constructors of ``ExecutionResult`` for failures user code did not report.

Invariants: every failure carries a StructuredError v1 wire dict whose ``exitCode`` equals the
result's ``exit_code`` (omitted when unknown, -1); a process killed by signal N maps to
exit code 128+N with message "killed by signal N"; a timeout is phase Timeout, exit 124,
error type ``timeout``; a cancellation is phase Failed with message "canceled".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bobrapet.execution.request import ExecutionResult

TIMEOUT_EXIT_CODE = 124


def error_wire(type: str, message: str, exit_code: int, **extra: Any) -> dict[str, Any]:
    """A StructuredError v1 dict; ``extra`` keys (camelCase) are added when not None."""
    wire: dict[str, Any] = {"version": "v1", "type": type, "message": message or type}
    if exit_code >= 0:
        wire["exitCode"] = exit_code
    wire.update({k: v for k, v in extra.items() if v is not None})
    return wire


def exit_status(returncode: int | None) -> tuple[int, str]:
    """Map a ``Popen.returncode`` to (exit_code, human message)."""
    if returncode is None:
        return -1, "exited with an unknown status"
    if returncode < 0:
        return 128 - returncode, f"killed by signal {-returncode}"
    return returncode, f"exited with code {returncode}"


def failed(
    message: str,
    *,
    started_at: datetime,
    finished_at: datetime,
    exit_code: int = 1,
    error_type: str = "execution_error",
    signals: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> ExecutionResult:
    """A Failed result not raised by user code (exit_class stays None)."""
    return ExecutionResult(
        phase="Failed",
        output=None,
        exit_code=exit_code,
        exit_class=None,
        error=error_wire(error_type, message, exit_code, **extra),
        message=message,
        signals=signals or [],
        started_at=started_at,
        finished_at=finished_at,
    )


def timed_out(
    timeout: float,
    *,
    started_at: datetime,
    finished_at: datetime,
    signals: list[dict[str, Any]] | None = None,
) -> ExecutionResult:
    """The step ran longer than its timeout and was killed."""
    message = f"timed out after {timeout:g}s"
    return ExecutionResult(
        phase="Timeout",
        output=None,
        exit_code=TIMEOUT_EXIT_CODE,
        exit_class=None,
        error=error_wire("timeout", message, TIMEOUT_EXIT_CODE),
        message=message,
        signals=signals or [],
        started_at=started_at,
        finished_at=finished_at,
    )


def canceled(
    *,
    started_at: datetime,
    finished_at: datetime,
    exit_code: int = -1,
    signals: list[dict[str, Any]] | None = None,
) -> ExecutionResult:
    """The attempt was canceled by the engine (not retryable)."""
    return failed(
        "canceled",
        started_at=started_at,
        finished_at=finished_at,
        exit_code=exit_code,
        signals=signals,
        code="Canceled",
        retryable=False,
    )
