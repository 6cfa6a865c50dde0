"""Status writes that happen only when something changed (DESIGN contract 5).

Controllers own ``status`` (except ``status.gates``, which users write): a reconcile starts
from a deep copy of the stored status, changes the fields it owns, and calls
:func:`write_status`, which writes through the status subresource only when the result
differs. Fields other writers own (SDK counters, gates) are carried over untouched because
the copy starts from the stored object. A stale ``resourceVersion`` raises ``Conflict``;
callers wrap the read-modify-write in :func:`bobrapet.runtime.retry.retry_on_conflict`.
"""

from __future__ import annotations

import copy
from typing import Any

from bobrapet.store.client import Client, Resource


def status_copy(obj: Resource) -> dict[str, Any]:
    """A deep copy of ``obj.status`` (``{}`` when absent) to modify."""
    status = obj.get("status")
    return copy.deepcopy(status) if isinstance(status, dict) else {}


def set_or_drop(status: dict[str, Any], key: str, value: Any) -> None:
    """``status[key] = value``, or remove the key when ``value`` is ``None``/empty list."""
    if value is None or (isinstance(value, list) and not value):
        status.pop(key, None)
    else:
        status[key] = value


async def write_status(client: Client, obj: Resource, status: dict[str, Any]) -> bool:
    """Write ``status`` for ``obj`` if it differs from the stored one; return whether written."""
    if (obj.get("status") or {}) == status:
        return False
    await client.update_status({**obj, "status": status})
    return True


def generation(obj: Resource) -> int | None:
    value = (obj.get("metadata") or {}).get("generation")
    return int(value) if isinstance(value, int) else None


def is_deleting(obj: Resource) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))
