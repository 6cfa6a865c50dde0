"""``gate``: Paused until ``status.gates[<step>].state`` is Approved or Rejected.

Invariants (deliberate differences): a decision is acted on in the very next plan (status
writes wake the controller); without ``with.timeout`` the configured approval default
applies (``None`` waits forever); the timeout is measured from the persisted ``startedAt``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from bobrapet.api.conditions import Reason
from bobrapet.engine.primitives.common import ConfigProblem, duration, handle_timeout, on_timeout

if TYPE_CHECKING:
    from bobrapet.engine.context import Context
    from bobrapet.engine.dag import Node

WAITING: Final = "Waiting for gate decision."


def launch(ctx: Context, node: Node) -> None:
    ctx.set_state(node.name, "Paused", WAITING)
    refresh(ctx, node, ctx.states[node.name])


def _timeout(ctx: Context, node: Node) -> timedelta | None:
    explicit = duration(node, "timeout")
    if explicit is not None:
        return explicit
    default = ctx.config.approval_default_timeout
    return timedelta(seconds=default) if default is not None and default > 0 else None


def refresh(ctx: Context, node: Node, state: Mapping[str, Any]) -> None:
    try:
        timeout = _timeout(ctx, node)
        poll = duration(node, "pollInterval")
        action = on_timeout(node)
    except ConfigProblem as exc:
        ctx.set_state(node.name, "Failed", str(exc), reason=Reason.INVALID_CONFIGURATION)
        return
    gates = ctx.old_status.get("gates") or {}
    decision = gates.get(node.name) if isinstance(gates, Mapping) else None
    decision = decision if isinstance(decision, Mapping) else {}
    if decision.get("state") == "Approved":
        ctx.set_state(node.name, "Succeeded", str(decision.get("message") or "Gate approved."))
        return
    if decision.get("state") == "Rejected":
        ctx.set_state(node.name, "Failed", str(decision.get("message") or "Gate rejected."))
        return
    if handle_timeout(ctx, node, state, timeout, action):
        return
    if poll is not None:
        ctx.wake_in(poll.total_seconds())
