"""``sleep``: Paused until ``startedAt + duration``, then Succeeded.

Invariant: the deadline is derived from the persisted ``stepStates[step].startedAt``, so it
survives restarts without extra annotations; the run requeues after exactly the remaining
time. A zero or absent duration succeeds at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from bobrapet.api.conditions import Reason
from bobrapet.api.durations import format_duration
from bobrapet.engine.primitives.common import ConfigProblem, duration

if TYPE_CHECKING:
    from bobrapet.engine.context import Context
    from bobrapet.engine.dag import Node

DONE_MESSAGE: Final = "Sleep completed."


def _length(ctx: Context, node: Node) -> timedelta | None:
    try:
        return duration(node, "duration", positive=False) or timedelta(0)
    except ConfigProblem as exc:
        ctx.set_state(node.name, "Failed", str(exc), reason=Reason.INVALID_CONFIGURATION)
        return None


def launch(ctx: Context, node: Node) -> None:
    length = _length(ctx, node)
    if length is None:
        return
    if length <= timedelta(0):
        ctx.set_state(node.name, "Succeeded", DONE_MESSAGE)
        return
    ctx.set_state(node.name, "Paused", f"Sleeping for {format_duration(length)}.")
    refresh(ctx, node, ctx.states[node.name])


def refresh(ctx: Context, node: Node, state: Mapping[str, Any]) -> None:
    length = _length(ctx, node)
    if length is None:
        return
    deadline = ctx.started_at(state) + length
    if ctx.now >= deadline:
        ctx.set_state(node.name, "Succeeded", DONE_MESSAGE)
    else:
        ctx.wake_at(deadline)
