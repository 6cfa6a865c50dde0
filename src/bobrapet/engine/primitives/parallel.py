"""``parallel``: each branch becomes a StepRun; the step ends when every branch has ended.

Invariants:

* Branch StepRun name = ``compose_dns1123(run, step, branch)``, ``stepId`` = branch name,
  label ``bubustack.io/parent-step``; branch ``with`` is rendered at creation time with the
  run's variables. ``status.primitiveChildren[step]`` lists the branch StepRun names.
* The parent is ``Running`` until every branch is terminal, then ``Failed`` (some branch
  without ``allowFailure`` did not succeed) or ``Succeeded``.
* A missing branch StepRun of a running parent is created again (creation is idempotent).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from bobrapet.api.conditions import Reason
from bobrapet.api.phases import OK_PHASES, is_terminal_phase
from bobrapet.api.types.story import Step
from bobrapet.engine.expressions import TemplateError, render_value, template_problem
from bobrapet.engine.launch import LaunchFailure, build_step_run
from bobrapet.engine.naming import compose_dns1123
from bobrapet.engine.plan import NewStepRun

if TYPE_CHECKING:
    from bobrapet.engine.context import Context
    from bobrapet.engine.dag import Node

EXPANDED: Final = "Parallel block expanded"


def _branch_run(ctx: Context, node: Node, branch: Step) -> NewStepRun | None:
    """The StepRun of ``branch``; ``None`` (state already set, or blocked) when it cannot be built."""
    try:
        rendered = render_value(ctx, branch.with_, step=branch.name) if branch.with_ else None
    except TemplateError as exc:
        problem = template_problem(ctx, node.name, exc)
        if problem is not None:
            ctx.set_state(
                node.name,
                "Failed",
                f"branch '{branch.name}' of parallel step '{node.name}': {problem}",
                reason=Reason.EXPRESSION_FAILED,
            )
        return None
    try:
        return build_step_run(
            ctx,
            branch,
            step_id=branch.name,
            name=compose_dns1123(ctx.run_name, node.name, branch.name),
            with_value=rendered if isinstance(rendered, dict) else None,
            parent_step=node.name,
        )
    except LaunchFailure as exc:
        ctx.set_state(node.name, "Failed", exc.message, reason=exc.reason)
        return None


def launch(ctx: Context, node: Node) -> None:
    if node.branch_error is not None:
        ctx.set_state(node.name, "Failed", node.branch_error, reason=Reason.INVALID_CONFIGURATION)
        return
    if any((v := ctx.snap.step_runs.get(b.name)) is not None and v.deleting for b in node.branches):
        ctx.wake_in(0.1)
        return
    runs: list[NewStepRun] = []
    for branch in node.branches:
        run = _branch_run(ctx, node, branch)
        if run is None:
            return
        runs.append(run)
    for run in runs:
        ctx.create_step_run(run)
    children = dict(ctx.status.get("primitiveChildren") or {})
    children[node.name] = [r.name for r in runs]
    ctx.status["primitiveChildren"] = children
    ctx.set_state(node.name, "Running", EXPANDED)


def refresh(ctx: Context, node: Node, state: Mapping[str, Any]) -> None:
    failed: list[str] = []
    allowed = False
    pending = False
    for branch in node.branches:
        view = ctx.snap.step_runs.get(branch.name)
        if view is None:
            name = compose_dns1123(ctx.run_name, node.name, branch.name)
            if not ctx.created(name):
                run = _branch_run(ctx, node, branch)
                if run is None and is_terminal_phase(ctx.states[node.name].get("phase")):
                    return
                if run is not None:
                    ctx.create_step_run(run)
            pending = True
            continue
        if view.deleting:
            ctx.wake_in(0.1)
            pending = True
            continue
        if not is_terminal_phase(view.phase):
            pending = True
            continue
        ctx.add_branch_entry(branch.name)
        if view.phase != "Succeeded":
            if branch.allow_failure:
                allowed = True
            else:
                failed.append(branch.name)
    if pending:
        return
    if failed:
        ctx.set_state(node.name, "Failed", f"Parallel branches failed: {', '.join(failed)}")
    elif allowed:
        ctx.set_state(node.name, "Succeeded", "Parallel branches completed with allowed failures.")
    else:
        ctx.set_state(node.name, "Succeeded", "Parallel branches completed.")


def branch_failures(ctx: Context, node: Node) -> list[str]:
    """Branches with ``allowFailure`` that ended without succeeding."""
    out: list[str] = []
    for branch in node.branches:
        view = ctx.snap.step_runs.get(branch.name)
        phase = view.phase if view is not None else None
        if branch.allow_failure and is_terminal_phase(phase) and phase not in OK_PHASES:
            out.append(branch.name)
    return out
