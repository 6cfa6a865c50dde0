"""Adding and removing a controller's finalizer through a metadata update.

Both helpers are idempotent and return the stored object after the write (or the input
when nothing had to change). A stale ``resourceVersion`` raises ``Conflict``.
"""

from __future__ import annotations

from bobrapet.store.client import Client, Resource


def has_finalizer(obj: Resource, finalizer: str) -> bool:
    return finalizer in ((obj.get("metadata") or {}).get("finalizers") or [])


async def ensure_finalizer(client: Client, obj: Resource, finalizer: str) -> Resource:
    """Add ``finalizer`` unless present."""
    if has_finalizer(obj, finalizer):
        return obj
    metadata = dict(obj.get("metadata") or {})
    metadata["finalizers"] = [*(metadata.get("finalizers") or []), finalizer]
    return await client.update({**obj, "metadata": metadata})


async def remove_finalizer(client: Client, obj: Resource, finalizer: str) -> Resource:
    """Remove ``finalizer`` if present (the store deletes the object once none remain)."""
    if not has_finalizer(obj, finalizer):
        return obj
    metadata = dict(obj.get("metadata") or {})
    metadata["finalizers"] = [f for f in metadata.get("finalizers") or [] if f != finalizer]
    return await client.update({**obj, "metadata": metadata})
