"""``plan(snapshot)``: one reconcile of a StoryRun, as pure decisions (reference §4.2).

Order (each step may end the plan): oversized inputs → redrive-from-step → full redrive →
terminal handling (TTL, retention) → cancel → Story lookup → realtime guard → version pin
→ inputs schema → start (``Running``) → Story copy recorded → dependency graph check →
story timeout → the blocks (main → compensations → finally) → verdict. Counters and
conditions are refreshed last.

Invariants: ``plan`` never performs I/O nor reads a clock; given the same snapshot it
returns the same plan; applying a plan and planning again converges (idempotent actions).
"""

from __future__ import annotations

import json
from datetime import timedelta

from bobrapet.api.conditions import Reason
from bobrapet.api.durations import format_duration, parse_duration
from bobrapet.api.jsonschema_util import validate, validate_templated
from bobrapet.api.phases import is_terminal_phase
from bobrapet.engine.cancel import cancel_requested, handle_cancel
from bobrapet.engine.children import request_stop
from bobrapet.engine.context import Context, is_started, is_terminal
from bobrapet.engine.dag import EMPTY_GRAPH, compile_graph
from bobrapet.engine.finalize import set_phase, summarize, verdict, write_conditions
from bobrapet.engine.phases import run_blocks
from bobrapet.engine.plan import Plan
from bobrapet.engine.redrive import full_redrive, redrive_from_step
from bobrapet.engine.retention import handle_terminal
from bobrapet.engine.run_index import remember
from bobrapet.engine.snapshot import Snapshot
from bobrapet.engine.story_pin import STATUS_KEY, version_mismatch
from bobrapet.storage.refs import contains_refs

REALTIME_UNSUPPORTED = "realtime stories are not supported by the embedded engine yet"


def plan(snapshot: Snapshot) -> Plan:
    """Decide what to do for this StoryRun now."""
    story = snapshot.story
    graph = compile_graph(story) if story is not None else EMPTY_GRAPH
    ctx = Context(snapshot, story, graph)
    was_terminal = is_terminal_phase(ctx.status.get("phase"))
    if _lifecycle(ctx):
        summarize(ctx)
        write_conditions(ctx)
    terminal = is_terminal_phase(ctx.status.get("phase"))
    if not was_terminal and terminal:
        handle_terminal(ctx)  # schedule child TTL and retention from the reconcile that finishes
    ctx.plan.requeue_after = ctx.requeue_after()
    ctx.plan.changed_steps = None if ctx.changed_states is None else frozenset(ctx.changed_states)
    # The next plan of this run starts from what this one knew about its step states, when
    # its run carries the stepStates written now (see run_index).
    written = ctx.status.get("stepStates")
    index = ctx.held_index()
    if terminal or index is not None:
        same = written is ctx.states or (not ctx.touched and written is ctx.old_states)
        remember(ctx.run_uid, index if same and not terminal else None, written)
    return ctx.plan


def _fail(ctx: Context, reason: str, message: str) -> bool:
    set_phase(ctx, "Failed", reason, message)
    return True


def _inputs_too_large(ctx: Context) -> str | None:
    limit = ctx.config.max_inline_inputs_size
    inputs = (ctx.snap.run.get("spec") or {}).get("inputs")
    if limit <= 0 or not inputs:
        return None
    size = len(json.dumps(inputs, separators=(",", ":"), default=str).encode())
    return f"spec.inputs size {size} bytes exceeds maximum of {limit}" if size > limit else None


def _lifecycle(ctx: Context) -> bool:
    """Run the reconcile order; return whether counters/conditions must be refreshed."""
    phase = ctx.status.get("phase") or ""
    not_started = phase in ("", "Pending")
    if not_started and (too_large := _inputs_too_large(ctx)) is not None:
        return _fail(ctx, Reason.INPUT_TOO_LARGE, too_large)
    if ctx.snap.story is not None and redrive_from_step(ctx):
        return True
    if full_redrive(ctx):
        return False
    if is_terminal_phase(phase):
        handle_terminal(ctx)
        return False
    if cancel_requested(ctx):
        handle_cancel(ctx)
        return True
    story = ctx.snap.story
    if story is None and ctx.snap.story_problem is not None:
        return _fail(ctx, Reason.STORY_REFERENCE_INVALID, ctx.snap.story_problem)
    if story is None:
        ref = (ctx.snap.run.get("spec") or {}).get("storyRef") or {}
        name = f"{ref.get('namespace') or ctx.namespace}/{ref.get('name')}"
        set_phase(
            ctx, "Pending", Reason.STORY_NOT_FOUND, f"Story '{name}' not found; the run starts when it exists"
        )
        ctx.wake_in(ctx.config.requeue_base_delay)
        return True
    if story.spec.pattern == "realtime":
        return _fail(ctx, Reason.INVALID_CONFIGURATION, REALTIME_UNSUPPORTED)
    pinned = STATUS_KEY in ctx.status
    if not pinned and (mismatch := version_mismatch(ctx.snap.run, story.spec.version)) is not None:
        return _fail(ctx, Reason.STORY_REFERENCE_INVALID, mismatch)
    if not_started:
        problem = _inputs_invalid(ctx)
        if problem is not None:
            return _fail(ctx, Reason.INPUT_SCHEMA_FAILED, problem)
        _stamp_schema_refs(ctx)
        set_phase(ctx, "Running", Reason.STARTING_EXECUTION, "Starting StoryRun execution")
    if not pinned and ctx.snap.story_pin is not None:
        # From now on the run executes this copy of the Story, whatever happens to the Story.
        ctx.status[STATUS_KEY] = ctx.snap.story_pin.to_status()
        ctx.plan.store_story = ctx.snap.story_pin
    if ctx.graph.error is not None:
        return _fail(ctx, Reason.INVALID_CONFIGURATION, f"Invalid story dependency graph: {ctx.graph.error}")
    if _timed_out(ctx):
        return True
    if run_blocks(ctx):
        verdict(ctx)
    return True


def _stamp_schema_refs(ctx: Context) -> None:
    spec, meta = ctx.story.spec, ctx.story.metadata
    base = f"bubu://story/{meta.namespace or ctx.namespace}/{meta.name}"
    for key, schema, suffix in (
        ("inputSchemaRef", spec.inputs_schema, "inputs"),
        ("outputSchemaRef", spec.outputs_schema, "output"),
    ):
        if schema:
            ref = {"ref": f"{base}/{suffix}"}
            if spec.version:
                ref["version"] = spec.version
            ctx.status[key] = ref


def _inputs_invalid(ctx: Context) -> str | None:
    schema = ctx.story.spec.inputs_schema
    if not schema:
        return None
    inputs = ctx.inputs()
    # offloaded inputs (reference §7) are checked as references, not as their stored content
    errors = validate_templated(inputs, schema) if contains_refs(inputs) else validate(inputs, schema)
    if not errors:
        return None
    detail = "; ".join(f"{path or '(root)'}: {msg}" for path, msg in errors[:10])
    return f"StoryRun inputs failed schema validation: {detail}"


def _timed_out(ctx: Context) -> bool:
    policy = ctx.story.spec.policy
    text = policy.timeouts.story if policy is not None and policy.timeouts is not None else None
    if not text:
        return False
    try:
        limit = parse_duration(text)
    except ValueError:
        return False
    if limit <= timedelta(0):
        return False
    deadline = ctx.started_at(ctx.status) + limit
    if ctx.now < deadline:
        ctx.wake_at(deadline)
        return False
    for name, node in ctx.graph.nodes.items():
        state = ctx.states.get(name)
        if is_started(state) and not is_terminal(state):
            request_stop(ctx, node)
    set_phase(ctx, "Timeout", Reason.TIMED_OUT, f"StoryRun exceeded timeout of {format_duration(limit)}.")
    return True
