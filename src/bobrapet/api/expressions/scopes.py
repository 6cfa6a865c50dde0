"""Admission-time validation scopes (reference §3.5).

A scope says which variable roots a template field may use and whether ``now()`` and
random helpers are allowed. Invariant: :func:`check_scope` never raises; it turns an
:class:`~bobrapet.api.expressions.analysis.Analysis` into a list of errors whose messages
match the reference ("context 'x' is not allowed for <scope> templates").
"""

from __future__ import annotations

from dataclasses import dataclass

from bobrapet.api.expressions.analysis import Analysis, ExpressionError

#: Every root any scope knows about; other names are "unknown contexts".
KNOWN_ROOTS: frozenset[str] = frozenset({"inputs", "steps", "packet", "story", "run"})


@dataclass(frozen=True)
class Scope:
    name: str
    roots: frozenset[str]
    allow_now: bool
    allow_random: bool


BATCH_RUNTIME = Scope("batch-runtime", frozenset({"inputs", "steps", "story", "run"}), True, True)
REALTIME_STATIC = Scope("realtime-static", frozenset({"inputs", "story"}), False, False)
REALTIME_RUNTIME = Scope(
    "realtime-runtime", frozenset({"inputs", "steps", "packet", "story", "run"}), True, True
)
STORY_OUTPUT = Scope("story-output", frozenset({"inputs", "steps", "story", "run"}), True, True)

SCOPES: dict[str, Scope] = {
    s.name: s for s in (BATCH_RUNTIME, REALTIME_STATIC, REALTIME_RUNTIME, STORY_OUTPUT)
}


def check_scope(
    analysis: Analysis, scope: Scope, *, extra_roots: frozenset[str] = frozenset()
) -> list[ExpressionError]:
    """Errors for roots and non-deterministic functions the scope does not allow."""
    errors: list[ExpressionError] = []
    allowed = scope.roots | extra_roots | analysis.extra_roots
    for root in sorted(analysis.roots):
        if root in allowed:
            continue
        pos = analysis.root_positions.get(root)
        if root in KNOWN_ROOTS:
            msg = f"context '{root}' is not allowed for {scope.name} templates"
        else:
            msg = (
                f"unknown context '{root}' is not allowed for {scope.name} templates "
                f"(available: {', '.join(sorted(scope.roots))})"
            )
        errors.append(ExpressionError(msg, *(pos or (1, 1)), snippet=root))
    if analysis.uses_now and not scope.allow_now:
        errors.append(
            ExpressionError(f"function 'now' is not allowed for {scope.name} templates", 1, 1, "now")
        )
    if analysis.uses_random and not scope.allow_random:
        errors.append(
            ExpressionError(f"random functions are not allowed for {scope.name} templates", 1, 1, "random")
        )
    return errors
