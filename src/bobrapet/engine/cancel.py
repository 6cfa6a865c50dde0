"""Graceful cancellation (reference §4.7, plus child StoryRuns).

Invariants:

* The first plan that sees ``spec.cancelRequested`` stamps the annotation
  ``storyrun.bubustack.io/graceful-cancel-observed-at``; the grace period is measured
  from it (Story ``policy.timeouts.gracefulShutdownTimeout``, else the configured default).
* Not-started steps become Skipped; live StepRuns are annotated cancel-requested and live
  child StoryRuns are asked to cancel; after the grace period whatever is still live is
  deleted. When nothing is live the run ends ``Finished`` (reason ``Canceled``).
* Compensations and finally never run for a canceled run.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Final

from bobrapet.api.conditions import Reason
from bobrapet.api.durations import parse_duration
from bobrapet.api.phases import is_terminal_phase
from bobrapet.api.runmeta import GRACEFUL_CANCEL_OBSERVED as GRACEFUL_OBSERVED
from bobrapet.engine import engram
from bobrapet.engine.children import request_stop
from bobrapet.engine.context import SKIPPED, is_started, is_terminal
from bobrapet.engine.dag import ENGRAM
from bobrapet.engine.finalize import set_phase
from bobrapet.engine.timefmt import parse_time

if TYPE_CHECKING:
    from bobrapet.engine.context import Context

CANCELED_MESSAGE: Final = "StoryRun gracefully canceled"


def cancel_requested(ctx: Context) -> bool:
    return bool((ctx.snap.run.get("spec") or {}).get("cancelRequested"))


def _grace(ctx: Context) -> timedelta:
    policy = ctx.snap.story.spec.policy if ctx.snap.story is not None else None
    text = policy.timeouts.graceful_shutdown_timeout if policy and policy.timeouts else None
    if text:
        try:
            return parse_duration(text)
        except ValueError:
            pass
    return timedelta(seconds=ctx.config.graceful_cancel_timeout)


def _orphans(ctx: Context, expired: bool) -> int:
    """Live StepRuns that belong to no step of the graph (e.g. the Story was deleted)."""
    known = ctx.graph.nodes.keys() | ctx.graph.branch_owner.keys()
    live = 0
    for step_id, view in ctx.snap.step_runs.items():
        if step_id in known or is_terminal_phase(view.phase) or view.deleting:
            continue
        live += 1
        if expired:
            ctx.plan.delete_step_runs.append(view.name)
        else:
            ctx.annotate_cancel(view.name)
    return live


def handle_cancel(ctx: Context) -> None:
    observed = parse_time(ctx.annotations.get(GRACEFUL_OBSERVED))
    if observed is None:
        ctx.plan.annotations[GRACEFUL_OBSERVED] = ctx.now_str
        observed = parse_time(ctx.now_str)
    assert observed is not None
    deadline = observed + _grace(ctx)
    expired = ctx.now >= deadline
    live = 0
    for name, node in ctx.graph.nodes.items():
        state = ctx.states.get(name)
        if is_terminal(state):
            continue
        if not is_started(state):
            ctx.set_state(name, SKIPPED, "Skipped because the StoryRun was canceled")
            continue
        if node.kind == ENGRAM:
            view = ctx.snap.step_runs.get(name)
            if view is not None and not view.deleting:
                engram.mirror(ctx, name, view)
                if is_terminal(ctx.states.get(name)):
                    continue
        if request_stop(ctx, node, delete=expired) and not expired:
            live += 1
            continue
        ctx.set_state(name, "Canceled", "Canceled because the StoryRun was canceled", reason=Reason.CANCELED)
    live += _orphans(ctx, expired)
    if live:
        ctx.status["message"] = f"Cancel requested; waiting for {live} step(s) to stop"
        ctx.wake_at(deadline)
        return
    set_phase(ctx, "Finished", Reason.CANCELED, CANCELED_MESSAGE)
