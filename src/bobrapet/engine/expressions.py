"""Evaluating templates for the engine: conditions and values, with the plan's clock.

Invariant: ``now()`` in a template is the snapshot's ``now`` (never the wall clock), and
``deterministic`` follows ``EngineConfig.deterministic_templates``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bobrapet.templating import Blocked, TemplateError, evaluate_condition, render

if TYPE_CHECKING:
    from bobrapet.engine.context import Context

__all__ = ["Blocked", "TemplateError", "condition_true", "render_value"]


def condition_true(ctx: Context, text: str) -> bool:
    """Evaluate a condition (bare or braced); raises ``Blocked`` / ``TemplateError``."""
    return bool(
        evaluate_condition(
            text, ctx.variables(), now=lambda: ctx.now, deterministic=ctx.config.deterministic_templates
        )
    )


def render_value(ctx: Context, value: Any) -> Any:
    """Render every template inside ``value``; raises ``Blocked`` / ``TemplateError``."""
    return render(
        value, ctx.variables(), now=lambda: ctx.now, deterministic=ctx.config.deterministic_templates
    )
