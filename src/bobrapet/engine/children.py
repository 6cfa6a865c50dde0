"""The live children of a step (StepRuns, child StoryRuns) and how to stop them.

Invariant: stopping a step never deletes anything unless asked to (after a grace period):
creations queued by the same plan are withdrawn, live StepRuns are annotated
``bubustack.io/cancel-requested=true`` and live child StoryRuns are asked to cancel
(``Plan.cancel_child_runs``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bobrapet.api.phases import is_terminal_phase
from bobrapet.engine.dag import ENGRAM
from bobrapet.engine.naming import compose_dns1123

if TYPE_CHECKING:
    from bobrapet.engine.context import Context
    from bobrapet.engine.dag import Node


def live_step_runs(ctx: Context, node: Node) -> list[str]:
    """Names of the non-terminal StepRuns of ``node`` (itself or its parallel branches)."""
    ids = [b.name for b in node.branches] if node.kind == "parallel" else [node.name]
    out: list[str] = []
    for step_id in ids:
        view = ctx.snap.step_runs.get(step_id)
        if view is not None and not is_terminal_phase(view.phase):
            out.append(view.name)
    return out


def live_child_run(ctx: Context, node: Node) -> str | None:
    if node.kind != "executeStory":
        return None
    view = ctx.snap.child_runs.get(node.name)
    if view is not None and view.owned and not is_terminal_phase(view.phase):
        return view.name
    return None


def request_stop(ctx: Context, node: Node, *, delete: bool = False) -> bool:
    """Ask every live child of ``node`` to stop (or delete it); return whether any is live."""
    if node.kind == "parallel":
        for branch in node.branches:
            ctx.uncreate(compose_dns1123(ctx.run_name, node.name, branch.name))
    elif node.kind in (ENGRAM, "executeStory"):
        ctx.uncreate(compose_dns1123(ctx.run_name, node.name))
    live = False
    for name in live_step_runs(ctx, node):
        live = True
        if delete:
            ctx.plan.delete_step_runs.append(name)
        else:
            ctx.annotate_cancel(name)
    child = live_child_run(ctx, node)
    if child is not None:
        live = True
        if delete:
            ctx.plan.delete_child_runs.append(child)
        elif child not in ctx.plan.cancel_child_runs:
            ctx.plan.cancel_child_runs.append(child)
    return live
