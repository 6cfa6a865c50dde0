"""StoryTrigger controller (reference §5.3): decide what a stored trigger becomes.

A trigger whose ``status.decision`` is final (``Created``, ``Reused``, ``Rejected``) at its
current generation is left alone (seen in a small cached projection, without a store read:
every process start lists all triggers). Otherwise, in order:

1. the identity, inputs and name rules (:func:`~bobrapet.api.admission.storytrigger.identity_causes`)
   → ``Rejected``/``ValidationFailed``;
2. the Story must exist (``StoryNotFound``) and match a pinned version
   (``StoryVersionMismatch``); ``inputHash``, when set, must match the inputs
   (``InputHashMismatch``);
3. the StoryRun ``derive_story_run_name(storyNamespace, story, identity)`` is created in the
   trigger's namespace with ``storyRef``, ``impulseRef`` (so the Impulse counts the run) and
   ``inputs`` copied, the provenance annotations ``trigger-request-name``/``-uid`` (and the
   trigger's own :data:`~bobrapet.api.runmeta.TRIGGER_PROVENANCE` annotations: the StepRun
   of a ``ctx.trigger_story``) and, with a key, ``trigger-token``/``trigger-input-hash``
   → ``Created``/``StoryRunCreated``;
4. when that StoryRun exists already: same storyRef, impulseRef and input hash (the
   annotation when present) and created by this very trigger (name and uid) → ``Created``,
   "recovered" (a crash between the create and the status write); same request from someone
   else → ``Reused``/``StoryRunReused``; anything else → ``Rejected``/``StoryRunConflict``
   naming what differs;
5. StoryRun admission refuses the run → ``Rejected``: oversized inputs are offloaded through
   the injected :class:`~bobrapet.triggers.OffloadInputs` (to ``inputs/<storyRunName>/``)
   and the create tried again, or without one ``InputTooLarge`` with the limit and the fix;
   any other refusal ``ValidationFailed`` with admission's message (this includes the
   cross-namespace policy).

Input hashes: ``trigger-input-hash`` is always the hash of the trigger's inputs as stored in
the trigger (its ``inputHash``: over the submitter's final, possibly offloaded, inputs). A run
whose inputs this controller offloaded carries the annotation even without a key (so a
re-decision compares the request, not the references) and StoryRun admission accepts it by
hashing the hydrated inputs.

The decision, ``acceptedAt``/``completedAt``, ``storyRunRef`` and the Ready / Progressing /
Degraded conditions are written in one status write; a store error leaves the trigger
undecided and the reconcile is retried with back-off. Every step is safe to repeat: a
process killed anywhere leaves either no run (created on the next reconcile) or a run this
trigger made (recovered).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bobrapet.api import conditions
from bobrapet.api.admission.identity import canonical_input_hash, derive_story_run_name
from bobrapet.api.admission.storytrigger import (
    identity_causes,
    input_hash_problem,
    story_namespace,
    trigger_identity,
)
from bobrapet.api.conditions import Reason, TriggerReason
from bobrapet.api.errors import FIELD_VALUE_TOO_LONG, AlreadyExists, Invalid, NotFound
from bobrapet.api.kinds import STORY, STORY_RUN, STORY_TRIGGER
from bobrapet.api.runmeta import (
    TRIGGER_INPUT_HASH,
    TRIGGER_PROVENANCE,
    TRIGGER_REQUEST_NAME,
    TRIGGER_REQUEST_UID,
    TRIGGER_TOKEN,
)
from bobrapet.controllers import refs, settings
from bobrapet.controllers.status import generation, is_deleting, set_or_drop, status_copy, write_status
from bobrapet.runtime.controller import Controller
from bobrapet.runtime.manager import Manager
from bobrapet.runtime.request import Request, Result
from bobrapet.runtime.retry import retry_on_conflict
from bobrapet.store.client import Resource, WatchEvent
from bobrapet.triggers import OffloadInputs, decision_of
from bobrapet.triggers.compare import resolved_ref

NAME = "storytrigger"
#: ``status.message`` is at most this long (the CRD's limit).
MAX_MESSAGE = 4096
_INLINE_LIMIT_KEY = "storyrun.max-inline-inputs-size"


@dataclass(frozen=True)
class Decision:
    decision: str
    reason: str
    message: str
    run: Resource | None = None


def rejected(reason: str, message: str) -> Decision:
    return Decision("Rejected", reason, message)


def _key(obj: Resource) -> str:
    return f"{refs.namespace_of(obj)}/{refs.name_of(obj)}"


def desired_story_run(trigger: Resource) -> Resource:
    """The StoryRun ``trigger`` asks for (inputs as stored in the trigger)."""
    spec = refs.spec_of(trigger)
    namespace = refs.namespace_of(trigger)
    story = str((spec.get("storyRef") or {}).get("name"))
    identity = trigger_identity(spec)
    metadata = trigger.get("metadata") or {}
    own = metadata.get("annotations") or {}
    annotations = {name: str(own[name]) for name in TRIGGER_PROVENANCE if own.get(name)}
    annotations[TRIGGER_REQUEST_NAME] = refs.name_of(trigger)
    annotations[TRIGGER_REQUEST_UID] = str(metadata.get("uid") or "")
    key = (spec.get("deliveryIdentity") or {}).get("key")
    if key:
        annotations[TRIGGER_TOKEN] = str(key)
        annotations[TRIGGER_INPUT_HASH] = canonical_input_hash(spec.get("inputs"))
    run_spec: dict[str, Any] = {"storyRef": copy.deepcopy(spec["storyRef"])}
    for field in ("impulseRef", "inputs"):
        if spec.get(field) is not None:
            run_spec[field] = copy.deepcopy(spec[field])
    return {
        "apiVersion": STORY_RUN.api_version,
        "kind": STORY_RUN.kind,
        "metadata": {
            "name": derive_story_run_name(story_namespace(spec, namespace), story, identity),
            "namespace": namespace,
            "annotations": annotations,
        },
        "spec": run_spec,
    }


def _run_input_hash(run: Resource) -> str:
    annotations = (run.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(TRIGGER_INPUT_HASH) or canonical_input_hash(refs.spec_of(run).get("inputs")))


def run_differences(run: Resource, trigger: Resource) -> list[str]:
    """What differs between an existing StoryRun and the run ``trigger`` asks for."""
    run_spec, spec = refs.spec_of(run), refs.spec_of(trigger)
    run_ns, ns = refs.namespace_of(run), refs.namespace_of(trigger)
    differences: list[str] = []
    have_story = resolved_ref(run_spec.get("storyRef"), run_ns)
    want_story = resolved_ref(spec.get("storyRef"), ns)
    if (have_story or ())[:3] != (want_story or ())[:3]:  # the uid is not part of the request
        differences.append("spec.storyRef")
    if resolved_ref(run_spec.get("impulseRef"), run_ns) != resolved_ref(spec.get("impulseRef"), ns):
        differences.append("spec.impulseRef")
    if _run_input_hash(run) != canonical_input_hash(spec.get("inputs")):
        differences.append("spec.inputs")
    return differences


def made_by(run: Resource, trigger: Resource) -> bool:
    """Whether the provenance annotations of ``run`` name ``trigger`` (name and uid)."""
    annotations = (run.get("metadata") or {}).get("annotations") or {}
    uid = (trigger.get("metadata") or {}).get("uid")
    return (
        bool(uid)
        and annotations.get(TRIGGER_REQUEST_NAME) == refs.name_of(trigger)
        and (annotations.get(TRIGGER_REQUEST_UID) == uid)
    )


def too_long_cause(err: Invalid) -> str | None:
    """Admission's message when it refused the run for oversized ``spec.inputs``."""
    for cause in err.causes:
        if cause.reason == FIELD_VALUE_TOO_LONG and cause.field == "spec.inputs":
            return cause.message
    return None


def run_ref(run: Resource) -> dict[str, str]:
    meta = run.get("metadata") or {}
    ref = {"name": str(meta.get("name")), "namespace": str(meta.get("namespace") or "")}
    if meta.get("uid"):
        ref["uid"] = str(meta["uid"])
    return ref


def decided_status(trigger: Resource, decision: Decision, now: datetime) -> dict[str, Any]:
    """``trigger``'s status after ``decision`` (conditions follow the decision, §5.3 step 6)."""
    status = status_copy(trigger)
    gen = generation(trigger)
    stamp = conditions.format_time(now)
    message = decision.message[:MAX_MESSAGE]
    status.setdefault("acceptedAt", stamp)
    status["completedAt"] = stamp
    set_or_drop(status, "observedGeneration", gen)
    status.update(decision=decision.decision, reason=decision.reason, message=message)
    set_or_drop(status, "storyRunRef", run_ref(decision.run) if decision.run is not None else None)
    accepted = decision.decision != "Rejected"
    entries = status.setdefault("conditions", [])
    for type_, value in (
        (conditions.READY, accepted),
        (conditions.PROGRESSING, False),
        (conditions.DEGRADED, not accepted),
    ):
        conditions.set_condition(
            entries, type_, value, decision.reason, message, observed_generation=gen, now=now
        )
    return status


def _decision_view(trigger: Resource) -> Resource:
    """What the controller needs to know that a trigger is decided (a small cached projection)."""
    metadata = trigger.get("metadata") or {}
    status = trigger.get("status") or {}
    return {
        "metadata": {k: metadata.get(k) for k in ("generation", "deletionTimestamp")},
        "status": {k: status.get(k) for k in ("decision", "observedGeneration")},
    }


class StoryTriggerReconciler:
    def __init__(self, manager: Manager, offload_inputs: OffloadInputs | None = None) -> None:
        self.client = manager.client
        self.clock = manager.clock
        self.offload_inputs = offload_inputs
        #: Decided triggers are skipped without reading the store (every start lists them all).
        self.decisions = manager.projection(STORY_TRIGGER, "decisions", _decision_view)

    async def __call__(self, request: Request) -> Result:
        seen = self.decisions.get(request.name, request.namespace)
        if seen is not None and (is_deleting(seen) or decision_of(seen)):
            return Result()
        try:
            trigger = await self.client.get(STORY_TRIGGER, request.name, request.namespace)
        except NotFound:
            return Result()
        if is_deleting(trigger) or decision_of(trigger):
            return Result()
        decision = await self.decide(trigger)
        await self._record(trigger, decision)
        return Result()

    async def decide(self, trigger: Resource) -> Decision:
        spec = refs.spec_of(trigger)
        causes = identity_causes(spec, refs.name_of(trigger), refs.namespace_of(trigger))
        if causes:
            return rejected(Reason.VALIDATION_FAILED, "; ".join(f"{c.field}: {c.message}" for c in causes))
        ref = spec["storyRef"]
        story_ns = story_namespace(spec, refs.namespace_of(trigger))
        try:
            story = await self.client.get(STORY, str(ref["name"]), story_ns)
        except NotFound:
            message = f'referenced Story "{story_ns}/{ref["name"]}" was not found'
            return rejected(Reason.STORY_NOT_FOUND, message)
        pinned = str(ref.get("version") or "").strip()
        version = str(refs.spec_of(story).get("version") or "").strip()
        if pinned and pinned != version:
            return rejected(
                TriggerReason.STORY_VERSION_MISMATCH,
                f'referenced Story "{_key(story)}" has version "{version}", expected "{pinned}"',
            )
        problem = input_hash_problem(spec)
        if problem is not None:
            return rejected(TriggerReason.INPUT_HASH_MISMATCH, f"spec.deliveryIdentity.{problem}")
        return await self.create_run(trigger, desired_story_run(trigger))

    async def create_run(self, trigger: Resource, desired: Resource) -> Decision:
        try:
            created = await self._create(desired)
        except AlreadyExists:
            return await self.existing_run(trigger, await self.client.get(STORY_RUN, *_name_ns(desired)))
        except Invalid as err:
            return self._refused(desired, err)
        message = f'created StoryRun "{_key(desired)}"'
        return Decision("Created", TriggerReason.STORY_RUN_CREATED, message, created)

    async def _create(self, desired: Resource) -> Resource:
        try:
            return await self.client.create(desired)
        except Invalid as err:
            if self.offload_inputs is None or too_long_cause(err) is None:
                raise
            offload = self.offload_inputs
        name, namespace = _name_ns(desired)
        offloaded = copy.deepcopy(desired)
        inputs = desired["spec"]["inputs"]
        offloaded["spec"]["inputs"] = await offload(namespace, name, inputs)
        offloaded["metadata"]["annotations"].setdefault(TRIGGER_INPUT_HASH, canonical_input_hash(inputs))
        return await self.client.create(offloaded)

    def _refused(self, desired: Resource, err: Invalid) -> Decision:
        too_long = too_long_cause(err)
        if too_long is None:
            message = f"StoryRun admission rejected the request: {err.message}"
            return rejected(Reason.VALIDATION_FAILED, message)
        fix = (
            "even after offloading to storage"
            if self.offload_inputs is not None
            else "and no storage is configured to offload them"
        )
        return rejected(
            Reason.INPUT_TOO_LARGE,
            f'the inputs of StoryRun "{_key(desired)}" are too large to store inline {fix}: {too_long}. '
            f"Pass smaller inputs, or raise {_INLINE_LIMIT_KEY} "
            f"(`bobrapet config set {_INLINE_LIMIT_KEY} BYTES`)",
        )

    async def existing_run(self, trigger: Resource, run: Resource) -> Decision:
        differences = run_differences(run, trigger)
        if differences:
            return rejected(
                TriggerReason.STORY_RUN_CONFLICT,
                f'existing StoryRun "{_key(run)}" does not match StoryTrigger storyRef and inputs '
                f"({', '.join(differences)} differ)",
            )
        if made_by(run, trigger):
            message = f'recovered previously created StoryRun "{_key(run)}"'
            return Decision("Created", TriggerReason.STORY_RUN_CREATED, message, run)
        message = f'reused existing StoryRun "{_key(run)}"'
        return Decision("Reused", TriggerReason.STORY_RUN_REUSED, message, run)

    async def _record(self, trigger: Resource, decision: Decision) -> None:
        """Write the decision; on Conflict re-read, unless another process decided meanwhile."""
        fresh: list[Resource] = [trigger]

        async def write() -> None:
            current = fresh.pop() if fresh else await self._reread(trigger)
            if current is None or decision_of(current):
                return
            await write_status(self.client, current, decided_status(current, decision, self.clock.now()))

        await retry_on_conflict(write)

    async def _reread(self, trigger: Resource) -> Resource | None:
        try:
            current = await self.client.get(STORY_TRIGGER, *_name_ns(trigger))
        except NotFound:
            return None
        same = (current.get("metadata") or {}).get("uid") == (trigger.get("metadata") or {}).get("uid")
        return current if same else None


def _name_ns(obj: Resource) -> tuple[str, str]:
    return refs.name_of(obj), refs.namespace_of(obj)


def _undecided(event: WatchEvent) -> bool:
    return event.type != "DELETED" and decision_of(event.object) is None


def setup(manager: Manager, offload_inputs: OffloadInputs | None = None) -> Controller:
    """The StoryTrigger controller; ``offload_inputs`` moves oversized run inputs to storage."""
    s = settings.STORY_TRIGGER
    controller = Controller(
        NAME,
        STORY_TRIGGER,
        StoryTriggerReconciler(manager, offload_inputs),
        workers=s.workers,
        base_delay=s.base_delay,
        max_delay=s.max_delay,
        reconcile_timeout=s.reconcile_timeout,
        primary_predicate=_undecided,
    )
    return manager.add(controller)
