"""The engine's effects port: the EffectClaims of one StepRun attempt (reference §6.2).

:class:`StepRunEffects` implements :class:`~bobrapet.execution.effects.StepEffects` for one
attempt; the StepRun controller hands one to the executor with the attempt's request, and
the executor forwards the engram's ``ctx.effect_once`` calls to it. The decisions are the
pure engine's (:func:`bobrapet.engine.decide_claim` and the claim writes beside it).

Invariants:

* every claim write is a compare-and-swap (create-if-absent, update with the resourceVersion
  read); ``AlreadyExists``/``Conflict`` mean someone else wrote: read again and decide again
  (at most :data:`MAX_CONFLICTS` times per call);
* the holder identity (:func:`holder_identity`: engine, attempt, a random token) is unique
  per attempt, so only the attempt that took a claim renews, completes or releases it;
* an effect recorded in ``StepRun.status.effects``, or whose claim is completed, is never
  performed again; a completed claim whose ``status.effects`` entry is missing (the engine
  stopped between the two writes) gets it on the next claim;
* ``status.effects`` is written only here, by read-modify-write with conflict retries; the
  attempt runner's status writes copy it over. The claim's ``status`` is the EffectClaim
  controller's.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from bobrapet.api.admission.identity import effect_claim_name
from bobrapet.api.errors import AlreadyExists, Conflict, NotFound
from bobrapet.api.kinds import EFFECT_CLAIM, STEP_RUN
from bobrapet.engine import (
    claim_completed,
    claim_released,
    claim_renewed,
    claim_taken_over,
    decide_claim,
    is_held_by,
    new_claim,
    record_effect,
    recorded_effect,
)
from bobrapet.execution.effects import ClaimAnswer, EffectClaimError
from bobrapet.runtime.clock import Clock
from bobrapet.runtime.retry import retry_on_conflict
from bobrapet.store.client import Client, Resource

__all__ = ["MAX_CONFLICTS", "StepRunEffects", "holder_identity"]

#: Concurrent writes tolerated per call before the engram is told to try again later.
MAX_CONFLICTS = 3
_MAX_HOLDER = 253


def holder_identity(engine: str, attempt: int) -> str:
    """``<engine id>/attempt-<n>/<token>``: who holds a claim (≤ 253 characters)."""
    return f"{engine}/attempt-{attempt}/{secrets.token_hex(4)}"[-_MAX_HOLDER:]


class StepRunEffects:
    """The EffectClaims of one attempt of one StepRun (a :class:`StepEffects`)."""

    def __init__(self, client: Client, clock: Clock, step_run: Resource, holder: str) -> None:
        metadata = step_run["metadata"]
        self._client = client
        self._clock = clock
        self._namespace = str(metadata.get("namespace") or "")
        self._name = str(metadata["name"])
        self._uid = metadata.get("uid")
        #: What a new claim needs of the StepRun (not the whole object: inputs may be large).
        self._identity: Resource = {
            "metadata": {"name": self._name, "namespace": self._namespace, "uid": self._uid},
            "spec": {"idempotencyKey": (step_run.get("spec") or {}).get("idempotencyKey")},
        }
        self.holder = holder
        #: Claims this attempt holds, as last written, by effect key.
        self._held: dict[str, Resource] = {}

    @property
    def _where(self) -> str:
        return f"StepRun {self._namespace}/{self._name}"

    # -- reads ----------------------------------------------------------------------------------
    async def _step_run(self) -> Resource:
        try:
            step_run = await self._client.get(STEP_RUN, self._name, self._namespace)
        except NotFound:
            raise EffectClaimError(f"{self._where} no longer exists", terminal=True) from None
        if self._uid and (step_run.get("metadata") or {}).get("uid") != self._uid:
            raise EffectClaimError(f"{self._where} was deleted and created again", terminal=True)
        return step_run

    async def _claim(self, key: str) -> Resource | None:
        try:
            return await self._client.get(
                EFFECT_CLAIM, effect_claim_name(self._namespace, self._name, key), self._namespace
            )
        except NotFound:
            return None

    # -- the port -------------------------------------------------------------------------------
    async def claim(self, key: str, lease_seconds: int) -> ClaimAnswer:
        for _ in range(MAX_CONFLICTS + 1):
            answer = await self._try_claim(key, lease_seconds)
            if answer is not None:
                return answer
        raise EffectClaimError(f"effect {key!r} of {self._where}: its claim kept changing; try again")

    async def _try_claim(self, key: str, lease_seconds: int) -> ClaimAnswer | None:
        """One read-decide-write round (``None``: someone else wrote meanwhile)."""
        step_run = await self._step_run()
        entry = recorded_effect(step_run.get("status"), key)
        if entry is not None:
            details = entry.get("details")
            return ClaimAnswer("done", details=dict(details) if isinstance(details, Mapping) else {})
        claim = await self._claim(key)
        now = self._clock.now()
        decision = decide_claim(claim, now)
        if decision.action in ("create", "takeover"):
            return ClaimAnswer("run") if await self._acquire(key, claim, lease_seconds, now) else None
        if decision.action == "skip":
            await self._record(key, decision.details or {})
            return ClaimAnswer("done", details=decision.details)
        if decision.action == "wait":
            return ClaimAnswer("wait", wait_seconds=decision.wait_seconds, holder=decision.holder)
        raise EffectClaimError(
            f"effect {key!r} of {self._where} was abandoned: it will not be performed", terminal=True
        )

    async def _acquire(self, key: str, claim: Resource | None, lease_seconds: int, now: datetime) -> bool:
        """Create the claim, or take ``claim`` over (False: a concurrent write won)."""
        try:
            if claim is None:
                body = new_claim(
                    step_run=self._identity, key=key, holder=self.holder, lease_seconds=lease_seconds, now=now
                )
                self._held[key] = await self._client.create(body)
            else:
                taken = claim_taken_over(claim, holder=self.holder, lease_seconds=lease_seconds, now=now)
                self._held[key] = await self._client.update(taken)
        except (AlreadyExists, Conflict):
            return False
        return True

    async def renew(self, key: str) -> bool:
        now = self._clock.now()
        return await self._update_held(key, lambda claim: claim_renewed(claim, now)) is not None

    async def complete(self, key: str, details: dict[str, Any]) -> None:
        now = self._clock.now()
        written = await self._update_held(key, lambda claim: claim_completed(claim, details, now))
        self._held.pop(key, None)
        if written is None:
            raise EffectClaimError(
                f"effect {key!r} of {self._where} was performed, but its claim had been taken over "
                "meanwhile (its lease expired): another attempt may perform it too"
            )
        await self._record(key, details)

    async def release(self, key: str) -> None:
        await self._update_held(key, claim_released)
        self._held.pop(key, None)

    # -- writes ---------------------------------------------------------------------------------
    async def _update_held(self, key: str, change: Callable[[Resource], Resource]) -> Resource | None:
        """Write ``change(claim)`` while this attempt holds the claim of ``key`` (``None``: it
        does not, or no longer does)."""
        claim = self._held.get(key)
        for _ in range(MAX_CONFLICTS + 1):
            if claim is None or not is_held_by(claim, self.holder):
                return None
            try:
                written = self._held[key] = await self._client.update(change(claim))
                return written
            except Conflict:
                claim = await self._claim(key)
        raise EffectClaimError(f"effect {key!r} of {self._where}: its claim kept changing; try again")

    async def _record(self, key: str, details: Mapping[str, Any]) -> None:
        """Append ``key`` to the StepRun's ``status.effects`` unless it is there already."""

        async def write() -> None:
            try:
                step_run = await self._client.get(STEP_RUN, self._name, self._namespace)
            except NotFound:
                return
            status = record_effect(step_run.get("status"), key, details, self._clock.now())
            if status is not None:
                await self._client.update_status({**step_run, "status": status})

        await retry_on_conflict(write, attempts=10)
