"""``executeStory``: start a child StoryRun of another Story, optionally waiting for it.

Invariants:

* Child name = ``compose_dns1123(run, step)``; labels ``bubustack.io/parent-storyrun`` and
  ``bubustack.io/parent-step``; annotations carry the nesting depth and the chain of
  ``namespace/story`` ancestors (this run's Story included), so nesting deeper than the
  limit (:func:`nesting_limit`: the running Story's ``policy.execution.maxRecursionDepth``,
  else ``max_sub_story_depth``) or calling a Story already in the chain fails the step instead of
  recursing.
* Child inputs = deep merge of the target's ``policy.with`` and the step's ``with.with``,
  rendered with this run's variables.
* When waiting, the step copies the child's terminal phase and message; the child's output
  is exposed as ``steps.<step>.output`` only when it Succeeded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from bobrapet.api import runmeta
from bobrapet.api.conditions import Reason
from bobrapet.api.phases import is_terminal_phase
from bobrapet.api.runmeta import DEPTH as DEPTH_ANNOTATION
from bobrapet.api.runmeta import STORY_CHAIN as CHAIN_ANNOTATION
from bobrapet.engine.expressions import TemplateError, render_value, template_problem
from bobrapet.engine.merge import deep_merge
from bobrapet.engine.naming import compose_dns1123
from bobrapet.engine.plan import NewChildRun
from bobrapet.engine.primitives.common import with_of
from bobrapet.engine.timefmt import format_time

if TYPE_CHECKING:
    from bobrapet.engine.context import Context
    from bobrapet.engine.dag import Node

SPOOFED: Final = "SubStoryRunSpoofed"


def chain_of(ctx: Context) -> list[str]:
    """``namespace/story`` of every ancestor run's Story, then this run's Story."""
    raw = ctx.annotations.get(CHAIN_ANNOTATION) or ""
    chain = [part for part in raw.split(",") if part]
    meta = ctx.story.metadata
    chain.append(f"{meta.namespace or ctx.namespace}/{meta.name}")
    return chain


def nesting_limit(ctx: Context) -> tuple[int, str]:
    """The deepest executeStory nesting this run may start, and where the limit comes from:
    this run's Story ``policy.execution.maxRecursionDepth`` when set, else the engine's."""
    policy = ctx.story.spec.policy
    execution = policy.execution if policy is not None else None
    own = execution.max_recursion_depth if execution is not None else None
    if own is not None:
        return own, f"policy.execution.maxRecursionDepth of Story '{ctx.story.metadata.name}'"
    return (
        ctx.config.max_sub_story_depth,
        "the engine default; a Story sets its own with policy.execution.maxRecursionDepth",
    )


def _target(ctx: Context, node: Node) -> tuple[str, str | None]:
    ref = with_of(node).get("storyRef")
    ref = ref if isinstance(ref, dict) else {}
    return str(ref.get("name") or ""), (str(ref["namespace"]) if ref.get("namespace") else None)


def _fail(ctx: Context, node: Node, reason: str, message: str) -> None:
    ctx.set_state(node.name, "Failed", message, reason=reason)


def _child(ctx: Context, node: Node) -> NewChildRun | None:
    """The child StoryRun to create; ``None`` when the step failed or must wait."""
    name, namespace = _target(ctx, node)
    depth = ctx.snap.depth + 1
    limit, source = nesting_limit(ctx)
    if depth > limit:
        _fail(
            ctx,
            node,
            Reason.INVALID_CONFIGURATION,
            f"sub-story nesting depth {depth} exceeds the limit of {limit} ({source})",
        )
        return None
    chain = chain_of(ctx)
    key = f"{namespace or ctx.namespace}/{name}"
    if key in chain:
        cycle = [*chain[chain.index(key) :], key]
        _fail(ctx, node, Reason.INVALID_CONFIGURATION, "sub-story cycle: " + " -> ".join(cycle))
        return None
    target = ctx.snap.sub_stories.get(node.name)
    if target is None or not name:
        _fail(
            ctx,
            node,
            Reason.REFERENCE_NOT_FOUND,
            f"Story '{key}' referenced by executeStory step '{node.name}' was not found; "
            "create it or fix with.storyRef.",
        )
        return None
    policy_with = target.spec.policy.with_ if target.spec.policy is not None else None
    step_with = with_of(node).get("with")
    try:
        inputs = render_value(
            ctx, deep_merge(policy_with, step_with if isinstance(step_with, dict) else None), step=node.name
        )
    except TemplateError as exc:
        problem = template_problem(ctx, node.name, exc)
        if problem is not None:
            _fail(ctx, node, Reason.EXPRESSION_FAILED, f"executeStory step '{node.name}': {problem}")
        return None
    story_ref: dict[str, Any] = {"name": name}
    if namespace:
        story_ref["namespace"] = namespace
    version = (with_of(node).get("storyRef") or {}).get("version")
    if version:
        story_ref["version"] = version
    return NewChildRun(
        name=compose_dns1123(ctx.run_name, node.name),
        step=node.name,
        spec={"storyRef": story_ref, "inputs": inputs if isinstance(inputs, dict) else {}},
        labels={runmeta.PARENT_STORYRUN: runmeta.run_label(ctx.run_name), runmeta.PARENT_STEP: node.name},
        annotations={DEPTH_ANNOTATION: str(depth), CHAIN_ANNOTATION: ",".join(chain)},
    )


def _waits(node: Node) -> bool:
    return with_of(node).get("waitForCompletion") is not False


def launch(ctx: Context, node: Node) -> None:
    existing = ctx.snap.child_runs.get(node.name)
    if existing is not None and existing.deleting:
        ctx.wake_in(0.1)
        return
    child = _child(ctx, node)
    if child is None:
        return
    ctx.create_child_run(child)
    if _waits(node):
        ctx.set_state(
            node.name, "Running", f"Waiting for sub-story run '{child.name}' to complete", sub_run=child.name
        )
    else:
        ctx.set_state(node.name, "Succeeded", f"Launched sub-story run '{child.name}'", sub_run=child.name)


def refresh(ctx: Context, node: Node, state: Mapping[str, Any]) -> None:
    view = ctx.snap.child_runs.get(node.name)
    name = str(state.get("subStoryRunName") or compose_dns1123(ctx.run_name, node.name))
    if view is None:
        if not ctx.created(name):
            child = _child(ctx, node)
            if child is not None:
                ctx.create_child_run(child)
        return
    if not view.owned:
        message = f"StoryRun '{view.name}' exists but was not created by this run; refusing to adopt it"
        ctx.event("Warning", SPOOFED, message)
        _fail(ctx, node, SPOOFED, message)
        return
    if view.deleting:
        ctx.wake_in(0.1)
        return
    if is_terminal_phase(view.phase):
        phase = str(view.phase)
        message = view.message or f"Sub-story run '{view.name}' completed with phase {phase}"
        finished = format_time(view.finished_at) if view.finished_at else None
        ctx.set_state(node.name, phase, message, finished_at=finished)
