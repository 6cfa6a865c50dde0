"""When a not-started step may start (reference §2.2-§2.4, with Bobrapet's differences).

Invariants, checked in this order once every same-block dependency is terminal
(dependencies in earlier blocks are always satisfied: those blocks have finished):

1. a dependency that failed (and does not allow failure), or was skipped because of a
   failure, Skips the step "Skipped due to failed dependency: <dep>" (reason
   ``DependencyFailed``);
2. a dependency that is a ``condition`` evaluated false (reason ``ConditionFalse``), or was
   skipped because of one (reason ``ConditionSkipped``), Skips the step "Skipped because
   condition '<c>' was false" (reason ``ConditionSkipped``);
3. the step's own ``if``: false → Skipped (no cascade, except for ``condition`` steps);
   ``Blocked`` on a step that may still finish → not ready yet; ``Blocked`` forever (see
   ``expressions.blocked_forever``) or any other evaluation error → Failed
   ``ExpressionFailed`` (the dependencies are done, so waiting could never help).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from bobrapet.api.conditions import Reason
from bobrapet.api.phases import OK_PHASES, StepReason
from bobrapet.engine.context import SKIPPED, is_terminal
from bobrapet.engine.expressions import TemplateError, condition_true, template_problem
from bobrapet.engine.primitives.condition import FALSE_MESSAGE

if TYPE_CHECKING:
    from bobrapet.engine.context import Context
    from bobrapet.engine.dag import Node

IF_FALSE: Final = "Skipped due to 'if' condition"


def failed(node: Node, state: Mapping[str, Any] | None) -> bool:
    """A terminal, unsuccessful state of a step that does not allow failure."""
    if state is None or not is_terminal(state) or state.get("phase") in OK_PHASES:
        return False
    return not node.step.allow_failure


def _condition_root(ctx: Context, dep: Node, state: Mapping[str, Any]) -> str | None:
    """The message of a condition cascade through ``dep`` (``None``: no cascade)."""
    if state.get("phase") != SKIPPED:
        return None
    reason = state.get("reason")
    if reason == StepReason.CONDITION_FALSE:
        return f"Skipped because condition '{dep.name}' was false"
    if reason == StepReason.CONDITION_SKIPPED:
        return str(state.get("message") or "")
    return None


def ready(ctx: Context, node: Node) -> bool:
    """Whether ``node`` can start now; may record a Skipped/Failed state instead."""
    nodes = ctx.graph.nodes
    same: list[tuple[Node, Mapping[str, Any]]] = []
    for dep_name in node.deps:
        dep = nodes[dep_name]
        if dep.block != node.block:
            continue
        state = ctx.states.get(dep_name)
        if state is None or not is_terminal(state):
            return False
        same.append((dep, state))
    for dep, dep_state in same:
        if failed(dep, dep_state) or (
            dep_state.get("phase") == SKIPPED and dep_state.get("reason") == Reason.DEPENDENCY_FAILED
        ):
            ctx.set_state(
                node.name,
                SKIPPED,
                f"Skipped due to failed dependency: {dep.name}",
                reason=Reason.DEPENDENCY_FAILED,
            )
            return False
    for dep, dep_state in same:
        root = _condition_root(ctx, dep, dep_state)
        if root is not None:
            ctx.set_state(node.name, SKIPPED, root, reason=StepReason.CONDITION_SKIPPED)
            return False
    return _if_true(ctx, node)


def _if_true(ctx: Context, node: Node) -> bool:
    text = node.step.if_
    if not text:
        return True
    try:
        ok = condition_true(ctx, text)
    except TemplateError as exc:
        problem = template_problem(ctx, node.name, exc)
        if problem is not None:
            ctx.set_state(
                node.name,
                "Failed",
                f"step '{node.name}': its 'if' cannot be evaluated: {problem}",
                reason=Reason.EXPRESSION_FAILED,
            )
        return False
    if not ok:
        if node.kind == "condition":
            ctx.set_state(node.name, SKIPPED, FALSE_MESSAGE, reason=StepReason.CONDITION_FALSE)
        else:
            ctx.set_state(node.name, SKIPPED, IF_FALSE)
        return False
    return True
