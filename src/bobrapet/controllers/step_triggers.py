"""The engine's triggers port: the ``ctx.trigger_story`` calls of one StepRun attempt (§5.4).

:class:`StepRunTriggers` implements :class:`~bobrapet.execution.triggers.StepTriggers`; the
StepRun controller hands one to the executor with the attempt's request. A call is one
delivery through :func:`bobrapet.triggers.trigger_story`: a StoryTrigger in the StepRun's
namespace, decided by the StoryTrigger controller.

Invariants:

* the delivery policy is the step's environment's (:func:`bobrapet.triggers.policy_from_env`);
  the call's ``key`` is the delivery token (mode ``token``), over ``BUBU_TRIGGER_TOKEN``; the
  throttle (``BUBU_TRIGGER_THROTTLE_*``) is shared by the calls of one attempt, as the
  reference's is by the calls of one engram process;
* without a key or token (and not ``key`` mode), the submission id is
  :func:`derived_submission_id`: the StepRun's name and a hash of its uid, the Story, the
  canonical hash of the inputs and the call's index among identical calls of its attempt —
  so a retried attempt repeating a call gets the same trigger and run, and nothing else does;
* the trigger carries the provenance annotations (the StepRun and its StoryRun), which the
  StoryTrigger controller copies to the run; the run is not owned by the caller;
* oversized inputs are offloaded before the trigger is stored (the injected
  :class:`~bobrapet.triggers.OffloadInputs`), so ``inputHash`` covers the final inputs;
* every failure is a :class:`~bobrapet.execution.triggers.StepTriggerError`: rejections,
  unknown Stories, conflicting keys, bad policies and refused triggers are terminal; no
  decision in time and transient store errors are retryable.
"""

from __future__ import annotations

import hashlib

from bobrapet.api.admission.identity import canonical_input_hash
from bobrapet.api.errors import StatusError
from bobrapet.api.runmeta import TRIGGERED_BY_STEPRUN, TRIGGERED_BY_STORYRUN, story_run_of
from bobrapet.execution.triggers import StepTriggerError, TriggerAnswer, TriggerCall
from bobrapet.runtime.clock import Clock
from bobrapet.sdk.triggers import FAILED, NOT_FOUND, PENDING, REJECTED
from bobrapet.store.client import Client, Resource
from bobrapet.triggers import (
    DeliveryOptions,
    OffloadInputs,
    StillPending,
    StoryNotFound,
    Throttle,
    ThrottlePolicy,
    TriggerError,
    TriggerRejected,
    TriggerRequest,
    is_retryable,
    policy_from_env,
    trigger_story,
)

__all__ = ["StepRunTriggers", "derived_submission_id"]

_MAX_PREFIX = 200


def derived_submission_id(
    step_run: str, uid: str, story_namespace: str, story: str, inputs: object, call: int
) -> str:
    """``<stepRun>-<12 hex>``: the submission id of an un-keyed call (see the module invariants)."""
    material = f"{uid}\n{story_namespace}/{story}\n{canonical_input_hash(inputs)}\n{call}"
    digest = hashlib.sha256(material.encode()).hexdigest()[:12]
    return f"{step_run[:_MAX_PREFIX].rstrip('-')}-{digest}"


class StepRunTriggers:
    """The trigger calls of one attempt of one StepRun (a :class:`StepTriggers`)."""

    def __init__(
        self, client: Client, clock: Clock, step_run: Resource, offload_inputs: OffloadInputs | None = None
    ) -> None:
        metadata = step_run["metadata"]
        self._client = client
        self._clock = clock
        self._offload = offload_inputs
        self._namespace = str(metadata.get("namespace") or "default")
        self._name = str(metadata["name"])
        self._uid = str(metadata.get("uid") or "")
        self._story_run = story_run_of(step_run)
        #: The throttles of this attempt's calls, by policy.
        self._throttles: dict[ThrottlePolicy, Throttle] = {}

    def _throttle(self, policy: ThrottlePolicy) -> Throttle | None:
        if policy == ThrottlePolicy():
            return None
        if policy not in self._throttles:
            self._throttles[policy] = Throttle(policy, self._clock)
        return self._throttles[policy]

    def request(self, call: TriggerCall) -> tuple[TriggerRequest, DeliveryOptions]:
        """The delivery of ``call`` (:class:`~bobrapet.triggers.DeliveryError` for a bad policy)."""
        policy = policy_from_env(call.env)
        provenance = {TRIGGERED_BY_STEPRUN: self._name}
        if self._story_run:
            provenance[TRIGGERED_BY_STORYRUN] = self._story_run
        request = TriggerRequest(
            story=call.story,
            namespace=self._namespace,
            story_namespace=call.namespace,
            inputs=call.inputs,
            mode=policy.mode,
            token=call.key or policy.token,
            key_template=policy.key_template,
            annotations=provenance,
        )
        submission = derived_submission_id(
            self._name, self._uid, request.target_namespace, call.story, call.inputs, call.call
        )
        options = DeliveryOptions(
            retry=policy.retry,
            throttle=self._throttle(policy.throttle),
            decision_timeout=policy.decision_timeout if call.wait else None,
            offload_inputs=self._offload,
            clock=self._clock,
            new_id=lambda: submission,
        )
        return request, options

    async def trigger(self, call: TriggerCall) -> TriggerAnswer:
        try:
            request, options = self.request(call)
            outcome = await trigger_story(self._client, request, options)
        except TriggerRejected as err:
            raise StepTriggerError(str(err), kind=REJECTED, reason=err.reason) from None
        except StoryNotFound as err:
            raise StepTriggerError(str(err), kind=NOT_FOUND) from None
        except StillPending as err:
            raise StepTriggerError(str(err), kind=PENDING, terminal=False) from None
        except TriggerError as err:  # a conflicting key, a bad delivery policy
            raise StepTriggerError(str(err), kind=FAILED) from None
        except StatusError as err:  # admission refused the trigger, or the store failed
            raise StepTriggerError(
                f"the StoryTrigger for story {call.story!r} was not stored: {err.message}",
                kind=FAILED,
                terminal=not is_retryable(err),
            ) from None
        meta = outcome.trigger.get("metadata") or {}
        return TriggerAnswer(
            trigger=str(meta.get("name") or ""),
            namespace=str(meta.get("namespace") or self._namespace),
            decision=outcome.decision,
            story_run=outcome.story_run,
        )
