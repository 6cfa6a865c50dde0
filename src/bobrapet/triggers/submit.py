"""Submitting StoryTriggers: create-or-compare, and the whole delivery of one request.

Invariants:

* :func:`submit` creates the trigger; when one of the same (deterministic) name exists it
  is returned only if its immutable request is the same (:func:`.compare.request_differences`),
  otherwise :class:`~.errors.IdentityConflict` names what differs. Submitting the same
  trigger any number of times, concurrently or not, stores one trigger.
* :func:`trigger_story` builds the trigger once (one submission id), then — holding a
  throttle slot when given — submits it and waits for the decision, retrying transient
  failures under the retry policy; every retry submits the very same trigger, so retries
  never create a second one. A ``Rejected`` decision is :class:`~.errors.TriggerRejected`.
"""

from __future__ import annotations

import contextlib
import random as _random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from bobrapet.api.errors import AlreadyExists
from bobrapet.api.kinds import STORY_TRIGGER
from bobrapet.runtime.clock import Clock
from bobrapet.store.client import Client, Resource
from bobrapet.triggers.compare import request_differences
from bobrapet.triggers.errors import IdentityConflict, TriggerRejected
from bobrapet.triggers.offload import OffloadInputs
from bobrapet.triggers.request import TriggerRequest, build_trigger, new_submission_id
from bobrapet.triggers.retry import RetryPolicy, with_retries
from bobrapet.triggers.throttle import Permit, Throttle
from bobrapet.triggers.wait import DEFAULT_DECISION_TIMEOUT, decision_of, wait_for_decision


async def submit_once(client: Client, trigger: Resource, *, trusted: bool = False) -> Resource:
    """Create ``trigger``, or return the stored one when it is the same request (``trusted``:
    built by :func:`.request.build_trigger`, so admission's short path applies)."""
    meta = trigger["metadata"]
    try:
        return await client.create(trigger, trusted=trusted)
    except AlreadyExists:
        existing = await client.get(STORY_TRIGGER, meta["name"], meta["namespace"])
    differences = request_differences(existing, trigger)
    if differences:
        raise IdentityConflict(meta["name"], meta["namespace"], differences)
    return existing


async def submit(
    client: Client,
    trigger: Resource,
    *,
    retry: RetryPolicy | None = None,
    clock: Clock | None = None,
    random: Callable[[], float] = _random.random,
) -> Resource:
    """:func:`submit_once` under ``retry`` (transient store errors only)."""
    policy = retry or RetryPolicy()
    return await with_retries(lambda: submit_once(client, trigger), policy, clock=clock, random=random)


@dataclass(frozen=True)
class DeliveryOptions:
    """How :func:`trigger_story` delivers (the defaults: one attempt, no throttle, wait 30 s)."""

    #: Attempts and back-off for transient failures (``deliveryPolicy.retry``).
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: Shared by every delivery of one source (``Impulse.spec.throttle``).
    throttle: Throttle | None = None
    #: Seconds to wait for the controller's decision per attempt; ``None``: do not wait.
    decision_timeout: float | None = DEFAULT_DECISION_TIMEOUT
    #: Moves large inputs to storage before the trigger is stored (:mod:`.offload`).
    offload_inputs: OffloadInputs | None = None
    #: Time for back-off and the decision timeout (default: the real clock).
    clock: Clock | None = None
    #: ``() -> [0, 1)``: the jitter of the back-off.
    random: Callable[[], float] = _random.random
    #: The submission id of an un-keyed delivery (default: a random UUID).
    new_id: Callable[[], str] = new_submission_id


@dataclass(frozen=True)
class TriggerOutcome:
    """The outcome of :func:`trigger_story`."""

    #: The StoryTrigger as last read (decided unless ``decision_timeout`` was None).
    trigger: Resource
    #: ``Created`` or ``Reused``; None when the decision was not awaited.
    decision: str | None
    #: Name of the StoryRun created or reused (same namespace as the trigger), if decided.
    story_run: str | None
    #: The throttle made this delivery wait.
    throttled: bool


@contextlib.asynccontextmanager
async def _slot(throttle: Throttle | None) -> AsyncIterator[Permit]:
    if throttle is None:
        yield Permit(False)
        return
    async with throttle.slot() as permit:
        yield permit


async def trigger_story(
    client: Client, request: TriggerRequest, options: DeliveryOptions | None = None
) -> TriggerOutcome:
    """Deliver ``request``: build, submit, wait for the decision (see the module invariants)."""
    options = options or DeliveryOptions()
    submission_id = options.new_id()

    async def attempt() -> Resource:
        trigger = await build_trigger(
            client, request, submission_id=submission_id, offload_inputs=options.offload_inputs
        )
        stored = await submit_once(client, trigger, trusted=True)
        if options.decision_timeout is None or decision_of(stored):
            return stored
        meta = stored["metadata"]
        return await wait_for_decision(
            client, meta["namespace"], meta["name"], timeout=options.decision_timeout, clock=options.clock
        )

    async with _slot(options.throttle) as permit:
        trigger = await with_retries(attempt, options.retry, clock=options.clock, random=options.random)
    decision = decision_of(trigger)
    if decision == "Rejected":
        raise TriggerRejected(trigger)
    run = ((trigger.get("status") or {}).get("storyRunRef") or {}).get("name") if decision else None
    return TriggerOutcome(trigger, decision, run, permit.waited)
