"""Exit-code classification of a failed step execution (reference §4.4 step 8).

Invariants: :func:`classify_exit` is total (every integer maps to one class) and follows the
reference table: ``0`` success, ``-1`` (unknown exit) unknown, ``429`` rateLimited,
``124``/``137``/``143`` and ``128-255`` retry, everything else terminal. Only the classes
``retry``, ``rateLimited`` and ``unknown`` may be retried.
"""

from __future__ import annotations

from typing import Final

from bobrapet.api.types.enums import EXIT_CLASSES, ExitClass

#: Exit code of a step that ran out of time (the SDK and the executors use it).
TIMEOUT_EXIT_CODE: Final = 124
#: Exit code when the process result is not known (no exit status observed).
UNKNOWN_EXIT_CODE: Final = -1
#: Exit code the SDK uses for an ordinary error.
ERROR_EXIT_CODE: Final = 1

_RETRYABLE: Final = frozenset({"retry", "rateLimited", "unknown"})
_VALID: Final = frozenset(EXIT_CLASSES)


def classify_exit(exit_code: int) -> ExitClass:
    """The exit class of ``exit_code``."""
    if exit_code == 0:
        return "success"
    if exit_code == UNKNOWN_EXIT_CODE:
        return "unknown"
    if exit_code == 429:
        return "rateLimited"
    if exit_code in (TIMEOUT_EXIT_CODE, 137, 143) or 128 <= exit_code <= 255:
        return "retry"
    return "terminal"


def is_retryable(exit_class: str) -> bool:
    """Whether a failure of ``exit_class`` may be retried."""
    return exit_class in _RETRYABLE


def is_exit_class(value: object) -> bool:
    """Whether ``value`` is one of the exit-class strings."""
    return isinstance(value, str) and value in _VALID
