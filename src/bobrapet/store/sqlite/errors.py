"""SQLite failures as Kubernetes-shaped errors.

Invariant: no ``sqlite3.Error`` leaves the embedded store; callers (the CLI,
controllers, the informer) only ever see :class:`~bobrapet.api.errors.StatusError`.
A database kept locked by another process beyond the busy timeout is
``503 ServiceUnavailable`` (transient: retry); anything else (unreadable,
corrupt, read-only or full disk) is ``500 InternalError`` naming the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from bobrapet.api.errors import StatusError


def is_busy(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` means "another connection holds the lock" (worth retrying)."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def store_error(path: str, exc: sqlite3.Error) -> StatusError:
    """The StatusError reported for ``exc`` raised while using the database at ``path``."""
    if is_busy(exc):
        return StatusError(
            f"the store {path} is busy: another process kept it locked longer than the busy "
            "timeout; try again (if it persists, look for a hung bobrapet process using this "
            "state directory)",
            reason="ServiceUnavailable",
            code=503,
        )
    return StatusError(
        f"the store {path} cannot be used: {exc} (check that the state directory is writable, "
        "the disk is not full and the file is a bobrapet state database)",
        reason="InternalError",
        code=500,
    )


@contextmanager
def translated(path: str) -> Iterator[None]:
    """Re-raise any ``sqlite3.Error`` inside the block as :func:`store_error`."""
    try:
        yield
    except sqlite3.Error as exc:
        raise store_error(path, exc) from exc
