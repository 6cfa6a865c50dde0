"""``stop``: ends the run with the given phase and message (deliberate difference).

Invariants: the stop step's own state carries the phase, the message and reason ``Stopped``
(what marks it as having taken effect); the phases module
then Skips not-started main steps and cancels running ones, compensations are skipped,
``finally`` still runs, and the run finishes with the stop's phase and message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bobrapet.api.conditions import Reason
from bobrapet.api.phases import STOP_PHASES, StepReason
from bobrapet.engine.primitives.common import with_of

if TYPE_CHECKING:
    from bobrapet.engine.context import Context
    from bobrapet.engine.dag import Node


def launch(ctx: Context, node: Node) -> None:
    w = with_of(node)
    phase = str(w.get("phase") or "Succeeded")
    if phase not in STOP_PHASES:
        ctx.set_state(
            node.name,
            "Failed",
            f"step '{node.name}' of type 'stop': with.phase must be one of {', '.join(STOP_PHASES)}",
            reason=Reason.INVALID_CONFIGURATION,
        )
        return
    message = w.get("message") or f"Story execution stopped by step '{node.name}' with phase '{phase}'"
    ctx.set_state(node.name, phase, str(message), reason=StepReason.STOPPED)


def refresh(ctx: Context, node: Node, state: Mapping[str, Any]) -> None:
    launch(ctx, node)


def stopped_by(ctx: Context, node: Node) -> bool:
    """Whether ``node`` is a stop step that has taken effect (reason ``Stopped``)."""
    if node.kind != "stop":
        return False
    state = ctx.states.get(node.name)
    return state is not None and state.get("reason") == StepReason.STOPPED
