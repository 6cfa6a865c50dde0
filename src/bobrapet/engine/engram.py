"""Engram steps: launch a StepRun when capacity allows, then mirror its phase.

Invariants:

* The step state copies the StepRun's phase and message on every plan; a StepRun that is
  ``Pending`` with a retry scheduled stays non-terminal. A ``Succeeded`` step keeps a
  summary only (phase, times, ``stepRun``): its detail lives on the StepRun, so a long
  run's status grows by a few dozen bytes per finished step.
* A StepRun found without a step state (a crash between create and status write) is
  adopted, never created twice; one being deleted (redrive) is waited for.
* A started step whose StepRun is missing gets it created again (idempotent by name).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from bobrapet.api.phases import StepReason
from bobrapet.engine.launch import LaunchFailure, build_step_run
from bobrapet.engine.naming import compose_dns1123
from bobrapet.engine.scheduling import Budget
from bobrapet.engine.snapshot import StepRunView
from bobrapet.engine.timefmt import format_time

if TYPE_CHECKING:
    from bobrapet.engine.context import Context
    from bobrapet.engine.dag import Node

CREATED: Final = "StepRun created"
DELETION_POLL: Final = 0.1


def mirror(ctx: Context, name: str, view: StepRunView) -> bool:
    """Copy the StepRun's phase and message into the step state; return whether it changed."""
    phase = view.phase or "Pending"
    old = ctx.states.get(name) or {}
    kept = old.get("phase") == phase and old.get("reason") != StepReason.QUEUED
    message = view.message or (old.get("message") if kept else None) or CREATED
    finished = format_time(view.finished_at) if view.finished_at is not None else None
    started = format_time(view.started_at) if view.started_at is not None and phase != "Pending" else None
    return ctx.set_state(
        name, phase, message, reason=view.reason, finished_at=finished, step_run=view.name, started_at=started
    )


def _create(ctx: Context, node: Node) -> bool:
    try:
        run = build_step_run(
            ctx,
            node.step,
            step_id=node.name,
            name=compose_dns1123(ctx.run_name, node.name),
            with_value=node.step.with_,
        )
    except LaunchFailure as exc:
        ctx.set_state(node.name, "Failed", exc.message, reason=exc.reason)
        return False
    ctx.create_step_run(run)
    return True


def launch(ctx: Context, node: Node, budget: Budget) -> None:
    view = ctx.snap.step_runs.get(node.name)
    if view is not None:
        if view.deleting:
            ctx.wake_in(DELETION_POLL)
        else:
            mirror(ctx, node.name, view)
        return
    hold = budget.hold_reason()
    if hold is not None:
        ctx.set_state(node.name, "Pending", hold, reason=StepReason.QUEUED)
        ctx.wake_in(ctx.config.requeue_base_delay)
        return
    if _create(ctx, node):
        ctx.set_state(node.name, "Pending", CREATED)


def refresh(ctx: Context, node: Node, state: Mapping[str, Any]) -> None:
    view = ctx.snap.step_runs.get(node.name)
    if view is None:
        if not ctx.created(compose_dns1123(ctx.run_name, node.name)):
            _create(ctx, node)
        return
    if view.deleting:
        ctx.wake_in(DELETION_POLL)
        return
    index = ctx.held_index()
    if index is None:
        mirror(ctx, node.name, view)
        return
    # A StepRun and a step state that were already in agreement (the same objects as when
    # last mirrored without change) stay so: a wide fan-out's plan costs what changed.
    settled = index.settled.get(node.name)
    if settled is not None and settled[0] is view and settled[1] is state:
        return
    if not mirror(ctx, node.name, view):
        index.settled[node.name] = (view, state)
