"""``wait``: Paused until ``with.until`` (a condition, bare or braced) is true.

Invariants: evaluation errors and ``Blocked`` count as false, except ``Blocked`` on a step
that will never produce output (unknown, finished, or downstream of the wait), which fails
the step ``ExpressionFailed`` instead of polling forever; the timeout is measured from
the persisted ``startedAt``; while waiting the run requeues at ``pollInterval`` (or the
base requeue delay) but never later than the timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from bobrapet.api.conditions import Reason
from bobrapet.engine.expressions import Blocked, TemplateError, blocked_forever, condition_true, forever_text
from bobrapet.engine.primitives.common import ConfigProblem, duration, handle_timeout, on_timeout, with_of

if TYPE_CHECKING:
    from bobrapet.engine.context import Context
    from bobrapet.engine.dag import Node

WAITING: Final = "Waiting for condition."
SATISFIED: Final = "Wait condition satisfied."


def launch(ctx: Context, node: Node) -> None:
    if not isinstance(with_of(node).get("until"), str) or not with_of(node)["until"].strip():
        ctx.set_state(
            node.name,
            "Failed",
            f"step '{node.name}' of type 'wait' requires 'with.until' to be set",
            reason=Reason.INVALID_CONFIGURATION,
        )
        return
    ctx.set_state(node.name, "Paused", WAITING)
    refresh(ctx, node, ctx.states[node.name])


def refresh(ctx: Context, node: Node, state: Mapping[str, Any]) -> None:
    try:
        timeout = duration(node, "timeout")
        poll = duration(node, "pollInterval")
        action = on_timeout(node)
    except ConfigProblem as exc:
        ctx.set_state(node.name, "Failed", str(exc), reason=Reason.INVALID_CONFIGURATION)
        return
    try:
        done = condition_true(ctx, str(with_of(node)["until"]))
    except Blocked as exc:
        if blocked_forever(ctx, node.name, exc):
            message = f"step '{node.name}': with.until cannot be evaluated: {forever_text(exc)}"
            ctx.set_state(node.name, "Failed", message, reason=Reason.EXPRESSION_FAILED)
            return
        done = False
    except TemplateError:
        done = False
    if done:
        ctx.set_state(node.name, "Succeeded", SATISFIED)
        return
    if handle_timeout(ctx, node, state, timeout, action):
        return
    ctx.wake_in(poll.total_seconds() if poll is not None else ctx.config.requeue_base_delay)
