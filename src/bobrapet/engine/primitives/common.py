"""Helpers shared by primitives: ``with`` access and duration parsing.

Invariants: ``onTimeout`` is case-insensitive (as admission accepts it); configuration
problems raise :class:`ConfigProblem` carrying the user-facing message; callers turn it
into a ``Failed`` step with reason ``InvalidConfiguration``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bobrapet.api.conditions import Reason
from bobrapet.api.durations import parse_duration

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bobrapet.engine.context import Context
    from bobrapet.engine.dag import Node


class ConfigProblem(Exception):
    pass


def with_of(node: Node) -> dict[str, Any]:
    value = node.step.with_
    return value if isinstance(value, dict) else {}


def duration(node: Node, key: str, *, positive: bool = True) -> timedelta | None:
    """``with.<key>`` as a duration; ``None`` when unset."""
    raw = with_of(node).get(key)
    if raw is None or raw == "":
        return None
    try:
        value = parse_duration(raw)
    except ValueError as exc:
        raise ConfigProblem(f"step '{node.name}' of type '{node.kind}': with.{key}: {exc}") from None
    if positive and value <= timedelta(0):
        raise ConfigProblem(
            f"step '{node.name}' of type '{node.kind}': with.{key} must be a positive duration"
        )
    return value


def on_timeout(node: Node) -> str:
    value = with_of(node).get("onTimeout") or "fail"
    value = value.lower() if isinstance(value, str) else value
    if value not in ("fail", "skip"):
        raise ConfigProblem(
            f"step '{node.name}' of type '{node.kind}': with.onTimeout must be 'fail' or 'skip'"
        )
    return str(value)


def handle_timeout(
    ctx: Context, node: Node, state: Mapping[str, Any], timeout: timedelta | None, action: str
) -> bool:
    """End a waiting ``wait``/``gate`` step whose ``timeout`` (from its persisted start) passed:
    ``Skipped`` with ``onTimeout: skip``, else ``Timeout``; return whether it ended. Otherwise
    wake the run at the deadline."""
    if timeout is None:
        return False
    deadline = ctx.started_at(state) + timeout
    if ctx.now < deadline:
        ctx.wake_at(deadline)
        return False
    if action == "skip":
        ctx.set_state(node.name, "Skipped", f"{node.kind} step timed out and was skipped.")
    else:
        ctx.set_state(node.name, "Timeout", f"{node.kind} step timed out.", reason=Reason.TIMED_OUT)
    return True
