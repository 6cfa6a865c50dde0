"""Redrive: restart a run from scratch, or from one step (reference §4.2 steps 7-8).

Invariants:

* A redrive is requested by an annotation whose value differs from the matching
  ``...-observed`` annotation; the plan that handles it records the observed value, so it
  is acted on exactly once.
* Full redrive deletes every child and resets the status except ``attempts``,
  ``triggerTokens`` and the Story copy the run executes (``storySnapshot``: a redrive runs
  the run's own Story) — gate decisions too: a redriven gate asks again; the run then
  starts again. When :data:`REDRIVE_LATEST` names the same token (``redrive --latest``)
  the copy is dropped as well, so the run restarts on the current Story.
* Redrive-from-step deletes the StepRuns / child StoryRuns of the step and of everything
  downstream of it (its transitive dependents, and every later block), drops their states
  and gate decisions and reopens a finished run (with a new ``startedAt``, so the story
  timeout counts from the reopening); nothing is launched in the same plan, and later plans wait
  while any of those children is still being deleted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from bobrapet.api.phases import is_terminal_phase
from bobrapet.api.runmeta import GRACEFUL_CANCEL_OBSERVED as GRACEFUL_OBSERVED
from bobrapet.api.runmeta import REDRIVE_FROM_STEP as FROM_STEP
from bobrapet.api.runmeta import REDRIVE_FROM_STEP_OBSERVED as FROM_STEP_OBSERVED
from bobrapet.api.runmeta import REDRIVE_LATEST, REDRIVE_OBSERVED, REDRIVE_TOKEN, STEP_TIMERS
from bobrapet.engine.dag import BLOCKS
from bobrapet.engine.finalize import set_phase
from bobrapet.engine.story_pin import STATUS_KEY as STORY_SNAPSHOT

if TYPE_CHECKING:
    from bobrapet.engine.context import Context

DELETION_POLL: Final = 0.1
# Gate decisions are not kept: a redriven gate asks for a new decision.
_KEEP: Final = ("attempts", "triggerTokens")
# ``startedAt`` too: the reopened run gets a fresh story timeout (measured from it).
_REOPEN_CLEARS: Final = ("startedAt", "finishedAt", "error", "output", "duration", "childrenCleanedAt")


def full_redrive(ctx: Context) -> bool:
    token = ctx.annotations.get(REDRIVE_TOKEN)
    if not token or token == ctx.annotations.get(REDRIVE_OBSERVED):
        return False
    ctx.plan.delete_step_runs.extend(v.name for v in ctx.snap.step_runs.values() if not v.deleting)
    ctx.plan.delete_child_runs.extend(
        v.name for v in ctx.snap.child_runs.values() if not v.deleting and v.owned
    )
    latest = ctx.annotations.get(REDRIVE_LATEST) == token
    keep = _KEEP if latest else (*_KEEP, STORY_SNAPSHOT)
    kept = {k: ctx.old_status[k] for k in keep if k in ctx.old_status}
    ctx.status.clear()
    ctx.status.update(kept)
    ctx.clear_states()
    ctx.plan.annotations.update({REDRIVE_OBSERVED: token, GRACEFUL_OBSERVED: None, STEP_TIMERS: None})
    story = "the current Story" if latest else "its own Story"
    ctx.event("Normal", "StoryRunRedrive", f"StoryRun redriven from the start on {story}")
    ctx.wake_in(DELETION_POLL)
    return True


def _affected(ctx: Context, target: str) -> list[str]:
    graph = ctx.graph
    names = dict.fromkeys(graph.downstream(target))
    block = graph.nodes[target].block
    for later in BLOCKS[BLOCKS.index(block) + 1 :]:
        names.update(dict.fromkeys(graph.order[later]))
    return list(names)


def redrive_from_step(ctx: Context) -> bool:
    value = ctx.annotations.get(FROM_STEP)
    if not value or value == ctx.annotations.get(FROM_STEP_OBSERVED):
        return False
    ctx.plan.annotations[FROM_STEP_OBSERVED] = value
    step = value.split(":", 1)[0]
    target = step if step in ctx.graph.nodes else ctx.graph.branch_owner.get(step)
    if target is None:
        ctx.event("Warning", "StoryRunRedriveFromStep", f"cannot redrive from unknown step '{step}'")
        return False
    children = dict(ctx.status.get("primitiveChildren") or {})
    gates = dict(ctx.status.get("gates") or {})
    for name in _affected(ctx, target):
        gates.pop(name, None)
        node = ctx.graph.nodes[name]
        ids = [name, *(b.name for b in node.branches)]
        for step_id in ids:
            view = ctx.snap.step_runs.get(step_id)
            if view is not None and not view.deleting:
                ctx.plan.delete_step_runs.append(view.name)
        child = ctx.snap.child_runs.get(name)
        if child is not None and child.owned and not child.deleting:
            ctx.plan.delete_child_runs.append(child.name)
        ctx.drop_state(name)
        children.pop(name, None)
    if "primitiveChildren" in ctx.status:
        ctx.status["primitiveChildren"] = children
    if "gates" in ctx.status:
        ctx.status["gates"] = gates
    if is_terminal_phase(ctx.status.get("phase")):
        for key in _REOPEN_CLEARS:
            ctx.status.pop(key, None)
        set_phase(ctx, "Running", "Reconciling", f"Redriving from step '{target}'")
    ctx.event("Normal", "StoryRunRedriveFromStep", f"Redriving from step '{target}'")
    ctx.wake_in(DELETION_POLL)
    return True
