"""Adding and removing a controller's finalizer through a metadata update.

Both helpers are idempotent and return the stored object after the write (or the input
when nothing had to change). A stale ``resourceVersion`` raises ``Conflict``.

Adding goes through admission like any update. If admission now rejects the object (its
rules changed since it was stored), :func:`ensure_finalizer` logs the rejection and
returns the object unchanged: the status must still be written, and retrying an update
that admission rejects cannot succeed until the user edits the object (which triggers a
new reconcile anyway). Removal errors propagate: an object must not get stuck deleting.
"""

from __future__ import annotations

import logging

from bobrapet.api.errors import StatusError
from bobrapet.store.client import Client, Resource

log = logging.getLogger("bobrapet.controllers.finalizers")


def has_finalizer(obj: Resource, finalizer: str) -> bool:
    return finalizer in ((obj.get("metadata") or {}).get("finalizers") or [])


async def ensure_finalizer(client: Client, obj: Resource, finalizer: str) -> Resource:
    """Add ``finalizer`` unless present."""
    if has_finalizer(obj, finalizer):
        return obj
    metadata = dict(obj.get("metadata") or {})
    metadata["finalizers"] = [*(metadata.get("finalizers") or []), finalizer]
    try:
        return await client.update({**obj, "metadata": metadata})
    except StatusError as exc:
        if exc.reason not in ("Invalid", "BadRequest", "Forbidden"):
            raise
        log.warning(
            "cannot add finalizer %s to %s/%s: %s", finalizer, obj.get("kind"), metadata.get("name"), exc
        )
        return obj


async def remove_finalizer(client: Client, obj: Resource, finalizer: str) -> Resource:
    """Remove ``finalizer`` if present (the store deletes the object once none remain)."""
    if not has_finalizer(obj, finalizer):
        return obj
    metadata = dict(obj.get("metadata") or {})
    metadata["finalizers"] = [f for f in metadata.get("finalizers") or [] if f != finalizer]
    return await client.update({**obj, "metadata": metadata})
