"""``stop``: ends the run with the given phase and message (deliberate difference).

Invariants: the stop step's own state carries the phase and message; the phases module
then Skips not-started main steps and cancels running ones, compensations are skipped,
``finally`` still runs, and the run finishes with the stop's phase and message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from bobrapet.api.conditions import Reason
from bobrapet.engine.primitives.common import with_of

if TYPE_CHECKING:
    from bobrapet.engine.context import Context
    from bobrapet.engine.dag import Node

STOP_PHASES: Final = frozenset({"Succeeded", "Failed", "Canceled", "Finished", "Aborted", "Timeout"})


def launch(ctx: Context, node: Node) -> None:
    w = with_of(node)
    phase = str(w.get("phase") or "Succeeded")
    if phase not in STOP_PHASES:
        ctx.set_state(
            node.name,
            "Failed",
            f"step '{node.name}' of type 'stop': with.phase must be one of {', '.join(sorted(STOP_PHASES))}",
            reason=Reason.INVALID_CONFIGURATION,
        )
        return
    message = w.get("message") or f"Story execution stopped by step '{node.name}' with phase '{phase}'"
    ctx.set_state(node.name, phase, str(message))


def refresh(ctx: Context, node: Node, state: Mapping[str, Any]) -> None:
    launch(ctx, node)


def stopped_by(ctx: Context, node: Node) -> bool:
    """Whether ``node`` is a stop step that has taken effect."""
    if node.kind != "stop":
        return False
    state = ctx.states.get(node.name)
    return state is not None and state.get("phase") in STOP_PHASES and state.get("reason") is None
