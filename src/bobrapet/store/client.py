"""The one Client protocol every controller talks to (DESIGN contract 2).

Objects travel as plain JSON-shaped dicts in their wire form (camelCase,
``apiVersion``/``kind``/``metadata``/``spec``/``status``). Backends: the
embedded SQLite store (``bobrapet.store.sqlite``) and, later, the Kubernetes API.
All errors are :class:`bobrapet.api.errors.StatusError` subclasses.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from bobrapet.api.kinds import Kind

Resource = dict[str, Any]
EventType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(frozen=True)
class WatchEvent:
    type: EventType
    object: Resource


class Client(Protocol):
    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> Resource:
        """Return the object or raise NotFound."""
        ...

    async def list(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        labels: str | None = None,
        fields: str | None = None,
    ) -> builtins.list[Resource]:
        """Objects of ``kind`` (all namespaces when ``namespace`` is None).

        ``labels``/``fields`` are Kubernetes selector strings
        (``app=x,tier!=db,env in (a,b),!legacy``; ``spec.stepId=a,status.phase!=Failed``).
        """
        ...

    async def create(
        self,
        obj: Resource,
        *,
        dry_run: bool = False,
        warnings: builtins.list[str] | None = None,
        trusted: bool = False,
        status: Resource | None = None,
    ) -> Resource:
        """Admit and store a new object (AlreadyExists, Invalid).

        Admission warnings are appended to ``warnings`` when a list is given.
        ``dry_run`` admits and returns the would-be object without storing it.
        ``trusted``: the engine built ``obj`` from admitted objects (a StepRun of an admitted
        Story); a backend that admits objects itself may then skip the checks that cannot
        fail for such an object (``bobrapet.api.admission.trusted``). Only controllers pass
        it, for the children they create; user input (manifests, the HTTP API) never does.
        A backend without that short path admits the object fully.
        ``status`` (trusted creates only): the new object's status, stored with it — the
        engine claims a StepRun as it creates it. A backend whose API drops the status of a
        new object (Kubernetes) writes it with a status update right after the create.
        """
        ...

    async def update(
        self, obj: Resource, *, dry_run: bool = False, warnings: builtins.list[str] | None = None
    ) -> Resource:
        """Replace spec/metadata; status is ignored. Conflict on stale resourceVersion."""
        ...

    async def update_status(self, obj: Resource) -> Resource:
        """Replace status only (status subresource). Conflict on stale resourceVersion."""
        ...

    async def patch_status(self, obj: Resource, base: Any) -> Resource:
        """Replace status only, given that the stored status is ``base`` (the status at
        ``obj``'s resourceVersion): a backend may send and store only the difference (a
        merge patch). Conflict on stale resourceVersion, as :meth:`update_status`."""
        ...

    async def delete(self, kind: Kind, name: str, namespace: str | None = None) -> None:
        """Delete (or mark deleting when finalizers remain); cascades to owned objects."""
        ...

    def watch(
        self, kind: Kind, namespace: str | None = None, since: str | None = None
    ) -> AsyncIterator[WatchEvent]:
        """Events after resourceVersion ``since`` (or from now), across processes."""
        ...
