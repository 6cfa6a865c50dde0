"""The effects port: where the ``ctx.effect_once`` claims of an attempt are kept (reference §6).

An :class:`~bobrapet.execution.request.ExecutionRequest` may carry a :class:`StepEffects`
bound to its StepRun and attempt (the engine's EffectClaims, built by the controllers).
An executor forwards the engram's effect calls to it with :func:`answer` and sends the reply
back; executors never touch the store themselves.

Invariants: ``claim`` does not wait for another holder — it answers ``wait`` with the seconds
until that holder's lease expires, and the engram asks again (so nothing waits in the engine
for a step that may be gone); ``renew``/``complete``/``release`` act only on a claim this
attempt holds; a failure the engram should see is an :class:`EffectClaimError`; every call
gets exactly one reply (the wire of :mod:`bobrapet.sdk.effects`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from bobrapet.sdk.effects import CLAIM, COMPLETE, RELEASE, RENEW, check_request, recorded_details

log = logging.getLogger("bobrapet.execution.effects")

__all__ = ["UNAVAILABLE", "ClaimAnswer", "EffectClaimError", "StepEffects", "answer"]

#: The reply to every effect call of a step that has no :class:`StepEffects`.
UNAVAILABLE: Mapping[str, Any] = {"error": "effect claims are not available for this step", "terminal": True}


@dataclass(frozen=True)
class ClaimAnswer:
    """``run``: this attempt now holds the claim; ``done``: performed before (``details``);
    ``wait``: ``holder`` holds a live lease for ``wait_seconds`` more."""

    decision: Literal["run", "done", "wait"]
    details: dict[str, Any] | None = None
    wait_seconds: float = 0.0
    holder: str | None = None

    def wire(self) -> dict[str, Any]:
        if self.decision == "done":
            return {"decision": "done", "details": self.details or {}}
        if self.decision == "wait":
            return {"decision": "wait", "waitSeconds": self.wait_seconds, "holder": self.holder}
        return {"decision": "run"}


class EffectClaimError(Exception):
    """The claim cannot be used; ``terminal``: no retry of the step can change that."""

    def __init__(self, message: str, *, terminal: bool = False) -> None:
        super().__init__(message)
        self.terminal = terminal


class StepEffects(Protocol):
    """The effect claims of one attempt of one StepRun."""

    async def claim(self, key: str, lease_seconds: int) -> ClaimAnswer: ...

    async def renew(self, key: str) -> bool: ...

    async def complete(self, key: str, details: dict[str, Any]) -> None: ...

    async def release(self, key: str) -> None: ...


async def answer(effects: StepEffects | None, frame: Mapping[str, Any]) -> dict[str, Any]:
    """The reply to one effect call ``frame`` (``action``, ``effectKey``...)."""
    if effects is None:
        return dict(UNAVAILABLE)
    action = frame.get("action")
    key = frame.get("effectKey")
    lease = frame.get("leaseSeconds", 1)
    try:
        check_request(key, lease)
        assert isinstance(key, str) and isinstance(lease, int)
        if action == CLAIM:
            return (await effects.claim(key, lease)).wire()
        if action == RENEW:
            return {"held": await effects.renew(key)}
        if action == COMPLETE:
            await effects.complete(key, recorded_details(frame.get("details")))
            return {}
        if action == RELEASE:
            await effects.release(key)
            return {}
        return {"error": f"unknown effect call {action!r}", "terminal": True}
    except ValueError as exc:
        return {"error": str(exc), "terminal": True}
    except EffectClaimError as exc:
        return {"error": str(exc), "terminal": exc.terminal}
    except Exception as exc:  # the engram sees it as a retryable failure of its step
        log.exception("effect call %s %r failed", action, key)
        return {"error": f"engine error during the effect {action}: {exc}"}
