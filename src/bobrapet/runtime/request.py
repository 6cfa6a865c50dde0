"""What a reconciler receives (:class:`Request`) and returns (:class:`Result`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class Request:
    """The key of one object: ``namespace`` is ``None`` for cluster-scoped kinds."""

    namespace: str | None
    name: str

    @classmethod
    def for_object(cls, obj: dict[str, Any]) -> Request:
        metadata = obj.get("metadata") or {}
        return cls(metadata.get("namespace") or None, str(metadata.get("name", "")))

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True)
class Result:
    """What to do with the key after a successful reconcile.

    ``requeue_after`` (seconds) queues the key again after that delay and resets its
    back-off; ``requeue`` queues it again through the rate limiter; neither means done.
    """

    requeue: bool = False
    requeue_after: float | None = None


DONE = Result()
