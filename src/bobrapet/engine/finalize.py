"""Run-level status: phase transitions, the final verdict, output, error and counters.

Invariants:

* :func:`set_phase` is the only writer of ``phase``/``message``; terminal phases stamp
  ``finishedAt`` and ``duration`` once, and record the ``error`` object of §9.3 for every
  terminal phase except ``Succeeded``.
* The verdict priority is §2.3's: finally failed → compensation failed → stopped (the
  stop's phase and message) → compensated → failed dependency → Succeeded (with output).
* ``Ready`` is True only for Succeeded, ``Progressing`` iff non-terminal, ``Degraded`` iff
  Failed/Timeout/Aborted (or the output was too large to store); conditions are rewritten
  only when the phase, reason or message changed, so an idle plan changes nothing.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from bobrapet.api import conditions as cond
from bobrapet.api.conditions import Reason
from bobrapet.api.durations import format_rounded
from bobrapet.api.jsonschema_util import validate
from bobrapet.api.phases import DEGRADED_PHASES, OK_PHASES, is_terminal_phase
from bobrapet.engine.context import SKIPPED, SUCCEEDED, is_started
from bobrapet.engine.dag import COMPENSATIONS, FINALLY, MAIN
from bobrapet.engine.expressions import TemplateError, Unhydrated, render_value
from bobrapet.engine.phases import main_failed, stop_step
from bobrapet.engine.primitives.parallel import branch_failures
from bobrapet.engine.readiness import failed
from bobrapet.engine.timefmt import parse_time

if TYPE_CHECKING:
    from bobrapet.engine.context import Context

_PHASE_REASON: Final = {
    "Pending": "Pending",
    "Running": "Running",
    "Paused": "Paused",
    "Blocked": "Blocked",
    "Scheduling": "Scheduled",
    "Timeout": "TimedOut",
    "Skipped": "Skipped",
    "Compensated": "Compensated",
    "Canceled": "Canceled",
    "Finished": "Canceled",
    "Aborted": "Canceled",
    "Succeeded": "Completed",
    "Failed": "ExecutionFailed",
}


def phase_reason(phase: str) -> str:
    return _PHASE_REASON.get(phase, "Reconciling")


def _add_token(ctx: Context, token: str) -> None:
    tokens = list(ctx.status.get("triggerTokens") or [])
    if token not in tokens:
        tokens.append(token)
        ctx.status["triggerTokens"] = tokens


def _has_impulse(ctx: Context) -> bool:
    return bool((ctx.snap.run.get("spec") or {}).get("impulseRef"))


def failed_steps(ctx: Context) -> list[dict[str, Any]]:
    out = []
    for block in (MAIN, COMPENSATIONS, FINALLY):
        for name in ctx.graph.order[block]:
            state = ctx.states.get(name)
            if failed(ctx.graph.nodes[name], state):
                assert state is not None
                out.append({"name": name, "phase": state.get("phase"), "message": state.get("message") or ""})
    return out


def set_phase(
    ctx: Context, phase: str, reason: str | None, message: str, *, degraded: str | None = None
) -> None:
    """Write the run phase; terminal phases stamp finishedAt, duration and the error object."""
    status = ctx.status
    reason = reason or phase_reason(phase)
    status["phase"] = phase
    status["message"] = message
    ctx.phase_reason = reason
    ctx.degraded_reason = degraded
    if phase == "Running" and ctx.old_status.get("phase") != "Running":
        status["attempts"] = int(status.get("attempts") or 0) + 1
        status.setdefault("startedAt", ctx.now_str)
        _add_token(ctx, "story")
        if _has_impulse(ctx):
            _add_token(ctx, "impulse")
    if not is_terminal_phase(phase):
        return
    status["finishedAt"] = status.get("finishedAt") or ctx.now_str
    started = parse_time(status.get("startedAt"))
    finished = parse_time(status["finishedAt"])
    if started is not None and finished is not None:
        status["duration"] = format_rounded(finished - started)
    if phase != SUCCEEDED:
        status["error"] = {"type": reason, "message": message, "failedSteps": failed_steps(ctx)}
    if _has_impulse(ctx):
        if phase == SUCCEEDED:
            _add_token(ctx, "impulse-success")
        elif phase == "Failed":
            _add_token(ctx, "impulse-failed")


def _allowed_text(allowed: list[str]) -> str:
    return f"Completed with allowed failures: {', '.join(allowed)}."


def _succeed(ctx: Context, allowed: list[str]) -> None:
    message = _allowed_text(allowed) if allowed else "All steps completed successfully."
    spec_output = ctx.story.spec.output
    if spec_output is None:
        set_phase(ctx, SUCCEEDED, Reason.COMPLETED, message)
        return
    try:
        value = render_value(ctx, spec_output)
    except Unhydrated:
        return  # the controller loads the offloaded data it needs and plans again
    except TemplateError as exc:
        set_phase(
            ctx, "Failed", Reason.OUTPUT_RESOLUTION_FAILED, f"Failed to evaluate final output template: {exc}"
        )
        return
    schema = ctx.story.spec.outputs_schema
    errors = validate(value, schema) if schema else []
    if errors:
        detail = "; ".join(f"{path or '(root)'}: {msg}" for path, msg in errors[:10])
        set_phase(
            ctx, "Failed", Reason.OUTPUT_SCHEMA_FAILED, f"Story output failed schema validation: {detail}"
        )
        return
    limit = ctx.config.max_output_size
    size = len(json.dumps(value, separators=(",", ":"), default=str).encode())
    if limit > 0 and size > limit:
        head = _allowed_text(allowed)[:-1] if allowed else "All steps completed successfully"
        text = f"{head}, but the final output was too large to store."
        set_phase(ctx, SUCCEEDED, Reason.COMPLETED, text, degraded=Reason.OUTPUT_RESOLUTION_FAILED)
        return
    ctx.status["output"] = value
    set_phase(ctx, SUCCEEDED, Reason.COMPLETED, message)


def _first_failed(ctx: Context, block: str) -> str | None:
    nodes = ctx.graph.nodes
    return next((n for n in ctx.graph.order[block] if failed(nodes[n], ctx.states.get(n))), None)


def verdict(ctx: Context) -> None:
    """Every step is terminal: decide the run's final phase (§2.3 priority order)."""
    bad_finally = _first_failed(ctx, FINALLY)
    if bad_finally is not None:
        set_phase(ctx, "Failed", Reason.CLEANUP_FAILED, f"Finally step {bad_finally} failed.")
        return
    bad_comp = _first_failed(ctx, COMPENSATIONS)
    if bad_comp is not None:
        set_phase(ctx, "Failed", Reason.COMPENSATION_FAILED, f"Compensation step {bad_comp} failed.")
        return
    stopper = stop_step(ctx)
    if stopper is not None:
        state = ctx.states[stopper]
        phase = str(state["phase"])
        if phase == SUCCEEDED:
            _succeed_stopped(ctx, str(state.get("message") or ""))
        else:
            set_phase(ctx, phase, None, str(state.get("message") or ""))
        return
    failures = main_failed(ctx)
    if failures:
        comps = ctx.graph.order[COMPENSATIONS]
        if comps and any(ctx.states.get(c, {}).get("phase") != SKIPPED for c in comps):
            set_phase(ctx, "Compensated", Reason.COMPENSATED, "Story failed; compensations completed.")
        else:
            set_phase(
                ctx, "Failed", Reason.DEPENDENCY_FAILED, f"Story completed with failed step: {failures[0]}."
            )
        return
    _succeed(ctx, allowed_failures(ctx))


def _succeed_stopped(ctx: Context, message: str) -> None:
    set_phase(ctx, SUCCEEDED, Reason.COMPLETED, message)


def allowed_failures(ctx: Context) -> list[str]:
    out: list[str] = []
    for node in ctx.graph.may_fail_allowed:
        name = node.name
        state = ctx.states.get(name)
        phase = state.get("phase") if state is not None else None
        if node.step.allow_failure and is_terminal_phase(phase) and phase not in OK_PHASES:
            out.append(name)
        if node.kind == "parallel":
            out.extend(branch_failures(ctx, node))
    return sorted(out)


def _same(ctx: Context, key: str, value: Any) -> None:
    """Set ``status[key]``, keeping the stored object when equal (cheap change detection)."""
    old = ctx.old_status.get(key)
    ctx.status[key] = old if old == value else value


def _count(states: dict[str, dict[str, Any]]) -> tuple[int, int, int, list[str]]:
    """(succeeded, failed, skipped, active names) of ``states``, walking every state."""
    complete = failed_n = skipped = 0
    active: list[str] = []
    for name, state in states.items():
        phase = state.get("phase")
        if is_terminal_phase(phase):
            if phase == SUCCEEDED:
                complete += 1
            elif phase == SKIPPED:
                skipped += 1
            else:
                failed_n += 1
        elif is_started(state):
            active.append(name)
    return complete, failed_n, skipped, active


def summarize(ctx: Context) -> None:
    """Counters, summary lists and allowedFailures from the step states.

    ``active`` is kept current; ``completed`` is written when the run is terminal only.
    """
    states = ctx.states
    index = ctx.index
    if index is not None:  # kept up to date step by step: no walk over every step state
        complete, failed_n, skipped = index.complete, index.failed, index.skipped
        active = index.active_names()
    else:
        complete, failed_n, skipped, active = _count(states)
    generation = (ctx.snap.run.get("metadata") or {}).get("generation")
    if isinstance(generation, int) and generation > int(ctx.status.get("observedGeneration") or 0):
        ctx.status["observedGeneration"] = generation
    ctx.status["stepsTotal"] = ctx.graph.total
    ctx.status["stepsComplete"] = complete
    ctx.status["stepsFailed"] = failed_n
    ctx.status["stepsSkipped"] = skipped
    _same(ctx, "active", active)
    if is_terminal_phase(ctx.status.get("phase")):
        # The legacy list of every finished step is written once, when the run ends: rewriting
        # it on every step event would make each write of a long run grow with its length
        # (stepStates already says which steps finished).
        done = [name for name, state in states.items() if is_terminal_phase(state.get("phase"))]
        _same(ctx, "completed", done)
    allowed = allowed_failures(ctx)
    if allowed or ctx.old_status.get("allowedFailures"):
        _same(ctx, "allowedFailures", allowed)
    if not ctx.touched and "stepStates" in ctx.old_status:
        ctx.status["stepStates"] = ctx.old_status["stepStates"]
        return
    ctx.status["stepStates"] = states


def write_conditions(ctx: Context) -> None:
    """Ready/Progressing/Degraded from the phase, rewritten only when something changed."""
    reason = ctx.phase_reason
    old = ctx.old_status.get("conditions")
    if reason is None and old:
        return
    phase = str(ctx.status.get("phase") or "Pending")
    reason = reason or phase_reason(phase)
    message = str(ctx.status.get("message") or "")
    conditions = [dict(c) for c in old or []]
    generation = (ctx.snap.run.get("metadata") or {}).get("generation")
    kw: dict[str, Any] = {"observed_generation": generation, "now": ctx.now}
    terminal = is_terminal_phase(phase)
    cond.set_condition(conditions, cond.READY, phase == SUCCEEDED, reason, message, **kw)
    cond.set_condition(conditions, cond.PROGRESSING, not terminal, reason, message, **kw)
    degraded_reason = ctx.degraded_reason
    degraded = phase in DEGRADED_PHASES or degraded_reason is not None
    cond.set_condition(conditions, cond.DEGRADED, degraded, degraded_reason or reason, message, **kw)
    ctx.status["conditions"] = old if old == conditions else conditions
