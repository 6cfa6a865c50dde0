"""Evaluating templates for the engine: conditions and values, with the plan's clock.

Invariants: ``now()`` in a template is the snapshot's ``now`` (never the wall clock), and
``deterministic`` follows ``EngineConfig.deterministic_templates``. A template of a step whose
dependencies are all done can only be ``Blocked`` by a reference the dependency mining could
not see (``steps[inputs.name]``); :func:`blocked_forever` says when such a wait can never end,
so callers fail the step instead of leaving the run hanging.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bobrapet.api.phases import is_terminal_phase
from bobrapet.engine.variables import template_seed
from bobrapet.templating import Blocked, TemplateError, Unhydrated, evaluate_condition, render

if TYPE_CHECKING:
    from bobrapet.engine.context import Context

__all__ = [
    "Blocked",
    "TemplateError",
    "Unhydrated",
    "blocked_forever",
    "condition_true",
    "forever_text",
    "render_value",
    "template_problem",
]


def condition_true(ctx: Context, text: str) -> bool:
    """Evaluate a condition (bare or braced); raises ``Blocked`` / ``TemplateError``
    (``Unhydrated`` after recording the offloaded data it needs in the plan)."""
    try:
        return bool(
            evaluate_condition(
                text,
                ctx.variables_for(text, condition=True),
                now=lambda: ctx.now,
                deterministic=ctx.config.deterministic_templates,
                offload=ctx.offload,
            )
        )
    except Unhydrated as exc:
        ctx.need_blobs(exc.keys)
        raise


def render_value(ctx: Context, value: Any, *, step: str | None = None) -> Any:
    """Render every template inside ``value``; raises ``Blocked`` / ``TemplateError``.

    With ``step``, the random helpers are seeded from the run and that step
    (:func:`~bobrapet.engine.variables.template_seed`), so each reconcile renders the same values.
    """
    try:
        return render(
            value,
            ctx.variables_for(value),
            now=lambda: ctx.now,
            deterministic=ctx.config.deterministic_templates,
            seed=None if step is None else template_seed(ctx.snap.run, step),
            offload=ctx.offload,
        )
    except Unhydrated as exc:
        ctx.need_blobs(exc.keys)
        raise


def blocked_forever(ctx: Context, step: str, exc: Blocked) -> bool:
    """Whether ``step``, blocked by ``exc``, waits for a step that will never produce data.

    That is a step (or parallel branch) that does not exist, is already terminal, or is
    ``step`` itself or downstream of it.
    """
    graph = ctx.graph
    target = exc.step if exc.step in graph.nodes else graph.branch_owner.get(exc.step)
    if target is None or target in graph.downstream(step):
        return True
    return is_terminal_phase((ctx.states.get(target) or {}).get("phase"))


def forever_text(exc: Blocked) -> str:
    """Why a :func:`blocked_forever` template can never be evaluated."""
    return (
        f"it waits for step '{exc.step}', which will never produce output "
        "(no such step, already finished, or downstream of this step)"
    )


def template_problem(ctx: Context, step: str, exc: TemplateError) -> str | None:
    """Why a template of ``step`` fails for good, or ``None`` when it is only ``Blocked`` on
    data that will still come (the caller waits; also while offloaded data is being loaded)."""
    if isinstance(exc, Unhydrated):
        return None
    if isinstance(exc, Blocked):
        return forever_text(exc) if blocked_forever(ctx, step, exc) else None
    return str(exc)
