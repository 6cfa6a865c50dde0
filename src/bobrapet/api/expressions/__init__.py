"""The expression language (Jinja2 sandbox) and its static analysis.

Evaluation reuses :func:`make_environment`; admission uses :func:`analyze`,
:func:`check_scope` and :func:`iter_templates`.
"""

from bobrapet.api.expressions.analysis import Analysis, ExpressionError, StepRef, analyze
from bobrapet.api.expressions.environment import DENIED_FUNCTIONS, make_environment
from bobrapet.api.expressions.scopes import (
    BATCH_RUNTIME,
    REALTIME_RUNTIME,
    REALTIME_STATIC,
    SCOPES,
    STORY_OUTPUT,
    Scope,
    check_scope,
)
from bobrapet.api.expressions.walk import iter_templates, join_path

__all__ = [
    "BATCH_RUNTIME",
    "DENIED_FUNCTIONS",
    "REALTIME_RUNTIME",
    "REALTIME_STATIC",
    "SCOPES",
    "STORY_OUTPUT",
    "Analysis",
    "ExpressionError",
    "Scope",
    "StepRef",
    "analyze",
    "check_scope",
    "iter_templates",
    "join_path",
    "make_environment",
]
