"""bobrapet.triggers: durable submission of StoryTriggers (reference §5.2 to §5.4).

Used by ``bobrapet trigger``, the impulses and the SDK's ``trigger_story``; the StoryTrigger
controller (:mod:`bobrapet.controllers.storytrigger`) decides what a stored trigger becomes.

The usual path is :func:`trigger_story` (build, submit, wait, with retries and an optional
throttle; :func:`policy_from_env` reads an SDK caller's delivery policy); its
pieces — :func:`build_trigger`, :func:`submit`, :func:`wait_for_decision` —
serve callers that drive the steps themselves (the CLI settles the controllers in-process
instead of waiting).
"""

from bobrapet.triggers.compare import request_differences
from bobrapet.triggers.env import EnvPolicy, policy_from_env
from bobrapet.triggers.errors import (
    DeliveryError,
    IdentityConflict,
    StillPending,
    StoryNotFound,
    TriggerError,
    TriggerRejected,
)
from bobrapet.triggers.key import key_variables, render_key
from bobrapet.triggers.offload import OffloadInputs
from bobrapet.triggers.request import (
    DeliveryMode,
    ImpulseRef,
    TriggerRequest,
    build_trigger,
    delivery_key,
    trigger_object,
)
from bobrapet.triggers.retry import RetryPolicy, is_retryable, retry_delay, with_retries
from bobrapet.triggers.submit import DeliveryOptions, TriggerOutcome, submit, submit_once, trigger_story
from bobrapet.triggers.throttle import Permit, Throttle, ThrottlePolicy
from bobrapet.triggers.tokenbucket import TokenBucket
from bobrapet.triggers.wait import DEFAULT_DECISION_TIMEOUT, decision_of, wait_for_decision

__all__ = [
    "DEFAULT_DECISION_TIMEOUT",
    "DeliveryError",
    "DeliveryMode",
    "DeliveryOptions",
    "EnvPolicy",
    "IdentityConflict",
    "ImpulseRef",
    "OffloadInputs",
    "Permit",
    "RetryPolicy",
    "StillPending",
    "StoryNotFound",
    "Throttle",
    "ThrottlePolicy",
    "TokenBucket",
    "TriggerError",
    "TriggerOutcome",
    "TriggerRejected",
    "TriggerRequest",
    "build_trigger",
    "decision_of",
    "delivery_key",
    "is_retryable",
    "key_variables",
    "policy_from_env",
    "render_key",
    "request_differences",
    "retry_delay",
    "submit",
    "submit_once",
    "trigger_object",
    "trigger_story",
    "wait_for_decision",
    "with_retries",
]
