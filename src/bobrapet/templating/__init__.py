"""Run-time evaluation of template expressions (Jinja2 sandbox; reference §3, DESIGN "Expressions").

Static analysis (dependencies, admission checks) lives in :mod:`bobrapet.api.expressions`;
this package evaluates the same texts against run data.
"""

from bobrapet.templating.conditions import as_boolean, evaluate_condition
from bobrapet.templating.errors import Blocked, Offloaded, TemplateError
from bobrapet.templating.offload import LoadFailure, OffloadedData, Unhydrated
from bobrapet.templating.render import DEFAULT_MAX_OUTPUT_BYTES, evaluate, render
from bobrapet.templating.results import MAX_DEPTH
from bobrapet.templating.variables import build_variables, nest_signals, step_entry

__all__ = [
    "DEFAULT_MAX_OUTPUT_BYTES",
    "MAX_DEPTH",
    "Blocked",
    "LoadFailure",
    "Offloaded",
    "OffloadedData",
    "TemplateError",
    "Unhydrated",
    "as_boolean",
    "build_variables",
    "evaluate",
    "evaluate_condition",
    "nest_signals",
    "render",
    "step_entry",
]
