"""From a delivery to a durable StoryTrigger: the glue every impulse kind shares.

A :class:`TriggerSink` belongs to one running Impulse. :meth:`TriggerSink.accept` turns a
:class:`~bobrapet.impulses.delivery.Delivery` into inputs (:mod:`.mapping`), picks the dedupe
token (the delivery key when the merged policy's mode is ``token``; ``key`` mode renders the
key template over the inputs) and submits the StoryTrigger through
:func:`bobrapet.triggers.trigger_story` with the Impulse's retry policy and throttle.
:meth:`TriggerSink.trigger` is the same from given inputs (user-written impulses).

Invariants:

* It returns only once the StoryTrigger is stored; the answer names the trigger, its
  decision when already made (``None`` while the controller has not decided) and the
  StoryRun (the decided one, else the deterministic name the controller will create).
* A delivery that can never become a trigger — no inputs can be built, the identity cannot
  be formed, the key is already used for other inputs, the trigger was rejected, admission
  refuses it — raises :class:`Refused` (an HTTP status and a message naming the fix) and
  stores nothing new; a missing Story is :class:`Refused` with 503 (it may come back); any
  other error (the store is unavailable after the retries) propagates, so a broker runtime
  leaves its message unacknowledged.
* As a :class:`~bobrapet.impulses.delivery.Deliver` (``await sink(delivery)``) refusals are
  logged and counted (``refusedDeliveries``) instead of raised: a broker acknowledges a
  message that can never succeed rather than redelivering it forever.
* A delivery the throttle delayed counts in ``throttledTriggers`` (batched by
  :class:`~.status.StatusBook`). With ``debug``, each
  trigger is logged as a truncated preview with secret values redacted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bobrapet.api.admission.identity import derive_story_run_name
from bobrapet.api.admission.storytrigger import story_namespace, trigger_identity
from bobrapet.api.errors import StatusError
from bobrapet.impulses.context import ImpulseContext
from bobrapet.impulses.delivery import Delivery
from bobrapet.impulses.mapping import InputMapping, MappingError
from bobrapet.impulses.policy import ImpulsePolicy
from bobrapet.impulses.status import StatusBook
from bobrapet.sdk.preview import preview
from bobrapet.sdk.redact import redact
from bobrapet.store.client import Client, Resource
from bobrapet.triggers import (
    DeliveryError,
    DeliveryOptions,
    IdentityConflict,
    ImpulseRef,
    OffloadInputs,
    StoryNotFound,
    Throttle,
    TriggerOutcome,
    TriggerRejected,
    TriggerRequest,
    trigger_story,
)


class Refused(Exception):
    """The delivery cannot become a StoryTrigger as it is (nothing new was stored)."""

    def __init__(self, message: str, *, code: int = 400, reason: str = "BadRequest") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason

    def status_error(self) -> StatusError:
        return StatusError(self.message, reason=self.reason, code=self.code)


@dataclass(frozen=True)
class Accepted:
    """A stored delivery: its StoryTrigger, the decision so far and the StoryRun."""

    namespace: str
    story_trigger: str
    decision: str | None
    story_run: str | None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "storyTrigger": self.story_trigger,
            "namespace": self.namespace,
            "decision": self.decision or "Pending",
            "storyRun": self.story_run,
        }
        if self.message:
            body["message"] = self.message
        return body


@dataclass(frozen=True)
class ImpulseTarget:
    """Who submits (the Impulse) and what it starts (its Story)."""

    namespace: str
    name: str
    story: str
    story_namespace: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


def _accepted(
    trigger: Resource, decision: str | None, run: str | None, message: str | None = None
) -> Accepted:
    meta = trigger.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default")
    if run is None and decision != "Rejected":
        spec = trigger.get("spec") or {}
        story = str((spec.get("storyRef") or {}).get("name") or "")
        run = derive_story_run_name(story_namespace(spec, namespace), story, trigger_identity(spec))
    return Accepted(namespace, str(meta.get("name")), decision, run, message)


@dataclass
class TriggerSink:
    """Stores the StoryTriggers of one Impulse (see the module docstring)."""

    client: Client
    target: ImpulseTarget
    policy: ImpulsePolicy
    mapping: InputMapping
    context: ImpulseContext
    status: StatusBook
    #: Where oversized inputs go (the home's storage); ``None``: they are rejected.
    offload_inputs: OffloadInputs | None = None
    throttle: Throttle = field(init=False)

    def __post_init__(self) -> None:
        self.throttle = Throttle(self.policy.throttle, self.context.clock)

    # -- Deliver (brokers, cron) ----------------------------------------------------------------
    async def __call__(self, delivery: Delivery, /) -> None:
        try:
            await self.accept(delivery)
        except Refused as refused:
            if refused.code >= 500:
                raise
            self.context.log.warning(
                "delivery %s refused: %s", delivery.key, redact(refused.message, self.context.redact_terms)
            )

    # -- one delivery ---------------------------------------------------------------------------
    def variables(self, delivery: Delivery, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What the mapping sees for ``delivery``."""
        variables: dict[str, Any] = {
            "body": delivery.body,
            "headers": dict(delivery.headers),
            "query": {},
            "key": delivery.key,
        }
        if extra:
            variables.update(extra)
        return variables

    async def accept(
        self, delivery: Delivery, extra: Mapping[str, Any] | None = None, *, key_hint: str = ""
    ) -> Accepted:
        """Store the StoryTrigger of ``delivery``; ``extra`` adds mapping variables, ``key_hint``
        says where a delivery key comes from (for the refusal of a delivery without one)."""
        try:
            inputs = self.mapping.inputs(self.variables(delivery, extra))
        except MappingError as exc:
            raise self._refuse(Refused(str(exc))) from None
        token = delivery.key if self.policy.mode == "token" else None
        if self.policy.mode == "token" and not token:
            hint = f"; {key_hint}" if key_hint else ""
            raise self._refuse(
                Refused(
                    "this Impulse deduplicates by delivery token (deliveryPolicy.dedupe.mode: token) "
                    f"but the delivery has no key{hint}"
                )
            )
        return await self.trigger(inputs, token)

    async def trigger(
        self, inputs: Mapping[str, Any], token: str | None, *, wait: float | None = None
    ) -> Accepted:
        """Store the StoryTrigger for ``inputs`` (``wait``: seconds to wait for the decision)."""
        target = self.target
        request = TriggerRequest(
            story=target.story,
            namespace=target.namespace,
            story_namespace=target.story_namespace,
            inputs=inputs,
            impulse=ImpulseRef(target.name, target.namespace),
            mode=self.policy.mode,
            token=token,
            key_template=self.policy.key_template,
        )
        options = DeliveryOptions(
            retry=self.policy.retry,
            throttle=self.throttle,
            decision_timeout=wait,
            clock=self.context.clock,
            offload_inputs=self.offload_inputs,
        )
        try:
            outcome = await trigger_story(self.client, request, options)
        except TriggerRejected as rejected:
            status = rejected.trigger.get("status") or {}
            return _accepted(rejected.trigger, "Rejected", None, str(status.get("message") or ""))
        except StoryNotFound as exc:
            raise self._refuse(Refused(f"{exc}; the Impulse cannot start runs until it exists", code=503,
                                       reason="ServiceUnavailable")) from None  # fmt: skip
        except IdentityConflict as exc:
            raise self._refuse(Refused(str(exc), code=409, reason="Conflict")) from None
        except DeliveryError as exc:
            raise self._refuse(Refused(str(exc))) from None
        except StatusError as exc:
            if exc.code not in (400, 422):
                raise
            raise self._refuse(Refused(exc.message, code=exc.code, reason=exc.reason)) from None
        self._count(outcome)
        accepted = _accepted(outcome.trigger, outcome.decision, outcome.story_run)
        if self.context.debug:
            self.context.log.info(
                "trigger storytrigger/%s (%s) -> storyrun/%s inputs=%s",
                accepted.story_trigger,
                accepted.decision or "Pending",
                accepted.story_run,
                preview(dict(inputs), terms=self.context.redact_terms),
            )
        return accepted

    def _count(self, outcome: TriggerOutcome) -> None:
        if outcome.throttled:
            self.status.throttled(self.target.key)

    def _refuse(self, refused: Refused) -> Refused:
        if refused.code < 500:
            self.status.refused(self.target.key)
        return refused
