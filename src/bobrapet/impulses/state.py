"""An Impulse's durable runtime state (:class:`~bobrapet.impulses.context.ImpulseState`), kept
in one annotation of the Impulse itself.

Invariants: the state is the JSON object in annotation :data:`STATE_ANNOTATION`
(``bobrapet.bubustack.io/impulse-state``); :meth:`AnnotationState.save` returns only once the
Impulse update is stored (re-read and retried on conflict, so a concurrent spec or status
write is never lost) and changes nothing else of the object (metadata writes do not bump the
generation: the runtime is not restarted by its own saves); an unreadable annotation loads as
``None``. An Impulse deleted meanwhile makes ``save`` raise ``NotFound``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bobrapet.api.kinds import IMPULSE
from bobrapet.runtime.retry import retry_on_conflict
from bobrapet.store.client import Client

STATE_ANNOTATION = "bobrapet.bubustack.io/impulse-state"


class AnnotationState:
    """The state of Impulse ``namespace/name`` in its annotation."""

    def __init__(self, client: Client, namespace: str, name: str) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name

    async def load(self) -> Mapping[str, Any] | None:
        impulse = await self.client.get(IMPULSE, self.name, self.namespace)
        text = ((impulse.get("metadata") or {}).get("annotations") or {}).get(STATE_ANNOTATION)
        if not isinstance(text, str):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    async def save(self, state: Mapping[str, Any]) -> None:
        text = json.dumps(dict(state), separators=(",", ":"), sort_keys=True)

        async def write() -> None:
            impulse = await self.client.get(IMPULSE, self.name, self.namespace)
            metadata = impulse.setdefault("metadata", {})
            annotations = metadata.get("annotations") or {}
            if annotations.get(STATE_ANNOTATION) == text:
                return
            metadata["annotations"] = {**annotations, STATE_ANNOTATION: text}
            await self.client.update(impulse)

        await retry_on_conflict(write, attempts=16)
