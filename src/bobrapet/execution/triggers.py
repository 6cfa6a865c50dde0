"""The triggers port: where the ``ctx.trigger_story`` calls of an attempt go (reference §5.4).

An :class:`~bobrapet.execution.request.ExecutionRequest` may carry a :class:`StepTriggers`
bound to its StepRun (the engine's StoryTrigger submission, built by the controllers). An
executor forwards the engram's trigger calls to it with :func:`answer` and sends the reply
back; executors never touch the store themselves.

Invariants: :func:`answer` checks the call (story, inputs, key, namespace, call index) before
the port sees it; the port returns a :class:`TriggerAnswer` or raises :class:`StepTriggerError`
(``kind`` and ``terminal`` as the engram should see them); any other exception becomes a
retryable engine error; every call gets exactly one reply (the wire of
:mod:`bobrapet.sdk.triggers`). The port may wait for the controller's decision (up to its
timeout): an executor answers calls in background tasks, never holding up other frames.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bobrapet.sdk.triggers import ENV_VARIABLES, FAILED, check_request

log = logging.getLogger("bobrapet.execution.triggers")

__all__ = ["UNAVAILABLE", "StepTriggerError", "StepTriggers", "TriggerAnswer", "TriggerCall", "answer"]

#: The reply to every trigger call of a step that has no :class:`StepTriggers`.
UNAVAILABLE: Mapping[str, Any] = {
    "error": "triggering stories is not available for this step",
    "kind": FAILED,
    "terminal": True,
}


@dataclass(frozen=True)
class TriggerCall:
    """One ``ctx.trigger_story`` call, checked."""

    story: str
    inputs: dict[str, Any]
    #: The Story's namespace (None: the step's).
    namespace: str | None = None
    key: str | None = None
    wait: bool = True
    #: The call's index among the identical calls of its attempt (1, 2, ...).
    call: int = 1
    #: The step's ``BUBU_TRIGGER_*`` / ``BUBU_K8S_OPERATION_TIMEOUT`` variables.
    env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_wire(cls, frame: Mapping[str, Any]) -> TriggerCall:
        """The call of ``frame``; ``ValueError`` names what is wrong with it."""
        story, inputs, key, namespace = (frame.get(f) for f in ("story", "inputs", "triggerKey", "namespace"))
        check_request(story, inputs, key, namespace)
        call = frame.get("call", 1)
        if not isinstance(call, int) or isinstance(call, bool) or call < 1:
            raise ValueError(f"call must be an integer >= 1, got {call!r}")
        env = frame.get("env") or {}
        if not isinstance(env, Mapping):
            raise ValueError("env must be an object")
        return cls(
            story=str(story),
            inputs=dict(inputs or {}),
            namespace=namespace,
            key=key,
            wait=bool(frame.get("wait", True)),
            call=call,
            env={k: str(v) for k, v in env.items() if k in ENV_VARIABLES},
        )


@dataclass(frozen=True)
class TriggerAnswer:
    """A submitted (and, when asked, decided) trigger."""

    trigger: str
    namespace: str
    decision: str | None = None
    story_run: str | None = None

    def wire(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "namespace": self.namespace,
            "decision": self.decision,
            "storyRun": self.story_run,
        }


class StepTriggerError(Exception):
    """The call failed; ``kind`` is one of the wire's kinds (``Rejected``, ``StoryNotFound``,
    ``Pending``, ``Failed``), ``reason`` the controller's reason code of a rejection."""

    def __init__(self, message: str, *, kind: str = FAILED, terminal: bool = True, reason: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.terminal = terminal
        self.reason = reason

    def wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"error": str(self), "kind": self.kind, "terminal": self.terminal}
        if self.reason:
            wire["reason"] = self.reason
        return wire


class StepTriggers(Protocol):
    """The trigger calls of one attempt of one StepRun."""

    async def trigger(self, call: TriggerCall) -> TriggerAnswer: ...


async def answer(triggers: StepTriggers | None, frame: Mapping[str, Any]) -> dict[str, Any]:
    """The reply to one trigger call ``frame``."""
    if triggers is None:
        return dict(UNAVAILABLE)
    try:
        call = TriggerCall.from_wire(frame)
        return (await triggers.trigger(call)).wire()
    except ValueError as exc:
        return {"error": str(exc), "kind": FAILED, "terminal": True}
    except StepTriggerError as exc:
        return exc.wire()
    except Exception as exc:  # the engram sees it as a retryable failure of its step
        log.exception("trigger call for story %r failed", frame.get("story"))
        return {"error": f"engine error while triggering story {frame.get('story')!r}: {exc}", "kind": FAILED}
