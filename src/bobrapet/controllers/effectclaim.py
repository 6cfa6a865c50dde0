"""EffectClaim controller (reference §6.3).

Deletes claims that can no longer mean anything: a ``stepRunRef`` in another namespace, a
StepRun that does not exist (a cache miss is double-checked with a store read) or whose uid
differs from ``stepRunRef.uid``. Otherwise it makes sure the claim has an owner reference
(not a controller reference) to its StepRun, so the claim is deleted with it, and writes the
status: ``phase`` from ``completionStatus`` (completed → Completed, released → Released,
abandoned → Abandoned, none → Reserved) with Ready/Progressing/Degraded conditions
(:func:`bobrapet.engine.claim_status`). The claim's ``spec`` belongs to whoever performs the
effect (:mod:`bobrapet.controllers.effects`); this controller only adds the owner reference.

Watches: EffectClaims (a change of completion, holder, owners or deletion) and StepRuns
(deleted → the claims naming them, by an index on ``(namespace, stepRunRef.name)``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable
from typing import Any

from bobrapet.api.errors import NotFound
from bobrapet.api.kinds import EFFECT_CLAIM, STEP_RUN
from bobrapet.controllers import indexes, refs, settings
from bobrapet.controllers.status import is_deleting, write_status
from bobrapet.engine import claim_status
from bobrapet.runtime.cache import ObjectCache
from bobrapet.runtime.controller import Controller
from bobrapet.runtime.manager import Manager
from bobrapet.runtime.request import Request, Result
from bobrapet.runtime.retry import retry_on_conflict
from bobrapet.runtime.watches import Watch, changed, event_types, index_mapper
from bobrapet.store.client import Resource

NAME = "effectclaim"
BY_STEP_RUN = "by-steprun"


def _step_run_ref(claim: Resource) -> dict[str, Any]:
    ref = refs.spec_of(claim).get("stepRunRef")
    return ref if isinstance(ref, dict) else {}


def _by_step_run(claim: Resource) -> list[Hashable]:
    name = _step_run_ref(claim).get("name")
    return [(refs.namespace_of(claim), name)] if name else []


def claims(manager: Manager) -> ObjectCache:
    cache = manager.cache(EFFECT_CLAIM)
    cache.add_index(BY_STEP_RUN, _by_step_run)
    return cache


def _owner_reference(step_run: Resource) -> dict[str, Any]:
    metadata = step_run["metadata"]
    return {
        "apiVersion": STEP_RUN.api_version,
        "kind": STEP_RUN.kind,
        "name": metadata["name"],
        "uid": metadata["uid"],
    }


def _trigger(claim: Resource) -> Hashable:
    spec = refs.spec_of(claim)
    metadata = claim.get("metadata") or {}
    owners = tuple(str(o.get("uid")) for o in metadata.get("ownerReferences") or () if isinstance(o, dict))
    status = claim.get("status") or {}
    return (
        spec.get("completionStatus"),
        spec.get("holderIdentity"),
        owners,
        is_deleting(claim),
        status.get("phase"),
    )


class EffectClaimReconciler:
    def __init__(self, manager: Manager) -> None:
        self.client = manager.client
        self.clock = manager.clock
        self.step_runs = indexes.step_runs(manager)

    async def __call__(self, request: Request) -> Result:
        return await retry_on_conflict(lambda: self._reconcile(request))

    async def _reconcile(self, request: Request) -> Result:
        try:
            claim = await self.client.get(EFFECT_CLAIM, request.name, request.namespace)
        except NotFound:
            return Result()
        if is_deleting(claim):
            return Result()
        step_run = await self._step_run_of(claim)
        if step_run is None:
            await self._delete(claim)
            return Result()
        uid = step_run["metadata"].get("uid")
        metadata = claim["metadata"]
        owners = [o for o in metadata.get("ownerReferences") or () if isinstance(o, dict)]
        if uid and not any(o.get("uid") == uid for o in owners):
            claim = await self.client.update(
                {**claim, "metadata": {**metadata, "ownerReferences": [*owners, _owner_reference(step_run)]}}
            )
        await write_status(self.client, claim, claim_status(claim, self.clock.now()))
        return Result()

    async def _step_run_of(self, claim: Resource) -> Resource | None:
        """The claim's StepRun (``None``: it has none any more: other namespace, gone, other uid)."""
        ref = _step_run_ref(claim)
        namespace = refs.namespace_of(claim)
        name = ref.get("name")
        if not name or (ref.get("namespace") or namespace) != namespace:
            return None
        step_run = self.step_runs.get(str(name), namespace)
        if step_run is None:  # the cache may not have seen it yet: ask the store
            try:
                step_run = await self.client.get(STEP_RUN, str(name), namespace)
            except NotFound:
                return None
        if ref.get("uid") and step_run["metadata"].get("uid") != ref.get("uid"):
            return None
        return step_run

    async def _delete(self, claim: Resource) -> None:
        metadata = claim["metadata"]
        with contextlib.suppress(NotFound):
            await self.client.delete(EFFECT_CLAIM, metadata["name"], metadata.get("namespace"))


def setup(manager: Manager) -> Controller:
    reconciler = EffectClaimReconciler(manager)
    step_run_watch = Watch(
        STEP_RUN,
        index_mapper(claims(manager), BY_STEP_RUN, lambda s: [(refs.namespace_of(s), refs.name_of(s))]),
        event_types("DELETED"),
    )
    s = settings.EFFECT_CLAIM
    controller = Controller(
        NAME,
        EFFECT_CLAIM,
        reconciler,
        workers=s.workers,
        base_delay=s.base_delay,
        max_delay=s.max_delay,
        reconcile_timeout=s.reconcile_timeout,
        watches=[step_run_watch],
        primary_predicate=changed(_trigger),
    )
    return manager.add(controller)
